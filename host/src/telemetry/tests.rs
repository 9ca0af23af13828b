//! The registry as a scrape shows it: names, labels and values.

use super::Metrics;
use super::component::{CallFailure, PoolGauge, PoolSizes};
use super::pubsub::Settled;
use crate::reload::{ReloadFailure, ReloadReport};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The value of the sample `series` (name and labels exactly as encoded).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

fn scrape(metrics: &Metrics) -> String {
    metrics.encode().expect("encodes")
}

#[test]
fn component_calls_failures_and_pools_are_labelled_by_component() {
    struct Pool;
    impl PoolGauge for Pool {
        fn sizes(&self) -> PoolSizes {
            PoolSizes {
                live: 3,
                idle: 1,
                max: 4,
            }
        }
    }
    let metrics = Metrics::new();
    let store = metrics.components().component("store");
    store.call("get", Duration::from_millis(2));
    store.call("get", Duration::from_millis(3));
    store.failed(CallFailure::MemoryLimit);
    store.waited();
    store.discarded();
    let pool: Arc<dyn PoolGauge> = Arc::new(Pool);
    store.watch_pool(Arc::downgrade(&pool));
    let text = scrape(&metrics);
    let expected = [
        (
            r#"outrig_component_call_duration_seconds_count{component="store",operation="get"}"#,
            2.0,
        ),
        (
            r#"outrig_component_call_failures_total{component="store",kind="memory_limit"}"#,
            1.0,
        ),
        (
            r#"outrig_component_call_failures_total{component="store",kind="trap"}"#,
            0.0,
        ),
        (r#"outrig_pool_waits_total{component="store"}"#, 1.0),
        (r#"outrig_pool_discards_total{component="store"}"#, 1.0),
        (
            r#"outrig_pool_instances{component="store",state="idle"}"#,
            1.0,
        ),
        (
            r#"outrig_pool_instances{component="store",state="busy"}"#,
            2.0,
        ),
        (r#"outrig_pool_max_instances{component="store"}"#, 4.0),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    // A pool that is gone is no longer reported.
    drop(pool);
    let dead: Weak<dyn PoolGauge> = Weak::<Pool>::new();
    store.watch_pool(dead);
    let text = scrape(&metrics);
    assert!(!text.contains("outrig_pool_instances{"), "{text}");
}

#[test]
fn topics_past_the_cap_are_counted_as_other() {
    let metrics = Metrics::new();
    for n in 0..200 {
        metrics
            .pubsub()
            .settled("pubsub", &format!("topic-{n}"), Settled::Delivered);
    }
    metrics
        .pubsub()
        .settled("pubsub", "topic-0", Settled::DeadLettered);
    let text = scrape(&metrics);
    let series = |topic: &str, outcome: &str| {
        format!(
            r#"outrig_pubsub_messages_total{{pubsub="pubsub",topic="{topic}",outcome="{outcome}"}}"#
        )
    };
    assert_eq!(sample(&text, &series("topic-0", "delivered")), Some(1.0));
    assert_eq!(
        sample(&text, &series("topic-0", "dead_lettered")),
        Some(1.0)
    );
    assert_eq!(sample(&text, &series("topic-127", "delivered")), Some(1.0));
    assert_eq!(sample(&text, &series("topic-128", "delivered")), None);
    assert_eq!(sample(&text, &series("other", "delivered")), Some(72.0));
}

#[test]
fn reloads_count_after_the_first_load_and_failures_per_component() {
    let metrics = Metrics::new();
    let failed = |name: Option<&str>| ReloadReport {
        failed: vec![ReloadFailure {
            name: name.map(str::to_owned),
            error: "bad".into(),
            still_serving: true,
        }],
        ..ReloadReport::default()
    };
    metrics.reload().finished(true, &failed(Some("store")));
    metrics.reload().finished(false, &ReloadReport::default());
    metrics.reload().finished(false, &failed(Some("store")));
    metrics.reload().finished(false, &failed(None));
    let text = scrape(&metrics);
    assert_eq!(
        sample(&text, r#"outrig_reload_total{result="success"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"outrig_reload_total{result="failure"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"outrig_component_load_failures_total{component="store"}"#
        ),
        Some(2.0)
    );
}

#[test]
fn the_exposition_is_openmetrics_with_process_metrics() {
    let metrics = Metrics::new();
    metrics
        .components()
        .component("c")
        .call("get", Duration::ZERO);
    let text = scrape(&metrics);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(!text.contains(".."), "help ends in one period: {text}");
    assert!(
        text.contains("# TYPE process_cpu_seconds counter"),
        "{text}"
    );
    assert!(
        sample(&text, "process_resident_memory_bytes").is_some_and(|rss| rss > 0.0),
        "{text}"
    );
    assert!(
        text.contains("# UNIT outrig_component_call_duration_seconds seconds"),
        "{text}"
    );
}
