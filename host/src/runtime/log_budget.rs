//! A budget on a component's log lines, so a guest that logs in a tight
//! loop cannot flood the sidecar's log, its terminal or its disk, nor spend
//! the sidecar's time formatting lines nobody will read.
//!
//! One budget is shared by all instances of a component: a token bucket of
//! [`BURST`] lines refilled at [`LINES_PER_SECOND`]. Lines over budget are
//! dropped; the first drop and the count dropped (once lines pass again)
//! are noted in the log, so an operator knows lines are missing.

use std::sync::Mutex;
use std::time::Instant;

/// Lines a component may write at once after being quiet.
pub const BURST: u32 = 200;
/// Lines per second a component may write for as long as it likes.
pub const LINES_PER_SECOND: u32 = 100;

/// What to do with one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Write it; `dropped` lines were dropped since the last one written.
    Write {
        /// Lines dropped just before this one (0 when none were).
        dropped: u64,
    },
    /// Drop it: the first line over budget, to be noted in the log.
    StartDropping,
    /// Drop it silently: dropping was noted already.
    Drop,
}

/// The log budget of one component.
#[derive(Debug)]
pub struct LogBudget {
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Lines that may be written now.
    tokens: f64,
    /// When `tokens` was last refilled.
    refilled: Instant,
    /// Lines dropped since the last one written.
    dropped: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget::new(Instant::now())
    }
}

impl LogBudget {
    /// A full budget at `now`.
    pub fn new(now: Instant) -> Self {
        LogBudget {
            bucket: Mutex::new(Bucket {
                tokens: f64::from(BURST),
                refilled: now,
                dropped: 0,
            }),
        }
    }

    /// Takes one line from the budget at `now`.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * f64::from(LINES_PER_SECOND)).min(f64::from(BURST));
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            let dropped = std::mem::take(&mut bucket.dropped);
            return Admission::Write { dropped };
        }
        bucket.dropped += 1;
        if bucket.dropped == 1 {
            Admission::StartDropping
        } else {
            Admission::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_lines_drop_until_the_budget_refills() {
        let start = Instant::now();
        let budget = LogBudget::new(start);
        for line in 0..BURST {
            assert_eq!(
                budget.admit(start),
                Admission::Write { dropped: 0 },
                "line {line}"
            );
        }
        assert_eq!(budget.admit(start), Admission::StartDropping);
        for _ in 0..9 {
            assert_eq!(budget.admit(start), Admission::Drop);
        }
        // A tenth of a second refills ten lines; the first says what was lost.
        let later = start + Duration::from_millis(100);
        assert_eq!(budget.admit(later), Admission::Write { dropped: 10 });
        for _ in 0..9 {
            assert_eq!(budget.admit(later), Admission::Write { dropped: 0 });
        }
        assert_eq!(budget.admit(later), Admission::StartDropping);
    }

    #[test]
    fn a_long_quiet_spell_refills_no_more_than_the_burst() {
        let start = Instant::now();
        let budget = LogBudget::new(start);
        let much_later = start + Duration::from_secs(3600);
        let written = (0..BURST * 2)
            .filter(|_| matches!(budget.admit(much_later), Admission::Write { .. }))
            .count();
        assert_eq!(written, BURST as usize);
    }
}
