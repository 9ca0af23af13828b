//! The process-wide wasmtime engine, narrowed to Outrig's defaults.

use anyhow::Context;
use std::sync::{Arc, Weak};
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Every running guest yields to the async
/// executor at least this often, and per-call deadlines are checked at this
/// granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The shared engine, plus the ticker that drives epoch interruption.
#[derive(Clone)]
pub struct RuntimeEngine {
    engine: Arc<Engine>,
}

impl RuntimeEngine {
    /// Builds the engine and starts its epoch ticker thread. The ticker holds a
    /// `Weak` reference, so it stops once the last engine handle is dropped.
    pub fn new() -> anyhow::Result<Self> {
        let engine = match Engine::new(&config(true)) {
            Ok(engine) => engine,
            // The pooling allocator reserves a lot of virtual address space up
            // front; where that is refused (a tight `ulimit -v`), fall back to
            // on-demand allocation rather than failing to start.
            Err(err) => {
                tracing::warn!(error = %err, "pooling allocator unavailable; falling back to on-demand instance allocation");
                Engine::new(&config(false))
                    .map_err(anyhow::Error::from)
                    .context("creating the wasmtime engine")?
            }
        };
        let engine = Arc::new(engine);
        spawn_epoch_ticker(Arc::downgrade(&engine));
        Ok(RuntimeEngine { engine })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Guests are interrupted by epochs, not fuel: epochs cost almost nothing on
    // the hot path and let a looping guest be stopped and yield.
    config.epoch_interruption(true);
    // Keep guest stacks bounded so deep recursion traps instead of exhausting
    // the host thread; the async stack must exceed it with room for host frames.
    config.max_wasm_stack(1 << 20);
    config.async_stack_size(2 << 20);
    // Copy-on-write images make instantiation a mapping, not a copy.
    config.memory_init_cow(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // Bounded counts keep the reserved address space modest while leaving
        // room for hundreds of pooled instances across all components.
        pool.total_component_instances(256)
            .total_core_instances(1024)
            .total_memories(512)
            .total_tables(1024)
            .total_stacks(256)
            // Interpreted-language components (componentize-py/-js) have many
            // core instances and large tables.
            .max_component_instance_size(4 << 20)
            .table_elements(100_000)
            .max_memories_per_module(2)
            .max_tables_per_module(4);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

fn spawn_epoch_ticker(engine: Weak<Engine>) {
    let spawned = std::thread::Builder::new()
        .name("outrig-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(err) = spawned {
        // Without the ticker no deadline can fire; refuse loudly in the log
        // rather than silently running unbounded guests.
        tracing::error!(error = %err, "could not start the epoch ticker; guest deadlines will not be enforced");
    }
}
