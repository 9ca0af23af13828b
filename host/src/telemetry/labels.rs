//! Label values from open sets (component names, topics, routes), bounded:
//! every series is kept for the life of the process, so a sidecar fed ever
//! new names (a publisher inventing topics) must not grow its metrics
//! without end. Past a cap, new values fold into [`OTHER`].

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

/// What a value past the cap is counted as.
pub const OTHER: &str = "other";

/// Distinct values of one label, at most `cap` of them; each is allocated
/// once, and looking up a known one takes a read lock and no allocation.
#[derive(Debug)]
pub struct LabelValues {
    cap: usize,
    seen: RwLock<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl LabelValues {
    /// Room for `cap` distinct values.
    pub fn new(cap: usize) -> Self {
        LabelValues {
            cap,
            seen: RwLock::new(HashSet::new()),
            other: Arc::from(OTHER),
        }
    }

    /// The label value for `value`: itself while there is room (or it was
    /// seen before), else [`OTHER`].
    pub fn get(&self, value: &str) -> Arc<str> {
        let known = self
            .seen
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(value)
            .cloned();
        if let Some(known) = known {
            return known;
        }
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = seen.get(value) {
            return Arc::clone(known);
        }
        if seen.len() >= self.cap {
            return Arc::clone(&self.other);
        }
        let value: Arc<str> = Arc::from(value);
        seen.insert(Arc::clone(&value));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_cap_fold_into_other() {
        let values = LabelValues::new(2);
        assert_eq!(&*values.get("a"), "a");
        assert_eq!(&*values.get("b"), "b");
        assert_eq!(&*values.get("c"), OTHER);
        // Values seen before keep their own label.
        assert_eq!(&*values.get("a"), "a");
        assert_eq!(&*values.get("b"), "b");
        assert_eq!(&*values.get("d"), OTHER);
    }

    #[test]
    fn a_known_value_is_shared_not_copied() {
        let values = LabelValues::new(4);
        let first = values.get("orders");
        let again = values.get("orders");
        assert!(Arc::ptr_eq(&first, &again));
    }
}
