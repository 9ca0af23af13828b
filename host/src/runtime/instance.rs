//! The state of one instance's store: its WASI context, resource table,
//! name-lookup gate, HTTP hooks, memory limiter, call deadline, and the host
//! interface it imports.

use super::grants::Sandbox;
use super::http::OutboundHttp;
use super::log_budget::{Admission, LINES_PER_SECOND, LogBudget};
use super::lookup::{LookupGate, LookupView};
use super::pool::MemoryGrant;
use crate::bindings::{host, types};
use std::sync::Arc;
use std::time::Instant;
use tracing::Level;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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
    http: WasiHttpCtx,
    /// Which origins the guest's HTTP requests may reach.
    http_hooks: OutboundHttp,
    /// The component's log budget, shared by all its instances.
    log_budget: Arc<LogBudget>,
    /// Enforces the component's memory grant.
    pub(crate) limits: MemoryGrant,
    /// When the current call must stop; checked at every epoch tick.
    pub(crate) deadline: Instant,
}

impl InstanceState {
    /// Store data for an instance of `component`, confined by `sandbox`
    /// (see [`super::CapabilityGrant::sandbox`]), its log lines drawn from
    /// the component's `log_budget`.
    pub fn new(
        component: Arc<str>,
        sandbox: Sandbox,
        limits: MemoryGrant,
        log_budget: Arc<LogBudget>,
    ) -> Self {
        InstanceState {
            component,
            wasi: sandbox.wasi,
            table: ResourceTable::new(),
            lookup: sandbox.lookup,
            http: WasiHttpCtx::new(),
            http_hooks: sandbox.http,
            log_budget,
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

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl types::Host for InstanceState {}

impl host::Host for InstanceState {
    fn log(&mut self, level: host::LogLevel, message: String) {
        // Lines nobody would see cost no budget.
        if !enabled(level) {
            return;
        }
        let component = &*self.component;
        match self.log_budget.admit(Instant::now()) {
            Admission::Write { dropped: 0 } => {}
            Admission::Write { dropped } => {
                tracing::warn!(
                    component,
                    dropped,
                    "component log over budget: {dropped} lines were dropped"
                );
            }
            Admission::StartDropping => {
                tracing::warn!(
                    component,
                    "component logs more than {LINES_PER_SECOND} lines/s; dropping its lines until it slows down"
                );
                return;
            }
            Admission::Drop => return,
        }
        let message = truncate(&message, MAX_LOG_LINE);
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

/// Whether a component's line at `level` would be written at all.
fn enabled(level: host::LogLevel) -> bool {
    match level {
        host::LogLevel::Trace => tracing::enabled!(Level::TRACE),
        host::LogLevel::Debug => tracing::enabled!(Level::DEBUG),
        host::LogLevel::Info => tracing::enabled!(Level::INFO),
        host::LogLevel::Warn => tracing::enabled!(Level::WARN),
        host::LogLevel::Error => tracing::enabled!(Level::ERROR),
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
