//! A circuit breaker per plugin.
//!
//! After `failure_threshold` consecutive failures the breaker opens and calls
//! fail fast with [`PluginError::CircuitOpen`](crate::plugins::PluginError)
//! for `cool_down`; then one probe call is let through (half-open). Its
//! success closes the breaker, its failure opens it again. Time is passed in,
//! so tests control it.

use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before letting a probe through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// The breaker's state as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast.
    Open,
    /// One probe call is allowed to test recovery.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_started: Option<Instant> },
}

/// A circuit breaker; see the module documentation.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: State,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: State::Closed {
                consecutive_failures: 0,
            },
        }
    }

    /// Asks to make a call at `now`. `Err` carries how long until a probe
    /// will be allowed.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    probe_started: Some(now),
                };
                Ok(())
            }
            State::HalfOpen {
                probe_started: Some(started),
            } => {
                // A probe whose caller gave up never reports back; after a
                // cool-down, let another one through.
                if now.saturating_duration_since(started) >= self.config.cool_down {
                    self.state = State::HalfOpen {
                        probe_started: Some(now),
                    };
                    Ok(())
                } else {
                    Err(self.config.cool_down - now.saturating_duration_since(started))
                }
            }
            State::HalfOpen {
                probe_started: None,
            } => {
                self.state = State::HalfOpen {
                    probe_started: Some(now),
                };
                Ok(())
            }
        }
    }

    /// Records a call that went well (or failed for reasons that are not the
    /// plugin's fault).
    pub fn on_success(&mut self) {
        self.state = State::Closed {
            consecutive_failures: 0,
        };
    }

    /// Records a call that failed because of the plugin or its back end.
    pub fn on_failure(&mut self, now: Instant) {
        self.state = match self.state {
            State::Closed {
                consecutive_failures,
            } if consecutive_failures + 1 < self.config.failure_threshold => State::Closed {
                consecutive_failures: consecutive_failures + 1,
            },
            _ => State::Open {
                until: now + self.config.cool_down,
            },
        };
    }

    /// The current state, for health reporting.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Consecutive failures counted while closed.
    pub fn consecutive_failures(&self) -> u32 {
        match self.state {
            State::Closed {
                consecutive_failures,
            } => consecutive_failures,
            _ => self.config.failure_threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: 3,
            cool_down: Duration::from_secs(10),
        })
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_fails_fast() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..2 {
            assert!(b.try_acquire(t0).is_ok());
            b.on_failure(t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.on_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        let wait = b.try_acquire(t0 + Duration::from_secs(4)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(6));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let t0 = Instant::now();
        let mut b = breaker();
        b.on_failure(t0);
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_success() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let later = t0 + Duration::from_secs(11);
        assert!(b.try_acquire(later).is_ok());
        assert!(
            b.try_acquire(later).is_err(),
            "second caller waits for the probe"
        );
        b.on_success();
        assert_eq!(b.state(later), BreakerState::Closed);
    }

    #[test]
    fn a_failed_probe_opens_the_breaker_again() {
        let t0 = Instant::now();
        let mut b = breaker();
        for _ in 0..3 {
            b.on_failure(t0);
        }
        let later = t0 + Duration::from_secs(11);
        assert!(b.try_acquire(later).is_ok());
        b.on_failure(later);
        assert_eq!(b.state(later), BreakerState::Open);
    }
}
