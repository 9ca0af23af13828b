//! Prometheus metrics: one registry per process, served as OpenMetrics text
//! at `/metrics` on `--metrics-port` ([`server`]).
//!
//! The registry is process-wide ([`metrics`]) because one process is one
//! sidecar, and the places that feed it (the API routers, the instance
//! pool, the reloader, pub/sub settlement) are choke points in layers that
//! should not carry a metrics handle through their constructors: each
//! records with one call. Tests of this module build a [`Metrics`] of their
//! own.
//!
//! Every label value is bounded: API areas, verbs, methods, operations and
//! outcomes come from fixed sets; component names, topics and route
//! templates pass through [`labels::LabelValues`], which folds values past a
//! cap into `other`. The parts:
//! - [`api`]: HTTP and gRPC requests (middleware on both routers);
//! - [`component`]: component calls, failures by kind, instance pools;
//! - [`guest`]: counters and histograms components emit themselves;
//! - [`pubsub`]: what became of each message delivered to the app;
//! - [`reload`]: hot reloads and component load failures;
//! - `process`: CPU, memory, threads and files of the process.
//!
//! Help text given to the registry gets its closing period from the
//! encoder; collectors ([`component`]'s pool sizes, `process`) write theirs.

pub mod api;
pub mod component;
pub mod guest;
pub mod labels;
mod process;
pub mod pubsub;
pub mod reload;
pub mod server;

use api::ApiMetrics;
use component::ComponentFamilies;
use guest::GuestMetrics;
use labels::LabelValues;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use pubsub::PubSubMetrics;
use reload::ReloadMetrics;
use std::sync::{Arc, LazyLock};

/// Distinct component names kept as labels; the rest count as `other`.
const MAX_COMPONENTS: usize = 256;

/// Latency buckets in seconds, from 100 µs (a warm in-memory call) to 10 s
/// (the default component deadline).
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A family of latency histograms with [`LATENCY_BUCKETS`].
type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

fn latencies<L: Clone + std::hash::Hash + Eq>() -> Latencies<L> {
    Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS))
}

/// The registry and its typed families; cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Families>,
}

#[derive(Debug)]
struct Families {
    registry: Registry,
    api: ApiMetrics,
    components: ComponentFamilies,
    guest: GuestMetrics,
    pubsub: PubSubMetrics,
    reload: ReloadMetrics,
}

impl Metrics {
    /// A registry with every family registered (Outrig's under `outrig_`,
    /// the process's under Prometheus's usual `process_` names).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(process::ProcessCollector::new()));
        let outrig = registry.sub_registry_with_prefix("outrig");
        let names = Arc::new(LabelValues::new(MAX_COMPONENTS));
        let families = Families {
            api: ApiMetrics::register(outrig),
            components: ComponentFamilies::register(outrig, Arc::clone(&names)),
            guest: GuestMetrics::register(outrig, Arc::clone(&names)),
            pubsub: PubSubMetrics::register(outrig, Arc::clone(&names)),
            reload: ReloadMetrics::register(outrig, names),
            registry,
        };
        Metrics {
            inner: Arc::new(families),
        }
    }

    /// HTTP and gRPC requests.
    pub fn api(&self) -> &ApiMetrics {
        &self.inner.api
    }

    /// Component calls and pools.
    pub fn components(&self) -> &ComponentFamilies {
        &self.inner.components
    }

    /// Metrics components emit through their host import.
    pub fn guest(&self) -> &GuestMetrics {
        &self.inner.guest
    }

    /// Pub/sub delivery.
    pub fn pubsub(&self) -> &PubSubMetrics {
        &self.inner.pubsub
    }

    /// Hot reload.
    pub fn reload(&self) -> &ReloadMetrics {
        &self.inner.reload
    }

    /// Everything, as OpenMetrics text (ending in `# EOF`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The process's metrics, which the sidecar serves.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

#[cfg(test)]
mod tests;
