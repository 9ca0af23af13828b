//! Component calls and instance pools: call latency per component and
//! operation, failures by kind, waits for an instance, discarded instances,
//! and the pools' sizes (read at scrape time from the pools themselves, so
//! they never drift from the truth).
//!
//! A pool resolves its [`ComponentMetrics`] once when it starts; its hot
//! path then only bumps counters it holds.

use super::labels::LabelValues;
use super::{Latencies, latencies};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// Why a component call did not return the component's answer.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CallFailure {
    /// The guest trapped (panic, stack overflow, bad import use).
    Trap,
    /// The call ran past its deadline (CPU through the epoch deadline, or
    /// waiting on I/O or for an instance).
    Timeout,
    /// The guest asked for more memory than it was granted.
    MemoryLimit,
    /// Every instance was busy and the wait queue full.
    Overloaded,
    /// A new instance could not be created or refused `init`.
    Start,
}

impl CallFailure {
    const ALL: [CallFailure; 5] = [
        CallFailure::Trap,
        CallFailure::Timeout,
        CallFailure::MemoryLimit,
        CallFailure::Overloaded,
        CallFailure::Start,
    ];

    fn as_str(self) -> &'static str {
        match self {
            CallFailure::Trap => "trap",
            CallFailure::Timeout => "timeout",
            CallFailure::MemoryLimit => "memory_limit",
            CallFailure::Overloaded => "overloaded",
            CallFailure::Start => "start",
        }
    }
}

impl EncodeLabelValue for CallFailure {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// How many instances a pool has, read when metrics are scraped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolSizes {
    /// Instances alive: idle, serving a call, or being created.
    pub live: usize,
    /// Instances waiting for a call.
    pub idle: usize,
    /// The most instances the pool may have.
    pub max: usize,
}

/// A pool whose sizes are reported (the pool keeps its own books).
pub trait PoolGauge: Send + Sync {
    /// Its sizes now.
    fn sizes(&self) -> PoolSizes;
}

/// The label of series kept per component.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ComponentLabel {
    pub(super) component: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    component: Arc<str>,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    component: Arc<str>,
    kind: CallFailure,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    component: Arc<str>,
    state: &'static str,
}

/// The component and pool families.
#[derive(Debug)]
pub struct ComponentFamilies {
    calls: Latencies<CallLabels>,
    failures: Family<FailureLabels, Counter>,
    waits: Family<ComponentLabel, Counter>,
    discards: Family<ComponentLabel, Counter>,
    pools: Arc<PoolSizesCollector>,
    names: Arc<LabelValues>,
}

impl ComponentFamilies {
    /// Registers the families in `registry`; component names are bounded by `names`.
    pub(super) fn register(registry: &mut Registry, names: Arc<LabelValues>) -> Self {
        let families = ComponentFamilies {
            calls: latencies(),
            failures: Family::default(),
            waits: Family::default(),
            discards: Family::default(),
            pools: Arc::default(),
            names,
        };
        registry.register_with_unit(
            "component_call_duration",
            "Time a component call took, waiting for an instance included",
            Unit::Seconds,
            families.calls.clone(),
        );
        registry.register(
            "component_call_failures",
            "Component calls that failed in the runtime, by kind: trap, timeout, memory_limit, overloaded, start",
            families.failures.clone(),
        );
        registry.register(
            "pool_waits",
            "Waits for an instance: every instance was busy, or the one a call's affinity keeps to",
            families.waits.clone(),
        );
        registry.register(
            "pool_discards",
            "Instances thrown away because their call trapped, timed out or was abandoned",
            families.discards.clone(),
        );
        registry.register_collector(Box::new(Arc::clone(&families.pools)));
        families
    }

