//! Hot reload: reloads that applied everything or failed somewhere, and
//! load failures per component (at start too).

use super::component::ComponentLabel;
use super::labels::LabelValues;
use crate::reload::ReloadReport;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The reload families.
#[derive(Debug)]
pub struct ReloadMetrics {
    reloads: Family<ResultLabel, Counter>,
    load_failures: Family<ComponentLabel, Counter>,
    components: Arc<LabelValues>,
}

impl ReloadMetrics {
    /// Registers the families in `registry`; component names are bounded by `components`.
    pub(super) fn register(registry: &mut Registry, components: Arc<LabelValues>) -> Self {
        let metrics = ReloadMetrics {
            reloads: Family::default(),
            load_failures: Family::default(),
            components,
        };
        for result in ["success", "failure"] {
            metrics.reloads.get_or_create_owned(&ResultLabel { result });
        }
        registry.register(
            "reload",
            "Reloads after the first load: success when every change applied, failure when one did not (the old version keeps serving)",
            metrics.reloads.clone(),
        );
        registry.register(
            "component_load_failures",
            "Versions of a component that failed to load (YAML, wasm, sha256, init), at start or on reload",
            metrics.load_failures.clone(),
        );
        metrics
    }

    /// A load (`initial`: the one at start) finished with `report`.
    pub fn finished(&self, initial: bool, report: &ReloadReport) {
        for name in report.failed.iter().filter_map(|f| f.name.as_deref()) {
            let label = ComponentLabel {
                component: self.components.get(name),
            };
            self.load_failures.get_or_create(&label).inc();
        }
        if !initial {
            let result = if report.failed.is_empty() {
                "success"
            } else {
                "failure"
            };
            self.reloads.get_or_create(&ResultLabel { result }).inc();
        }
    }
}
