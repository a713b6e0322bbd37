//! Logs, traces and metrics.
//!
//! `tracing` everywhere; an OpenTelemetry OTLP/HTTP exporter when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` variable is set; Prometheus counters and histograms
//! rendered at `/metrics`. Log fields never carry message text, phone numbers or secrets,
//! and every log line is redacted on its way out all the same: phone numbers, e-mail
//! addresses and card numbers that reached one through an error message (a provider's, a
//! plugin's) are replaced by `[phone]`, `[email]` and `[card]`.

use crate::config::TelemetrySettings;
use opentelemetry::trace::TracerProvider as _;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace exporter alive; flushes it when dropped.
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("parley: flushing traces failed: {error}");
        }
    }
}

/// Installs the global subscriber. Safe to call more than once (later calls keep the first).
pub fn init(settings: &TelemetrySettings) -> TelemetryGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log_filter));
    let writer = || Redacting(std::io::stderr());
    let fmt = if settings.json_logs {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(writer).boxed()
    };
    let mut provider = None;
    let otel = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => match build_tracer_provider(&settings.service_name)
        {
            Ok(built) => {
                let tracer = built.tracer("parley");
                opentelemetry::global::set_tracer_provider(built.clone());
                provider = Some(built);
                Some(tracing_opentelemetry::layer().with_tracer(tracer))
            }
            Err(error) => {
                eprintln!("parley: OpenTelemetry export is off: {error}");
                None
            }
        },
        _ => None,
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    TelemetryGuard { provider }
}

/// Writes log lines with personal data redacted (the formatter hands over one whole line
/// per write).
struct Redacting<W>(W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Replaces phone numbers (10 to 15 digits, `+` and spaces or dashes between groups of
/// three or more allowed), card numbers (13 to 19 digits passing the Luhn check) and
/// e-mail addresses. Dates, times and short ids are left alone.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'@') && bytes.iter().filter(|b| b.is_ascii_digit()).count() < 10 {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some(end) = email_at(bytes, i) {
            out.push_str("[email]");
            i = end;
            continue;
        }
        let starts_number = (bytes[i].is_ascii_digit()
            || (bytes[i] == b'+' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)))
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if starts_number {
            let (end, digits) = number_at(bytes, i);
            let after_ok = bytes.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
            // Cards are never written with a leading `+`; international numbers are.
            let plus = bytes[i] == b'+';
            if after_ok && !plus && (13..=19).contains(&digits.len()) && luhn(&digits) {
                out.push_str("[card]");
                i = end;
                continue;
            }
            if after_ok && (10..=15).contains(&digits.len()) {
                out.push_str("[phone]");
                i = end;
                continue;
            }
        }
        let c = text[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    std::borrow::Cow::Owned(out)
}

/// A number starting at `i`: digit groups separated by one space or dash, every group
/// after the first three digits or more. Answers where it ends and its digits.
fn number_at(bytes: &[u8], mut i: usize) -> (usize, Vec<u8>) {
    if bytes[i] == b'+' {
        i += 1;
    }
    let mut digits = Vec::new();
    let mut first = true;
    loop {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let group = &bytes[start..i];
        if !first && group.len() < 3 {
            // Not part of the number: give back the separator.
            return (start - 1, digits);
        }
        digits.extend_from_slice(group);
        first = false;
        match bytes.get(i) {
            Some(b' ' | b'-') if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => i += 1,
            _ => return (i, digits),
        }
    }
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(n, d)| {
            let d = u32::from(d - b'0');
            if n % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// An e-mail address starting at `i` (at a word start), if there is one: where it ends.
fn email_at(bytes: &[u8], i: usize) -> Option<usize> {
    let local = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    if i > 0 && local(bytes[i - 1]) || !local(bytes[i]) {
        return None;
    }
    let mut at = i;
    while at < bytes.len() && local(bytes[at]) {
        at += 1;
    }
    if bytes.get(at) != Some(&b'@') || at == i {
        return None;
    }
    let mut end = at + 1;
    while end < bytes.len()
        && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'.' | b'-'))
    {
        end += 1;
    }
    while end > at + 1 && bytes[end - 1] == b'.' {
        end -= 1;
    }
    let domain = &bytes[at + 1..end];
    (domain.contains(&b'.') && domain.len() >= 3).then_some(end)
}