    /// The handles of component `name`, with a zero series for each failure
    /// kind, so a rate over them starts at the first scrape.
    pub fn component(&self, name: &str) -> ComponentMetrics {
        let component = self.names.get(name);
        let label = ComponentLabel {
            component: Arc::clone(&component),
        };
        let failures = CallFailure::ALL.map(|kind| {
            self.failures.get_or_create_owned(&FailureLabels {
                component: Arc::clone(&component),
                kind,
            })
        });
        ComponentMetrics {
            waits: self.waits.get_or_create_owned(&label),
            discards: self.discards.get_or_create_owned(&label),
            calls: self.calls.clone(),
            pools: Arc::clone(&self.pools),
            failures,
            component,
        }
    }
}

/// One component's metrics, as its pool records them.
#[derive(Clone, Debug)]
pub struct ComponentMetrics {
    component: Arc<str>,
    calls: Latencies<CallLabels>,
    failures: [Counter; 5],
    waits: Counter,
    discards: Counter,
    pools: Arc<PoolSizesCollector>,
}

impl ComponentMetrics {
    /// A call of `operation` (a name from the component's world) took `elapsed`.
    pub fn call(&self, operation: &'static str, elapsed: Duration) {
        let labels = CallLabels {
            component: Arc::clone(&self.component),
            operation,
        };
        self.calls
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// A call failed in the runtime.
    pub fn failed(&self, failure: CallFailure) {
        // The counters are in `CallFailure::ALL` order, which is declaration order.
        self.failures[failure as usize].inc();
    }

    /// A call waited for an instance.
    pub fn waited(&self) {
        self.waits.inc();
    }

    /// An instance was thrown away.
    pub fn discarded(&self) {
        self.discards.inc();
    }

    /// Reports `pool`'s sizes under this component until the pool is dropped.
    pub fn watch_pool(&self, pool: Weak<dyn PoolGauge>) {
        self.pools.watch(Arc::clone(&self.component), pool);
    }
}

/// The pools alive, asked for their sizes at every scrape. Versions of one
/// component serving side by side (during a hot swap) add up.
#[derive(Default)]
struct PoolSizesCollector {
    pools: Mutex<Vec<WatchedPool>>,
}

/// A pool and the component it serves.
type WatchedPool = (Arc<str>, Weak<dyn PoolGauge>);

impl std::fmt::Debug for PoolSizesCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSizesCollector").finish_non_exhaustive()
    }
}

impl PoolSizesCollector {
    fn watch(&self, component: Arc<str>, pool: Weak<dyn PoolGauge>) {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.retain(|(_, pool)| pool.strong_count() > 0);
        pools.push((component, pool));
    }

    /// The sizes by component, forgetting the pools that are gone.
    fn sizes(&self) -> BTreeMap<Arc<str>, PoolSizes> {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.retain(|(_, pool)| pool.strong_count() > 0);
        let mut sizes: BTreeMap<Arc<str>, PoolSizes> = BTreeMap::new();
        for (component, pool) in pools.iter() {
            let Some(pool) = pool.upgrade() else { continue };
            let now = pool.sizes();
            let total = sizes.entry(Arc::clone(component)).or_default();
            total.live += now.live;
            total.idle += now.idle;
            total.max += now.max;
        }
        sizes
    }
}

impl Collector for PoolSizesCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sizes = self.sizes();
        if sizes.is_empty() {
            return Ok(());
        }
        let mut instances = encoder.encode_descriptor(
            "pool_instances",
            "Instances alive per component: idle, or busy (serving a call or starting).",
            None,
            MetricType::Gauge,
        )?;
        for (component, size) in &sizes {
            let busy = size.live.saturating_sub(size.idle);
            for (state, count) in [("idle", size.idle), ("busy", busy)] {
                let labels = InstanceLabels {
                    component: Arc::clone(component),
                    state,
                };
                ConstGauge::new(gauge_value(count)).encode(instances.encode_family(&labels)?)?;
            }
        }
        let mut max = encoder.encode_descriptor(
            "pool_max_instances",
            "The most instances each component's pool may have.",
            None,
            MetricType::Gauge,
        )?;
        for (component, size) in &sizes {
            let labels = ComponentLabel {
                component: Arc::clone(component),
            };
            ConstGauge::new(gauge_value(size.max)).encode(max.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
