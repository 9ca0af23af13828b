//! Where a store reads the time, so tests can move it instead of sleeping.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of "now" in milliseconds since the Unix epoch.
pub struct Clock(Box<dyn Fn() -> u64>);

impl Clock {
    /// The real time: `SystemTime`, which is `wasi:clocks/wall-clock` in a component.
    pub fn system() -> Clock {
        Clock(Box::new(|| {
            let since_epoch = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO);
            u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
        }))
    }

    /// A clock that reads `time`, for tests.
    pub fn manual(time: &ManualTime) -> Clock {
        let time = time.clone();
        Clock(Box::new(move || time.0.get()))
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(now_ms: {})", self.now_ms())
    }
}

/// A time that a test sets and advances; clocks made from it follow it.
#[derive(Clone, Debug)]
pub struct ManualTime(Rc<Cell<u64>>);

impl ManualTime {
    /// A time starting at `start_ms` milliseconds since the Unix epoch.
    pub fn new(start_ms: u64) -> ManualTime {
        ManualTime(Rc::new(Cell::new(start_ms)))
    }

    /// Moves the time forward by `seconds`.
    pub fn advance_secs(&self, seconds: u64) {
        self.0
            .set(self.0.get().saturating_add(seconds.saturating_mul(1000)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_follow_their_time() {
        let time = ManualTime::new(5_000);
        let clock = Clock::manual(&time);
        assert_eq!(clock.now_ms(), 5_000);
        time.advance_secs(3);
        assert_eq!(clock.now_ms(), 8_000);
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(Clock::system().now_ms() > 1_577_836_800_000);
    }
}