/// Redacts span attributes and the events inside spans (log lines recorded on a span)
/// before they are exported, as the log writer does for log lines.
#[derive(Debug)]
struct RedactingProcessor<P>(P);

impl<P: opentelemetry_sdk::trace::SpanProcessor> opentelemetry_sdk::trace::SpanProcessor
    for RedactingProcessor<P>
{
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, mut span: opentelemetry_sdk::trace::SpanData) {
        redact_attributes(&mut span.attributes);
        for event in span.events.events.iter_mut() {
            if let std::borrow::Cow::Owned(name) = redact(&event.name) {
                event.name = name.into();
            }
            redact_attributes(&mut event.attributes);
        }
        self.0.on_end(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource);
    }
}

fn redact_attributes(attributes: &mut [opentelemetry::KeyValue]) {
    for attribute in attributes {
        if let opentelemetry::Value::String(value) = &attribute.value
            && let std::borrow::Cow::Owned(redacted) = redact(value.as_str())
        {
            attribute.value = opentelemetry::Value::String(redacted.into());
        }
    }
}

fn build_tracer_provider(
    service_name: &str,
) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(RedactingProcessor(
            opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter).build(),
        ))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

/// Parley's Prometheus metrics.
pub struct Metrics {
    pub registry: Registry,
    pub webhooks: IntCounterVec,
    pub webhook_ack_seconds: Histogram,
    pub ingest_apply_lag_seconds: Histogram,
    pub messages: IntCounterVec,
    pub reopens: prometheus::IntCounter,
    pub group_commit_batch_size: Histogram,
    pub store_write_seconds: prometheus::HistogramVec,
    pub live_actors: IntGauge,
    pub actor_restarts: prometheus::IntCounter,
    pub outbound_sends: IntCounterVec,
    pub dead_letters: IntCounterVec,
    /// Webhooks left pending because an item was neither applied nor set aside.
    pub inbox_unsettled: prometheus::IntCounter,
    pub triaged: IntCounterVec,
    pub noise_suppressed: IntCounterVec,
    pub router_assignments: prometheus::IntCounter,
    pub router_assignment_seconds: Histogram,
    pub routing_reloads: IntCounterVec,
    pub sla_pending_deadlines: IntGauge,
    pub sla_alarm_lateness_seconds: Histogram,
    pub sla_alarms: IntCounterVec,
    pub escalations: IntCounterVec,
    pub auto_closures: IntCounterVec,
    pub csat_answers: IntCounterVec,
    pub outbound_gate: IntCounterVec,
    pub outbound_gate_seconds: Histogram,
    pub approvals: IntCounterVec,
    pub outbound_paced: IntCounterVec,
    pub reports_folded_events: prometheus::IntCounter,
    pub kpi_state: prometheus::IntGaugeVec,
    pub kpi_state_changes: IntCounterVec,
}

