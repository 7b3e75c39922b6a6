//! The pool's rate limit: a token bucket holding at most one token, so that messages are spaced
//! evenly and no window of the given length ever holds more than the given number of them.

use std::time::{Duration, Instant};

/// At most `messages` messages in any window of `per`, across every connection of a pool.
///
/// ```
/// use mailpump::smtp::pool::Rate;
/// use std::time::Duration;
///
/// let rate = Rate::new(100, Duration::from_secs(60))?; // a provider's 100 a minute
/// assert_eq!(rate.interval(), Duration::from_millis(600));
/// # Ok::<(), mailpump::SmtpError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    messages: u32,
    per: Duration,
}

impl Rate {
    /// `messages` (at least one) per `per` (longer than zero).
    pub fn new(messages: u32, per: Duration) -> Result<Self, crate::SmtpError> {
        if messages == 0 || per.is_zero() {
            return Err(crate::SmtpError::invalid_input(
                "a rate needs at least one message per window, and a window longer than zero",
            ));
        }
        Ok(Self { messages, per })
    }

    /// The number of messages per window.
    #[must_use]
    pub fn messages(self) -> u32 {
        self.messages
    }

    /// The window.
    #[must_use]
    pub fn per(self) -> Duration {
        self.per
    }

    /// The time between two messages: the window divided by the number of messages.
    #[must_use]
    pub fn interval(self) -> Duration {
        self.per / self.messages
    }
}

/// A token bucket of capacity one, refilled every [`Rate::interval`]: the time comes from the
/// caller, so that it can be tested without waiting.
///
/// A bucket that held a whole window's tokens would allow a burst of `n` at its end and another
/// `n` at the start of the next window, twice the rate over that stretch; one token at a time
/// keeps every half-open window of length `per` to at most `n` messages.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    interval: Duration,
    /// When the next token is available (`None`: one is available now).
    next: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket for `rate`.
    #[must_use]
    pub fn new(rate: Rate) -> Self {
        Self {
            interval: rate.interval(),
            next: None,
        }
    }

    /// Takes the token at `now`, or says how long to wait for it.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        match self.next {
            Some(next) if next > now => Err(next - now),
            Some(next) => {
                // Time not spent sending is not saved up beyond one token: a long pause does not
                // buy a burst afterwards.
                let due = next + self.interval;
                self.next = Some(if due > now { due } else { now + self.interval });
                Ok(())
            }
            None => {
                self.next = Some(now + self.interval);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(n: u32, per_ms: u64) -> TokenBucket {
        TokenBucket::new(Rate::new(n, Duration::from_millis(per_ms)).unwrap())
    }

    /// Tries to take a token at every millisecond of `span_ms`; returns when each succeeded.
    fn greedy(bucket: &mut TokenBucket, start: Instant, span_ms: u64) -> Vec<u64> {
        (0..span_ms)
            .filter(|ms| bucket.take(start + Duration::from_millis(*ms)).is_ok())
            .collect()
    }

    #[test]
    fn no_window_holds_more_than_n() {
        let start = Instant::now();
        let mut b = bucket(10, 1000);
        let taken = greedy(&mut b, start, 10_000);
        assert_eq!(taken.len(), 100, "{taken:?}");
        for (i, &t) in taken.iter().enumerate() {
            // The messages in [t, t + 1000).
            let in_window = taken[i..].iter().take_while(|&&u| u < t + 1000).count();
            assert!(in_window <= 10, "{in_window} messages from {t} ms");
        }
    }

    #[test]
    fn the_first_token_is_there_at_once_and_the_next_after_the_interval() {
        let start = Instant::now();
        let mut b = bucket(4, 1000);
        assert_eq!(b.take(start), Ok(()));
        assert_eq!(
            b.take(start + Duration::from_millis(100)),
            Err(Duration::from_millis(150))
        );
        assert_eq!(b.take(start + Duration::from_millis(250)), Ok(()));
    }

    #[test]
    fn a_pause_buys_no_burst() {
        let start = Instant::now();
        let mut b = bucket(10, 1000);
        assert!(b.take(start).is_ok());
        let later = start + Duration::from_secs(60);
        assert!(b.take(later).is_ok());
        assert!(b.take(later + Duration::from_millis(1)).is_err());
        assert!(b.take(later + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn a_rate_needs_a_message_and_a_window() {
        assert!(Rate::new(0, Duration::from_secs(1)).is_err());
        assert!(Rate::new(1, Duration::ZERO).is_err());
    }
}
