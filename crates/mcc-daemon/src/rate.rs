//! The per-token rate limit (`mcc serve --rate-limit N`): a request over
//! the rate waits for its turn instead of failing, in the order requests
//! came, up to [`MAX_WAIT`]; beyond that it is answered 429 with the
//! seconds to wait in `Retry-After`.
//!
//! The generic cell rate algorithm, with a queue: each admitted request
//! moves the token's theoretical arrival time on by 1/N s, and may pass
//! once that time is at most one second (the burst: N requests) ahead of
//! now. Requests that queue are served one per 1/N s in arrival order, so
//! one client sharing a token with a load generator still gets its turn
//! within the wait of the requests ahead of it (one per connection of the
//! generator), where a bucket that refuses at once would let whoever
//! retries fastest take every refill. Hand-written (20 lines) rather than
//! `governor`'s, whose waits are not served in arrival order.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a request waits for its turn before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// How far ahead of now the schedule may run before requests wait: the
/// burst, as time.
const BURST: Duration = Duration::from_secs(1);

pub struct Limiter {
    interval: Duration,
    /// When the next request is due, were the token used at its rate.
    tat: Mutex<Option<Instant>>,
}

/// What a request must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Go on after waiting this long (zero: at once).
    Wait(Duration),
    /// Refused: come back after this long.
    Refused(Duration),
}

impl Limiter {
    pub fn new(per_second: u32) -> Limiter {
        Limiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            tat: Mutex::new(None),
        }
    }

    pub fn turn(&self) -> Turn {
        self.turn_at(Instant::now())
    }

    fn turn_at(&self, now: Instant) -> Turn {
        let mut tat = self.tat.lock().unwrap_or_else(|p| p.into_inner());
        let due = tat.map_or(now, |t| t.max(now)) + self.interval;
        let wait = due.saturating_duration_since(now).saturating_sub(BURST);
        if wait > MAX_WAIT {
            return Turn::Refused(wait - MAX_WAIT);
        }
        *tat = Some(due);
        Turn::Wait(wait)
    }
}

/// `Retry-After` for a refusal: whole seconds, at least one.
pub fn retry_after_secs(d: Duration) -> u64 {
    let ceil = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    ceil.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_queue_in_order_then_are_refused() {
        let l = Limiter::new(10);
        let t0 = Instant::now();
        // ten at once: the burst
        for _ in 0..10 {
            assert_eq!(l.turn_at(t0), Turn::Wait(Duration::ZERO));
        }
        // then one per 100 ms, each after the one before
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            match l.turn_at(t0) {
                Turn::Wait(w) => {
                    assert!(w > last && w <= MAX_WAIT, "{w:?} after {last:?}");
                    last = w;
                }
                r => panic!("{r:?}"),
            }
        }
        assert_eq!(last, MAX_WAIT);
        // the queue is full: refused, told how long
        match l.turn_at(t0) {
            Turn::Refused(d) => assert_eq!(d, Duration::from_millis(100)),
            r => panic!("{r:?}"),
        }
        // a refusal takes no place: later, there is room again
        assert_eq!(
            l.turn_at(t0 + Duration::from_secs(4)),
            Turn::Wait(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(100)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
    }
}
