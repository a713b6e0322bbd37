//! One Redis connection that outlives Redis going away: connected lazily, reconnected by
//! the connection manager, and never waited on for long (every command has a deadline, so
//! a dead Redis slows nothing down by more than that).

use super::metrics::bus_metrics;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Connection attempts are at least this far apart while Redis is away.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

pub struct RedisLink {
    client: redis::Client,
    response_timeout: Duration,
    state: Mutex<LinkState>,
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct LinkState {
    connection: Option<ConnectionManager>,
    last_attempt: Option<Instant>,
}

impl RedisLink {
    /// Checks the URL; connects at the first use.
    pub fn open(url: &str, response_timeout: Duration) -> redis::RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            response_timeout,
            state: Mutex::new(LinkState::default()),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    fn cached(&self) -> Option<ConnectionManager> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .connection
            .clone()
    }

    /// The connection, connecting first if there is none (at most one attempt per
    /// [`RECONNECT_PAUSE`]; in between, an error at once).
    pub async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let _one_attempt_at_a_time = self.connecting.lock().await;
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let recent = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let recent = state
                .last_attempt
                .is_some_and(|at| at.elapsed() < RECONNECT_PAUSE);
            if !recent {
                state.last_attempt = Some(Instant::now());
            }
            recent
        };
        if recent {
            return Err(unreachable_error());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(self.response_timeout)
            .set_number_of_retries(1)
            .set_max_delay(RECONNECT_PAUSE.as_millis() as u64);
        let connected = tokio::time::timeout(
            CONNECT_TIMEOUT * 3,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .unwrap_or_else(|_| Err(unreachable_error()));
        let connection = self.observe(connected)?;
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .connection = Some(connection.clone());
        Ok(connection)
    }

    /// Records whether Redis answered (the `parley_cluster_redis_up` gauge).
    pub fn observe<T>(&self, result: redis::RedisResult<T>) -> redis::RedisResult<T> {
        bus_metrics().up.set(i64::from(result.is_ok()));
        result
    }
}

fn unreachable_error() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::IoError,
        "Redis is unreachable; the next attempt comes shortly",
    ))
}