fn build_metrics() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("parley".into()), None)?;
    let latency_buckets = vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let webhooks = IntCounterVec::new(
        Opts::new("webhooks_total", "Webhook requests by channel and outcome"),
        &["channel", "outcome"],
    )?;
    let webhook_ack_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "webhook_ack_seconds",
            "Time from a webhook's arrival to its acknowledgement",
        )
        .buckets(latency_buckets.clone()),
    )?;
    let ingest_apply_lag_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "ingest_apply_lag_seconds",
            "Time from a webhook's durable commit to its conversation actor having applied the message",
        )
        .buckets(latency_buckets.clone()),
    )?;
    let triaged = IntCounterVec::new(
        Opts::new(
            "triaged_messages_total",
            "Customer messages triaged, by whether a human must review them",
        ),
        &["review"],
    )?;
    let noise_suppressed = IntCounterVec::new(
        Opts::new(
            "noise_suppressed_total",
            "Customer messages kept away from the human queues, by reason",
        ),
        &["reason"],
    )?;
    let router_assignments = prometheus::IntCounter::new(
        "router_assignments_total",
        "Cases the router gave to an agent",
    )?;
    let router_assignment_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "router_queue_assignment_seconds",
            "Time from capacity freeing up to a queued case being assigned",
        )
        .buckets(latency_buckets),
    )?;
    let routing_reloads = IntCounterVec::new(
        Opts::new(
            "routing_reloads_total",
            "Reloads of taxonomy and rules, by outcome",
        ),
        &["outcome"],
    )?;
    let messages = IntCounterVec::new(
        Opts::new("messages_total", "Messages stored by direction"),
        &["direction"],
    )?;
    let reopens = prometheus::IntCounter::new(
        "conversation_reopens_total",
        "Resolved conversations reopened by the customer",
    )?;
    let group_commit_batch_size = Histogram::with_opts(
        HistogramOpts::new("group_commit_batch_size", "Write operations per commit").buckets(vec![
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
        ]),
    )?;
    let store_write_seconds = prometheus::HistogramVec::new(
        HistogramOpts::new(
            "store_write_seconds",
            "Time a store writer (main database or inbox) spent per group commit, by phase: applying the batch's operations, then committing (the fsync)",
        )
        .buckets(vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.25, 1.0,
        ]),
        &["writer", "phase"],
    )?;
    let live_actors = IntGauge::new(
        "conversation_actors_live",
        "Conversation actors currently running",
    )?;
    let actor_restarts = prometheus::IntCounter::new(
        "conversation_actor_restarts_total",
        "Conversation actors restarted after a panic",
    )?;
    let outbound_sends = IntCounterVec::new(
        Opts::new("outbound_sends_total", "Provider calls by outcome"),
        &["outcome"],
    )?;
    let dead_letters = IntCounterVec::new(
        Opts::new(
            "dead_letters_total",
            "Payloads moved to the dead-letter table",
        ),
        &["source"],
    )?;
    let inbox_unsettled = prometheus::IntCounter::new(
        "inbox_unsettled_total",
        "Webhooks left pending for the next start: an item was neither applied nor kept as a dead letter",
    )?;
    let sla_pending_deadlines = IntGauge::new(
        "sla_pending_deadlines",
        "Open cases with an SLA alarm scheduled",
    )?;
    let sla_alarm_lateness_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "sla_alarm_lateness_seconds",
            "Time from an SLA alarm's due instant to its case being looked at",
        )
        .buckets(vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
        ]),
    )?;
    let sla_alarms = IntCounterVec::new(
        Opts::new(
            "sla_alarms_total",
            "SLA alarms recorded, by target and kind (warning, breach, escalation due)",
        ),
        &["target", "alarm"],
    )?;
    let escalations = IntCounterVec::new(
        Opts::new(
            "escalations_total",
            "Cases escalated, by trigger and destination level",
        ),
        &["trigger", "level"],
    )?;
    let auto_closures = IntCounterVec::new(
        Opts::new(
            "conversation_auto_closures_total",
            "Cases the case clock resolved (no customer answer) or closed (reopen window passed), by the status reached",
        ),
        &["status"],
    )?;
    let csat_answers = IntCounterVec::new(
        Opts::new("csat_answers_total", "Satisfaction survey answers by score"),
        &["score"],
    )?;
    let outbound_gate = IntCounterVec::new(
        Opts::new(
            "outbound_gate_total",
            "Outbound messages through the gate, by origin and verdict (allow, hold, block)",
        ),
        &["origin", "verdict"],
    )?;
    let outbound_gate_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "outbound_gate_seconds",
            "Time the gate took to decide on one outbound message (consent read excluded)",
        )
        .buckets(vec![
            0.000_001, 0.000_005, 0.00001, 0.000_025, 0.00005, 0.0001, 0.001,
        ]),
    )?;
    let approvals = IntCounterVec::new(
        Opts::new(
            "held_message_decisions_total",
            "Decisions on held messages (approved, approved_edited, rejected)",
        ),
        &["decision"],
    )?;
    let outbound_paced = IntCounterVec::new(
        Opts::new(
            "outbound_paced_total",
            "Sends held back to respect WhatsApp's limits, by limit (pair, throughput)",
        ),
        &["limit"],
    )?;
    registry.register(Box::new(outbound_paced.clone()))?;
    registry.register(Box::new(outbound_gate.clone()))?;
    registry.register(Box::new(outbound_gate_seconds.clone()))?;
    registry.register(Box::new(approvals.clone()))?;
    registry.register(Box::new(auto_closures.clone()))?;
    registry.register(Box::new(csat_answers.clone()))?;
    registry.register(Box::new(sla_pending_deadlines.clone()))?;
    registry.register(Box::new(sla_alarm_lateness_seconds.clone()))?;
    registry.register(Box::new(sla_alarms.clone()))?;
    registry.register(Box::new(escalations.clone()))?;
    registry.register(Box::new(webhooks.clone()))?;
    registry.register(Box::new(webhook_ack_seconds.clone()))?;
    registry.register(Box::new(ingest_apply_lag_seconds.clone()))?;
    registry.register(Box::new(messages.clone()))?;
    registry.register(Box::new(reopens.clone()))?;
    registry.register(Box::new(group_commit_batch_size.clone()))?;
    registry.register(Box::new(store_write_seconds.clone()))?;
    registry.register(Box::new(live_actors.clone()))?;
    registry.register(Box::new(actor_restarts.clone()))?;
    registry.register(Box::new(outbound_sends.clone()))?;
    registry.register(Box::new(dead_letters.clone()))?;
    registry.register(Box::new(inbox_unsettled.clone()))?;
    registry.register(Box::new(triaged.clone()))?;
    registry.register(Box::new(noise_suppressed.clone()))?;
    registry.register(Box::new(router_assignments.clone()))?;
    registry.register(Box::new(router_assignment_seconds.clone()))?;
    registry.register(Box::new(routing_reloads.clone()))?;
    let reports_folded_events = prometheus::IntCounter::new(
        "reports_folded_events_total",
        "Events folded into the report rollups",
    )?;
    let kpi_state = prometheus::IntGaugeVec::new(
        Opts::new(
            "kpi_state",
            "Each KPI of config/kpi.toml over its window: 0 on target, 1 off target, 2 warning, 3 action",
        ),
        &["kpi"],
    )?;
    let kpi_state_changes = IntCounterVec::new(
        Opts::new(
            "kpi_state_changes_total",
            "KPI state changes, by the state entered",
        ),
        &["kpi", "state"],
    )?;
    registry.register(Box::new(reports_folded_events.clone()))?;
    registry.register(Box::new(kpi_state.clone()))?;
    registry.register(Box::new(kpi_state_changes.clone()))?;
    Ok(Metrics {
        registry,
        webhooks,
        webhook_ack_seconds,
        ingest_apply_lag_seconds,
        messages,
        reopens,
        group_commit_batch_size,
        store_write_seconds,
        live_actors,
        actor_restarts,
        outbound_sends,
        dead_letters,
        inbox_unsettled,
        triaged,
        noise_suppressed,
        router_assignments,
        router_assignment_seconds,
        routing_reloads,
        sla_pending_deadlines,
        sla_alarm_lateness_seconds,
        sla_alarms,
        escalations,
        auto_closures,
        csat_answers,
        outbound_gate,
        outbound_gate_seconds,
        approvals,
        outbound_paced,
        reports_folded_events,
        kpi_state,
        kpi_state_changes,
    })
}

