//! The timed phase: N keep-alive connections pushing pre-signed webhooks.
//!
//! Each connection is one task that carries one request at a time (HTTP/1.1, no
//! pipelining) and takes the next request index from a shared counter, so requests leave
//! in plan order whatever connection carries them.
//!
//! * Closed loop (no rate): a connection sends its next request as soon as the previous
//!   answer arrived, until the duration is over or the plan is used up. Latency is measured
//!   from the moment the request is written.
//! * Open loop (`rate`): request `i` is due at `start + i / rate`. A connection sleeps until
//!   the request it took is due; if every connection is busy the request leaves late, and
//!   its latency still counts from when it was due, so queueing in front of a slow server is
//!   not hidden (no coordinated omission). Tokio's timer has a 1 ms tick, so a connection
//!   wakes up to 1 ms early rather than late; a request that leaves early is measured from
//!   when it actually left.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Request, Uri};
use tokio::time::Instant;

use crate::http::{LoadBody, Target, connect};
use crate::payload::SignedBody;

/// Resolution of Tokio's timer wheel.
const TIMER_TICK: Duration = Duration::from_millis(1);
/// Pause after a failed connect, so a server that is down is not hammered.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);
/// An open-loop request leaving later than this after it was due waited for a free
/// connection (timer jitter stays well below it).
const LATE_AFTER: Duration = Duration::from_millis(2);
/// How often progress is printed to standard error.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How the load is applied.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    pub connections: usize,
    /// Requests per second (open loop); `None` for closed loop at maximum throughput.
    pub rate: Option<f64>,
    /// Closed loop: how long to send. Open loop: the schedule spans this long.
    pub duration: Duration,
    /// A request not answered within this is counted as failed (`timeout`).
    pub request_timeout: Duration,
    /// Open loop: how long past the end of the schedule late requests may still start.
    pub drain: Duration,
    /// Print a progress line to standard error now and then.
    pub progress: bool,
    /// Header carrying each body's signature, e.g. `x-hub-signature-256`.
    pub signature_header: HeaderName,
    /// `Content-Type` of the bodies.
    pub content_type: HeaderValue,
}

/// What happened during the timed phase.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Requests written to a connection (or attempted, when connecting failed).
    pub sent: u64,
    /// Plan indices of the requests answered 200.
    pub acknowledged: Vec<u32>,
    /// Every HTTP status received, with its count.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer, by cause.
    pub errors: BTreeMap<String, u64>,
    /// Latency of each acknowledged request, in microseconds.
    pub latencies_us: Vec<u64>,
    /// From the start of the schedule to the last answer.
    pub elapsed: Duration,
    /// Open loop: requests of the schedule never sent (the drain time ran out).
    pub not_sent: u64,
    /// Closed loop: the pre-generated plan ran out before the duration was over.
    pub plan_exhausted: bool,
    /// Open loop: requests that left more than 2 ms after they were due, because every
    /// connection was busy (or the generator got no CPU). Their wait is in their latency.
    pub late_starts: u64,
}

struct Shared {
    plan: Arc<Vec<SignedBody>>,
    target: Target,
    uri: Uri,
    host: HeaderValue,
    signature_header: HeaderName,
    settings: LoadSettings,
    start: Instant,
    next: AtomicUsize,
    sent: AtomicU64,
    acknowledged: AtomicU64,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    acknowledged: Vec<u32>,
    by_status: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    latencies_us: Vec<u64>,
    late_starts: u64,
}

/// Sends the plan (or as much of it as the duration allows) and tallies the answers.
pub async fn run(
    plan: Arc<Vec<SignedBody>>,
    target: Target,
    settings: LoadSettings,
) -> Result<LoadOutcome> {
    ensure!(
        settings.connections > 0,
        "at least one connection is needed"
    );
    ensure!(!plan.is_empty(), "nothing to send");
    if let Some(rate) = settings.rate {
        ensure!(rate > 0.0 && rate.is_finite(), "rate must be positive");
    }
    ensure!(plan.len() < u32::MAX as usize, "plan too large");

    // Connect everything before the clock starts: the handshakes are not part of the load.
    let mut senders = Vec::with_capacity(settings.connections);
    for _ in 0..settings.connections {
        let sender = connect::<LoadBody>(target.addr)
            .await
            .with_context(|| format!("Failed to open the load connections to {}", target.addr))?;
        senders.push(sender);
    }

    let uri: Uri = target
        .path
        .parse()
        .with_context(|| format!("Failed to parse path {:?}", target.path))?;
    let host = HeaderValue::from_str(&target.host).context("Host is not a valid header")?;
    let shared = Arc::new(Shared {
        plan: Arc::clone(&plan),
        target,
        uri,
        host,
        signature_header: settings.signature_header.clone(),
        settings: settings.clone(),
        start: Instant::now(),
        next: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
        acknowledged: AtomicU64::new(0),
    });

    let progress = settings
        .progress
        .then(|| tokio::spawn(report_progress(Arc::clone(&shared))));
    let workers: Vec<_> = senders
        .into_iter()
        .map(|sender| tokio::spawn(connection_loop(Arc::clone(&shared), sender)))
        .collect();
    let mut outcome = LoadOutcome::default();
    for worker in workers {
        let tally = worker.await.context("A load connection task panicked")?;
        outcome.sent += tally.sent;
        outcome.late_starts += tally.late_starts;
        outcome.acknowledged.extend(tally.acknowledged);
        outcome.latencies_us.extend(tally.latencies_us);
        for (status, n) in tally.by_status {
            *outcome.by_status.entry(status).or_default() += n;
        }
        for (error, n) in tally.errors {
            *outcome.errors.entry(error).or_default() += n;
        }
    }
    outcome.elapsed = shared.start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    outcome.acknowledged.sort_unstable();
    match settings.rate {
        Some(_) => outcome.not_sent = plan.len() as u64 - outcome.sent,
        None => outcome.plan_exhausted = outcome.sent == plan.len() as u64,
    }
    Ok(outcome)
}

