//! The state of one instance's store: its WASI context, resource table,
//! name-lookup gate, memory limiter, call deadline, and the host interface
//! it imports.

use super::lookup::{LookupGate, LookupView};
use super::pool::MemoryGrant;
use crate::bindings::{host, types};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Longest log line a component may write; longer ones are cut, so a guest
/// cannot flood the sidecar's log with one giant line.
const MAX_LOG_LINE: usize = 8 * 1024;

/// Per-instance store data.
pub struct InstanceState {
    component: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    /// Which names the guest may look up, and what their addresses grant.
    lookup: LookupGate,
    /// Enforces the component's memory grant.
    pub(crate) limits: MemoryGrant,
    /// When the current call must stop; checked at every epoch tick.
    pub(crate) deadline: Instant,
}

impl InstanceState {
    /// Store data for an instance of `component`, sandboxed by `wasi` and
    /// `lookup` (see [`super::CapabilityGrant::sandbox`]).
    pub fn new(
        component: Arc<str>,
        wasi: WasiCtx,
        lookup: LookupGate,
        limits: MemoryGrant,
    ) -> Self {
        InstanceState {
            component,
            wasi,
            table: ResourceTable::new(),
            lookup,
            limits,
            deadline: Instant::now(),
        }
    }

    /// What the gated name lookup works on (see [`super::lookup`]).
    pub fn lookup_view(&mut self) -> LookupView<'_> {
        let InstanceState {
            wasi,
            table,
            lookup,
            ..
        } = self;
        LookupView {
            sockets: WasiSocketsCtxView {
                ctx: wasi.sockets(),
                table,
            },
            gate: lookup,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for InstanceState {}

impl host::Host for InstanceState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let message = truncate(&message, MAX_LOG_LINE);
        let component = &*self.component;
        match level {
            host::LogLevel::Trace => tracing::trace!(component, "{message}"),
            host::LogLevel::Debug => tracing::debug!(component, "{message}"),
            host::LogLevel::Info => tracing::info!(component, "{message}"),
            host::LogLevel::Warn => tracing::warn!(component, "{message}"),
            host::LogLevel::Error => tracing::error!(component, "{message}"),
        }
    }

    fn counter_add(&mut self, name: String, value: u64, labels: Vec<(String, String)>) {
        crate::telemetry::metrics()
            .guest()
            .counter_add(&self.component, &name, value, labels);
    }

    fn histogram_record(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
        crate::telemetry::metrics()
            .guest()
            .histogram_record(&self.component, &name, value, labels);
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("hello", 3), "hel");
        assert_eq!(truncate("héllo", 2), "h");
    }
}
