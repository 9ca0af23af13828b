//! Metrics a component emits itself through the `host` import
//! (`counter-add`, `histogram-record`), exported as
//! `outrig_component_counter_total` and `outrig_component_histogram` with
//! the component's name, the metric's name (`metric`) and its labels.
//!
//! A guest is not trusted to keep its own cardinality: names and label keys
//! must be Prometheus identifiers (others are dropped), a record keeps at
//! most [`MAX_LABELS`] labels with values cut to [`MAX_VALUE_BYTES`], and
//! past [`MAX_SERIES`] series per family a new series is counted under
//! `metric="other"` without labels.

use super::labels::{LabelValues, OTHER};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Labels a record may carry; the rest are dropped.
pub const MAX_LABELS: usize = 8;
/// Longest label value kept, in bytes.
pub const MAX_VALUE_BYTES: usize = 128;
/// Longest metric name or label key accepted.
const MAX_NAME_BYTES: usize = 64;
/// Series each family holds before new ones fold into `other`.
pub const MAX_SERIES: usize = 1024;
/// Labels the host sets itself, which a guest may not.
const RESERVED: [&str; 4] = ["component", "metric", "le", "quantile"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuestMetric {
    component: Arc<str>,
    metric: Arc<str>,
}

/// One series: whose metric it is, and the guest's own labels.
type Series = (GuestMetric, Vec<(String, String)>);

/// A family and how many series it has been given.
#[derive(Debug)]
struct Bounded<M> {
    family: Family<Series, M, fn() -> M>,
    created: AtomicUsize,
}

impl<M> Bounded<M> {
    fn new(family: Family<Series, M, fn() -> M>) -> Self {
        Bounded {
            family,
            created: AtomicUsize::new(0),
        }
    }

    /// `series` if it exists or there is room for it, else `other`'s series.
    fn admit(&self, series: Series) -> Series {
        if self.family.get(&series).is_some()
            || self.created.fetch_add(1, Ordering::Relaxed) < MAX_SERIES
        {
            return series;
        }
        let other = GuestMetric {
            component: series.0.component,
            metric: Arc::from(OTHER),
        };
        (other, Vec::new())
    }
}

/// The families of component-emitted metrics.
#[derive(Debug)]
pub struct GuestMetrics {
    counters: Bounded<Counter>,
    histograms: Bounded<Histogram>,
    components: Arc<LabelValues>,
}

impl GuestMetrics {
    /// Registers the families in `registry`; component names are bounded by `components`.
    pub(super) fn register(registry: &mut Registry, components: Arc<LabelValues>) -> Self {
        let metrics = GuestMetrics {
            counters: Bounded::new(Family::default()),
            histograms: Bounded::new(Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 10.0, 10))
            })),
            components,
        };
        registry.register(
            "component_counter",
            "Counters a component adds to through its host import, by metric name and its labels",
            metrics.counters.family.clone(),
        );
        registry.register(
            "component_histogram",
            "Observations a component records through its host import, by metric name and its labels",
            metrics.histograms.family.clone(),
        );
        metrics
    }

    /// `counter-add` from `component`.
    pub fn counter_add(
        &self,
        component: &str,
        name: &str,
        value: u64,
        labels: Vec<(String, String)>,
    ) {
        if let Some(series) = self.series(component, name, labels) {
            let series = self.counters.admit(series);
            self.counters.family.get_or_create(&series).inc_by(value);
        }
    }

    /// `histogram-record` from `component`; values that are not finite are dropped.
    pub fn histogram_record(
        &self,
        component: &str,
        name: &str,
        value: f64,
        labels: Vec<(String, String)>,
    ) {
        if !value.is_finite() {
            return;
        }
        if let Some(series) = self.series(component, name, labels) {
            let series = self.histograms.admit(series);
            self.histograms.family.get_or_create(&series).observe(value);
        }
    }

    /// The series a record names, or `None` when its name is not a
    /// Prometheus identifier.
    fn series(&self, component: &str, name: &str, labels: Vec<(String, String)>) -> Option<Series> {
        if !is_identifier(name) {
            tracing::debug!(
                component,
                metric = name,
                "a component metric name that is not a Prometheus identifier is dropped"
            );
            return None;
        }
        let metric = GuestMetric {
            component: self.components.get(component),
            metric: Arc::from(name),
        };
        Some((metric, guest_labels(labels)))
    }
}

/// The labels kept of a record: valid, unreserved keys, first occurrence
/// of each, at most [`MAX_LABELS`], values cut short, sorted by key (so the
/// same set in another order is the same series).
fn guest_labels(labels: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = Vec::with_capacity(labels.len().min(MAX_LABELS));
    for (key, mut value) in labels {
        if kept.len() == MAX_LABELS {
            break;
        }
        if !is_identifier(&key)
            || key.starts_with("__")
            || RESERVED.contains(&key.as_str())
            || kept.iter().any(|(k, _)| *k == key)
        {
            continue;
        }
        let mut end = value.len().min(MAX_VALUE_BYTES);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
        kept.push((key, value));
    }
    kept.sort();
    kept
}

/// Whether `name` is a Prometheus metric or label name (without colons),
/// and not too long.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && name.len() <= MAX_NAME_BYTES && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_valid_unreserved_labels_are_kept_in_order() {
        let long = "é".repeat(100);
        let kept = guest_labels(pairs(&[
            ("zone", "a"),
            ("component", "spoof"),
            ("le", "1"),
            ("__name__", "x"),
            ("bad-key", "x"),
            ("9lives", "x"),
            ("zone", "again"),
            ("long", &long),
            ("app", "b"),
        ]));
        let keys: Vec<&str> = kept.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["app", "long", "zone"]);
        assert_eq!(kept[2].1, "a");
        assert!(kept[1].1.len() <= MAX_VALUE_BYTES && kept[1].1.starts_with('é'));
        let many: Vec<(String, String)> =
            (0..20).map(|n| (format!("k{n:02}"), "v".into())).collect();
        assert_eq!(guest_labels(many).len(), MAX_LABELS);
    }

    #[test]
    fn names_must_be_identifiers() {
        for good in ["requests", "_x", "a1_b2"] {
            assert!(is_identifier(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a:b", "ä", &"a".repeat(65)] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn series_past_the_bound_fold_into_other() {
        let mut registry = Registry::default();
        let metrics = GuestMetrics::register(&mut registry, Arc::new(LabelValues::new(4)));
        for n in 0..MAX_SERIES + 10 {
            metrics.counter_add("c", "hits", 1, pairs(&[("n", &n.to_string())]));
        }
        metrics.counter_add("c", "hits", 1, pairs(&[("n", "0")]));
        metrics.counter_add("c", "bad name", 1, Vec::new());
        metrics.histogram_record("c", "latency", f64::NAN, Vec::new());
        let value = |metric: &str, labels: &[(&str, &str)]| {
            let series = (
                GuestMetric {
                    component: Arc::from("c"),
                    metric: Arc::from(metric),
                },
                pairs(labels),
            );
            metrics.counters.family.get(&series).map(|c| c.get())
        };
        assert_eq!(value("hits", &[("n", "0")]), Some(2));
        let last_kept = (MAX_SERIES - 1).to_string();
        assert_eq!(value("hits", &[("n", &last_kept)]), Some(1));
        assert_eq!(value("hits", &[("n", &MAX_SERIES.to_string())]), None);
        assert_eq!(value(OTHER, &[]), Some(10));
        assert_eq!(metrics.histograms.created.load(Ordering::Relaxed), 0);
    }
}