/// The process's metrics. Counters are per process by nature: each node exposes its own
/// and Prometheus sums them.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| match build_metrics() {
        Ok(metrics) => metrics,
        // Only reachable through a programming error in the definitions above.
        Err(error) => panic!("metric definitions are invalid: {error}"),
    })
}

/// Prometheus text exposition of every metric.
pub fn render_metrics() -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(error) = encoder.encode(&metrics().registry.gather(), &mut out) {
        tracing::error!(error = %error, "Could not render metrics.");
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn phone_numbers_cards_and_emails_are_redacted_and_the_rest_is_left() {
        assert_eq!(
            redact("send to 16315551234 failed: (#131030) Recipient +52 155 1234 5678 not allowed"),
            "send to [phone] failed: (#131030) Recipient [phone] not allowed"
        );
        assert_eq!(
            redact("card 4111 1111 1111 1111 and 4111-1111-1111-1111, mail ana.p@example.com."),
            "card [card] and [card], mail [email]."
        );
        let mut attributes = vec![
            opentelemetry::KeyValue::new("error", "no such user 16315551234"),
            opentelemetry::KeyValue::new("conversation_id", 42),
        ];
        super::redact_attributes(&mut attributes);
        assert_eq!(attributes[0].value.as_str(), "no such user [phone]");
        assert_eq!(attributes[1].value, opentelemetry::Value::I64(42));
        // Ten digits or more read as a phone number, whatever they were.
        assert_eq!(redact("took 1669233778 ms"), "took [phone] ms");
        for kept in [
            "2026-12-01T14:17:24.123456Z conversation_id=42 outbox_id=1234567",
            "wamid.HBgLMTY1MDM4NzkyNDMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
            "16692337 items in 1250 ms",
            "GET /v21.0/106540352242922x/messages",
        ] {
            assert_eq!(redact(kept), kept);
        }
    }
}
