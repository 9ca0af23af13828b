//! Dapr's resiliency retry policies, as the blocks apply them: how long to
//! wait before attempt `n + 1`, and whether there may be one at all.
//!
//! Pub/sub delivery is the first user (a component's `inbound` retry policy
//! paces the redelivery of events the app asked to retry, and its
//! exhaustion sends them to the dead-letter topic). The policy is
//! deterministic: Dapr's exponential backoff adds random jitter, which only
//! spreads load and is left out so the behaviour can be tested exactly.

use std::time::Duration;

/// Dapr's default for a constant policy's `duration`.
pub const DEFAULT_CONSTANT_DURATION: Duration = Duration::from_secs(5);

/// Dapr's first interval of an exponential policy.
pub const EXPONENTIAL_INITIAL: Duration = Duration::from_millis(500);

/// Dapr's growth factor of an exponential policy.
const EXPONENTIAL_MULTIPLIER: f64 = 1.5;

/// Dapr's default for an exponential policy's `maxInterval`.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(60);

/// One `spec.policies.retries` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How the wait grows.
    pub backoff: RetryBackoff,
    /// `maxRetries`: how many retries follow the first attempt; `None` is
    /// Dapr's `-1`, no limit.
    pub max_retries: Option<u32>,
}

/// `policy: constant` or `policy: exponential`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryBackoff {
    /// The same wait every time (`duration`).
    Constant(Duration),
    /// From [`EXPONENTIAL_INITIAL`], growing by half each time, up to this
    /// `maxInterval`.
    Exponential(Duration),
}

impl RetryPolicy {
    /// The wait after attempt `attempt` (1 for the first) failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        match self.backoff {
            RetryBackoff::Constant(duration) => duration,
            RetryBackoff::Exponential(max_interval) => {
                let growth = EXPONENTIAL_MULTIPLIER.powi(attempt.saturating_sub(1).min(64) as i32);
                EXPONENTIAL_INITIAL
                    .mul_f64(growth.min(1e9))
                    .min(max_interval)
            }
        }
    }

    /// Whether attempt `attempt` (1 for the first) failing leaves a retry.
    pub fn allows_retry_after(&self, attempt: u32) -> bool {
        self.max_retries
            .is_none_or(|max_retries| attempt <= max_retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_waits_alike_and_counts_retries_after_the_first_attempt() {
        let policy = RetryPolicy {
            backoff: RetryBackoff::Constant(Duration::from_millis(50)),
            max_retries: Some(2),
        };
        assert_eq!(policy.delay(1), Duration::from_millis(50));
        assert_eq!(policy.delay(7), Duration::from_millis(50));
        // Attempts 1 and 2 failing leave retries; 3 (the second retry) is the last.
        assert!(policy.allows_retry_after(1));
        assert!(policy.allows_retry_after(2));
        assert!(!policy.allows_retry_after(3));
    }

    #[test]
    fn exponential_grows_by_half_up_to_its_cap_and_minus_one_never_ends() {
        let policy = RetryPolicy {
            backoff: RetryBackoff::Exponential(Duration::from_secs(1)),
            max_retries: None,
        };
        let waits: Vec<u128> = (1..=5).map(|a| policy.delay(a).as_millis()).collect();
        assert_eq!(waits, [500, 750, 1000, 1000, 1000]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(1));
        assert!(policy.allows_retry_after(u32::MAX));
    }

    #[test]
    fn zero_retries_means_none() {
        let policy = RetryPolicy {
            backoff: RetryBackoff::Constant(DEFAULT_CONSTANT_DURATION),
            max_retries: Some(0),
        };
        assert!(!policy.allows_retry_after(1));
    }
}