async fn connection_loop(shared: Arc<Shared>, sender: SendRequest<LoadBody>) -> Tally {
    let settings = &shared.settings;
    let mut sender = Some(sender);
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(shared.plan.len() / settings.connections + 1),
        ..Tally::default()
    };
    let send_until = match settings.rate {
        Some(_) => shared.start + settings.duration + settings.drain,
        None => shared.start + settings.duration,
    };

    loop {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(signed) = shared.plan.get(index) else {
            break;
        };
        let due = settings
            .rate
            .map(|rate| shared.start + Duration::from_secs_f64(index as f64 / rate));
        if Instant::now() >= send_until {
            break;
        }
        if let Some(due) = due {
            let wake = due.checked_sub(TIMER_TICK).unwrap_or(due);
            if Instant::now() < wake {
                tokio::time::sleep_until(wake).await;
            }
        }

        let left_at = Instant::now();
        let origin = due.map_or(left_at, |due| due.min(left_at));
        if due.is_some_and(|due| left_at.saturating_duration_since(due) > LATE_AFTER) {
            tally.late_starts += 1;
        }
        tally.sent += 1;
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let answer = tokio::time::timeout(
            settings.request_timeout,
            send_one(&shared, &mut sender, signed),
        )
        .await;
        match answer {
            Ok(Ok(status)) => {
                *tally.by_status.entry(status).or_default() += 1;
                if status == 200 {
                    let latency = origin.elapsed().as_micros() as u64;
                    tally.latencies_us.push(latency);
                    tally.acknowledged.push(index as u32);
                    shared.acknowledged.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Err(cause)) => {
                let pause = cause.starts_with("connect");
                *tally.errors.entry(cause).or_default() += 1;
                if pause {
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
            }
            Err(_) => {
                // The connection is in an unknown state mid-request: start a new one.
                sender = None;
                *tally.errors.entry("timeout".to_owned()).or_default() += 1;
            }
        }
    }
    tally
}

/// Sends one request on the connection, reconnecting first if it was closed. A request is
/// never resent once written: the server may have committed it.
async fn send_one(
    shared: &Shared,
    sender: &mut Option<SendRequest<LoadBody>>,
    signed: &SignedBody,
) -> std::result::Result<u16, String> {
    for _ in 0..2 {
        let usable = sender.as_ref().is_some_and(|s| !s.is_closed());
        if !usable {
            match connect::<LoadBody>(shared.target.addr).await {
                Ok(fresh) => *sender = Some(fresh),
                Err(e) => return Err(format!("connect: {}", root_cause(&e))),
            }
        }
        let Some(open) = sender.as_mut() else {
            continue;
        };
        if open.ready().await.is_err() {
            // Closed by the server while idle (keep-alive timeout): nothing was written.
            *sender = None;
            continue;
        }
        let request = Request::post(shared.uri.clone())
            .header(HOST, shared.host.clone())
            .header(CONTENT_TYPE, shared.settings.content_type.clone())
            .header(shared.signature_header.clone(), signed.signature.clone())
            .body(Full::new(signed.body.clone()))
            .map_err(|e| format!("request build: {e}"))?;
        let response = match open.send_request(request).await {
            Ok(response) => response,
            Err(e) => {
                *sender = None;
                return Err(classify(&e));
            }
        };
        let status = response.status().as_u16();
        if let Err(e) = response.into_body().collect().await {
            *sender = None;
            return Err(classify(&e));
        }
        return Ok(status);
    }
    Err("connection closed before sending".to_owned())
}

fn classify(error: &hyper::Error) -> String {
    if error.is_closed() || error.is_incomplete_message() {
        "connection closed".to_owned()
    } else if error.is_canceled() {
        "canceled".to_owned()
    } else if error.is_parse() {
        "bad response".to_owned()
    } else {
        format!("http: {error}")
    }
}

fn root_cause(error: &anyhow::Error) -> String {
    match error.root_cause().downcast_ref::<std::io::Error>() {
        Some(io) => format!("{:?}", io.kind()),
        None => error.root_cause().to_string(),
    }
}

async fn report_progress(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval_at(shared.start + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut last_ack = 0u64;
    loop {
        ticker.tick().await;
        let acked = shared.acknowledged.load(Ordering::Relaxed);
        eprintln!(
            "  {:>5.1}s  sent {:>9}  acknowledged {:>9}  ({:.0} req/s over the last {}s)",
            shared.start.elapsed().as_secs_f64(),
            shared.sent.load(Ordering::Relaxed),
            acked,
            (acked - last_ack) as f64 / PROGRESS_EVERY.as_secs_f64(),
            PROGRESS_EVERY.as_secs()
        );
        last_ack = acked;
    }
}
