//! Counters and histograms the host exports beside its own Prometheus
//! metrics, as `outrig_component_counter_total` and
//! `outrig_component_histogram`, labelled with the component's name and the
//! metric's (`metric`).
//!
//! Names and label keys must be Prometheus identifiers
//! (`[a-zA-Z_][a-zA-Z0-9_]*`, at most 64 bytes); the host drops records with
//! another name and labels with another key, keeps at most 8 labels per
//! record (values cut to 128 bytes), and folds series past its bound into
//! `metric="other"`. Keep label values to a small set: every distinct set is
//! a series the sidecar keeps for as long as it runs.
//!
//! Outside WebAssembly (a component's unit tests, run natively) there is no
//! host, and records are dropped.

/// Adds `value` to counter `name` (exported with a `_total` suffix).
pub fn counter_add(name: &str, value: u64, labels: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::state_store::outrig::component::host::counter_add(name, value, &owned(labels));
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (name, value, labels);
}

/// Records `value` in histogram `name`; values that are not finite are dropped.
pub fn histogram_record(name: &str, value: f64, labels: &[(&str, &str)]) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::state_store::outrig::component::host::histogram_record(
        name,
        value,
        &owned(labels),
    );
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (name, value, labels);
}

#[cfg(target_arch = "wasm32")]
fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}
