//! A bounded pool of instances of one component.
//!
//! A guest is single-threaded, so each instance serves one call at a time.
//! Instances are reused across calls (a connection a guest opened is a pooled
//! connection); the pool grows on demand up to `max_instances`, then callers
//! queue, with a bound on how many may wait. An instance whose call trapped,
//! timed out or was abandoned is discarded, never reused.
//!
//! Calls may carry an [`Affinity`]: they then keep to one instance (see
//! [`slots`]), for guests that hold state for a series of calls on the
//! instance that made it, such as a broker session on its connection.

mod limits;
mod slots;

pub use limits::MemoryGrant;

use super::grants::CapabilityGrant;
use super::instance::InstanceState;
use super::log_budget::LogBudget;
use super::turns::next_turn;
use crate::telemetry::component::{CallFailure, ComponentMetrics, PoolGauge, PoolSizes};
use slots::{Slots, Take};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use wasmtime::component::InstancePre;
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// A future borrowing an instance for the length of one call.
pub type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// How a world's generated bindings are instantiated and initialised, so one
/// pool implementation serves every component kind.
pub trait PooledWorld: Sized + Send + 'static {
    /// The pre-instantiated form (`XxxPre` from bindgen).
    type Pre: Clone + Send + Sync + 'static;

    /// Type-checks a linked component against the world. An error here means
    /// the component does not implement this world.
    fn prepare(instance_pre: InstancePre<InstanceState>) -> anyhow::Result<Self::Pre>;

    /// Instantiates one instance.
    fn instantiate<'a>(
        pre: &'a Self::Pre,
        store: &'a mut Store<InstanceState>,
    ) -> CallFuture<'a, Self>;

    /// Calls the component's `init` with its metadata; the inner error is the
    /// component's own description of why it refused.
    #[allow(clippy::ptr_arg, reason = "the generated bindings take `&Vec`")]
    fn init<'a>(
        &'a self,
        store: &'a mut Store<InstanceState>,
        metadata: &'a Vec<(String, String)>,
    ) -> CallFuture<'a, Result<(), String>>;

    /// Asks the component which optional features it implements.
    fn features<'a>(
        &'a self,
        store: &'a mut Store<InstanceState>,
    ) -> CallFuture<'a, Vec<crate::bindings::types::Feature>>;
}

/// One live instance: its store and the bindings to call into it.
pub struct PooledInstance<W> {
    /// The instance's store.
    pub store: Store<InstanceState>,
    /// The world's exports.
    pub bindings: W,
}

/// Sizing and deadlines of one pool.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// The most instances alive at once; 1 for stores that must not be shared.
    pub max_instances: usize,
    /// The most callers that may queue for an instance before calls are refused.
    pub max_waiting: usize,
}

/// Why a call did not return the component's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline (including waiting for an instance).
    #[error("did not answer within {0:?}")]
    Timeout(Duration),
    /// The guest trapped: panic, stack overflow, bad import use.
    #[error("trapped: {0}")]
    Trapped(String),
    /// The guest trapped asking for more memory than it was granted.
    #[error("trapped: {0}")]
    MemoryLimit(String),
    /// No instance could be had: the wait queue is full.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// A new instance could not be created or refused `init`.
    #[error("could not start an instance: {0}")]
    Start(String),
}

/// The instance a series of related calls keeps to (for example one
/// subscription's pulls), held by the caller and passed to
/// [`InstancePool::call_with_affinity`]: pinned to an instance by the first
/// call, and to another only once that instance is gone.
#[derive(Debug, Default)]
pub struct Affinity {
    /// The pinned instance's id; 0 before the first call.
    instance: AtomicU64,
}

impl Affinity {
    fn get(&self) -> Option<u64> {
        Some(self.instance.load(Ordering::Acquire)).filter(|&id| id != 0)
    }

    fn set(&self, id: u64) {
        self.instance.store(id, Ordering::Release);
    }
}

/// The pool of one component.
pub struct InstancePool<W: PooledWorld> {
    inner: Arc<PoolInner<W>>,
}

impl<W: PooledWorld> Clone for InstancePool<W> {
    fn clone(&self) -> Self {
        InstancePool {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct PoolInner<W: PooledWorld> {
    name: Arc<str>,
    engine: Engine,
    pre: W::Pre,
    grant: CapabilityGrant,
    metadata: Vec<(String, String)>,
    settings: PoolSettings,
    /// How many log lines its instances may write, shared by all of them.
    log_budget: Arc<LogBudget>,
    slots: Mutex<Slots<PooledInstance<W>>>,
    /// Signalled whenever an instance comes back or is discarded, for calls
    /// waiting for the instance their affinity is pinned to.
    returned: Notify,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    metrics: ComponentMetrics,
}

impl<W: PooledWorld> InstancePool<W> {
    /// A pool for component `name`. It starts one instance right away, so a
    /// component that fails to instantiate or `init` fails here, at load time.
    pub async fn start(
        name: &str,
        engine: &Engine,
        pre: W::Pre,
        grant: CapabilityGrant,
        metadata: Vec<(String, String)>,
        settings: PoolSettings,
    ) -> Result<Self, CallError> {
        let max = settings.max_instances.max(1);
        let pool = InstancePool {
            inner: Arc::new(PoolInner {
                name: Arc::from(name),
                engine: engine.clone(),
                pre,
                grant,
                metadata,
                settings,
                log_budget: Arc::default(),
                slots: Mutex::new(Slots::new(max)),
                returned: Notify::new(),
                permits: Arc::new(Semaphore::new(max)),
                waiting: AtomicUsize::new(0),
                metrics: crate::telemetry::metrics().components().component(name),
            }),
        };
        let sizes: Arc<dyn PoolGauge> = pool.inner.clone();
        pool.inner.metrics.watch_pool(Arc::downgrade(&sizes));
        let Take::New(id) = pool.inner.take(None, false) else {
            return Err(CallError::Start(
                "a new pool already had an instance".into(),
            ));
        };
        let first = pool.inner.create(id).await?;
        pool.inner.put(id, first);
        Ok(pool)
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Runs `call` on an instance under the component's deadline. The
    /// instance goes back to the pool only if the call returned normally.
    /// `operation` names the call (its export's name) in the metrics.
    pub async fn call<R, F>(&self, operation: &'static str, call: F) -> Result<R, CallError>
    where
        F: for<'a> FnOnce(&'a mut PooledInstance<W>) -> CallFuture<'a, R>,
    {
        self.call_on(operation, None, call).await
    }

    /// [`InstancePool::call`] on the instance `affinity` is pinned to,
    /// waiting (within the deadline) while another call has it; pinned by
    /// the first call, and again whenever that instance is gone.
    pub async fn call_with_affinity<R, F>(
        &self,
        operation: &'static str,
        affinity: &Affinity,
        call: F,
    ) -> Result<R, CallError>
    where
        F: for<'a> FnOnce(&'a mut PooledInstance<W>) -> CallFuture<'a, R>,
    {
        self.call_on(operation, Some(affinity), call).await
    }

    /// Runs the call and records it: its time (waiting for an instance
    /// included) and, if it failed, how.
    async fn call_on<R, F>(
        &self,
        operation: &'static str,
        affinity: Option<&Affinity>,
        call: F,
    ) -> Result<R, CallError>
    where
        F: for<'a> FnOnce(&'a mut PooledInstance<W>) -> CallFuture<'a, R>,
    {
        let started = Instant::now();
        let answer = self.run(affinity, call).await;
        let metrics = &self.inner.metrics;
        metrics.call(operation, started.elapsed());
        if let Err(err) = &answer {
            metrics.failed(err.failure());
        }
        answer
    }

    async fn run<R, F>(&self, affinity: Option<&Affinity>, call: F) -> Result<R, CallError>
    where
        F: for<'a> FnOnce(&'a mut PooledInstance<W>) -> CallFuture<'a, R>,
    {
        let timeout = self.inner.grant.call_timeout;
        let deadline = Instant::now() + timeout;
        let mut lease = self.lease(deadline, affinity).await?;
        let instance = lease.instance_mut()?;
        instance.store.data_mut().deadline = deadline;
        instance.store.set_epoch_deadline(1);
        let remaining = deadline.saturating_duration_since(Instant::now());
        // The epoch callback stops a guest that computes past its deadline; this
        // timer stops one that waits on I/O past it.
        match tokio::time::timeout(remaining, call(instance)).await {
            Ok(Ok(answer)) => {
                lease.release();
                Ok(answer)
            }
            Ok(Err(trap)) => {
                let exceeded = lease.instance_mut()?.store.data().limits.exceeded();
                Err(classify(&trap, deadline, timeout, exceeded))
            }
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }

    async fn lease(
        &self,
        deadline: Instant,
        affinity: Option<&Affinity>,
    ) -> Result<Lease<W>, CallError> {
        let inner = &self.inner;
        let permit = self.permit(deadline).await?;
        loop {
            // Registered before looking, so a return in between is not missed.
            let returned = inner.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            let take = inner.take(affinity.and_then(Affinity::get), affinity.is_some());
            let (id, instance) = match take {
                Take::Idle(id, instance) => (id, instance),
                Take::New(id) => (id, inner.create(id).await?),
                Take::Busy => {
                    inner.metrics.waited();
                    let wait = deadline.saturating_duration_since(Instant::now());
                    if tokio::time::timeout(wait, returned).await.is_err() {
                        return Err(CallError::Timeout(inner.grant.call_timeout));
                    }
                    continue;
                }
            };
            if let Some(affinity) = affinity {
                affinity.set(id);
            }
            return Ok(Lease {
                pool: Arc::clone(inner),
                id,
                instance: Some(instance),
                _permit: permit,
            });
        }
    }

    /// A permit to check an instance out, waiting (within `deadline`) while
    /// every instance is busy, unless too many calls wait already.
    async fn permit(&self, deadline: Instant) -> Result<OwnedSemaphorePermit, CallError> {
        let inner = &self.inner;
        let permit = match Arc::clone(&inner.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let queued = inner.waiting.fetch_add(1, Ordering::AcqRel);
                let _unqueue = Unqueue(&inner.waiting);
                if queued >= inner.settings.max_waiting {
                    return Err(CallError::Overloaded(format!(
                        "all {} instances are busy and {queued} calls are already waiting",
                        inner.settings.max_instances
                    )));
                }
                inner.metrics.waited();
                let wait = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(wait, Arc::clone(&inner.permits).acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return Err(CallError::Overloaded("the pool is closed".into())),
                    Err(_) => return Err(CallError::Timeout(inner.grant.call_timeout)),
                }
            }
        };
        Ok(permit)
    }
}

impl<W: PooledWorld> PoolInner<W> {
    async fn new_instance(&self) -> Result<PooledInstance<W>, CallError> {
        let sandbox = self
            .grant
            .sandbox(&self.name)
            .map_err(|err| CallError::Start(format!("{err:#}")))?;
        let limits = MemoryGrant::new(self.grant.memory_bytes);
        let mut store = Store::new(
            &self.engine,
            InstanceState::new(
                Arc::clone(&self.name),
                sandbox,
                limits,
                Arc::clone(&self.log_budget),
            ),
        );
        store.limiter(|state| &mut state.limits);
        // At every epoch tick a running guest either yields to the executor
        // and waits for a turn (so it never starves other requests; see
        // `super::turns`) or, past its deadline, traps.
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::YieldCustom(1, next_turn()))
            }
        });
        let timeout = self.grant.call_timeout;
        let deadline = Instant::now() + timeout;
        store.data_mut().deadline = deadline;
        store.set_epoch_deadline(1);
        let start = async {
            let bindings = W::instantiate(&self.pre, &mut store)
                .await
                .map_err(|trap| classify(&trap, deadline, timeout, false))?;
            match bindings.init(&mut store, &self.metadata).await {
                Ok(Ok(())) => Ok(bindings),
                Ok(Err(refusal)) => Err(CallError::Start(format!("init failed: {refusal}"))),
                Err(trap) => Err(CallError::Start(format!(
                    "init {}",
                    classify(&trap, deadline, timeout, false)
                ))),
            }
        };
        let bindings = match tokio::time::timeout(timeout, start).await {
            Ok(Ok(bindings)) => bindings,
            Ok(Err(CallError::Start(message))) => return Err(CallError::Start(message)),
            Ok(Err(other)) => return Err(CallError::Start(other.to_string())),
            Err(_) => return Err(CallError::Start(CallError::Timeout(timeout).to_string())),
        };
        Ok(PooledInstance { store, bindings })
    }

    /// Creates the instance `id` was reserved for by [`Slots::take`]; the
    /// id is given up if that fails or the caller goes away meanwhile.
    async fn create(&self, id: u64) -> Result<PooledInstance<W>, CallError> {
        let mut reservation = Reservation {
            pool: self,
            id,
            kept: false,
        };
        let instance = self.new_instance().await?;
        reservation.kept = true;
        Ok(instance)
    }

    /// See [`Slots::take`]; a poisoned lock (a panic while it was held)
    /// leaves the call to create a throwaway instance.
    fn take(&self, preferred: Option<u64>, pinning: bool) -> Take<PooledInstance<W>> {
        match self.slots.lock() {
            Ok(mut slots) => slots.take(preferred, pinning),
            Err(_) => Take::New(0),
        }
    }

    /// Returns an instance fit for reuse.
    fn put(&self, id: u64, instance: PooledInstance<W>) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.put(id, instance);
        }
        self.returned.notify_waiters();
    }

    /// Forgets an instance that is gone.
    fn discard(&self, id: u64) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.discard(id);
        }
        self.returned.notify_waiters();
    }
}

/// An instance checked out of the pool. Dropped without `release`, the
/// instance is discarded: its call failed or was abandoned midway, so its
/// state cannot be trusted.
struct Lease<W: PooledWorld> {
    pool: Arc<PoolInner<W>>,
    id: u64,
    instance: Option<PooledInstance<W>>,
    _permit: OwnedSemaphorePermit,
}

impl<W: PooledWorld> Lease<W> {
    fn instance_mut(&mut self) -> Result<&mut PooledInstance<W>, CallError> {
        self.instance
            .as_mut()
            .ok_or_else(|| CallError::Start("instance already released".into()))
    }

    fn release(mut self) {
        if let Some(instance) = self.instance.take() {
            self.pool.put(self.id, instance);
        }
    }
}

impl<W: PooledWorld> Drop for Lease<W> {
    fn drop(&mut self) {
        if self.instance.take().is_some() {
            self.pool.metrics.discarded();
            self.pool.discard(self.id);
        }
    }
}

/// An instance id reserved while its instance is created: given up when
/// dropped unless kept, so a failed or abandoned creation does not count as
/// an instance alive for ever.
struct Reservation<'a, W: PooledWorld> {
    pool: &'a PoolInner<W>,
    id: u64,
    kept: bool,
}

impl<W: PooledWorld> Drop for Reservation<'_, W> {
    fn drop(&mut self) {
        if !self.kept {
            self.pool.discard(self.id);
        }
    }
}

struct Unqueue<'a>(&'a AtomicUsize);

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Tells a deadline interruption and a memory limit hit (`memory_exceeded`)
/// from any other trap.
fn classify(
    trap: &wasmtime::Error,
    deadline: Instant,
    timeout: Duration,
    memory_exceeded: bool,
) -> CallError {
    let interrupted = matches!(trap.downcast_ref::<Trap>(), Some(Trap::Interrupt));
    if interrupted || Instant::now() >= deadline {
        CallError::Timeout(timeout)
    } else if memory_exceeded {
        CallError::MemoryLimit(trap_reason(trap))
    } else {
        CallError::Trapped(trap_reason(trap))
    }
}

impl CallError {
    /// The kind of failure, as the metrics count it.
    fn failure(&self) -> CallFailure {
        match self {
            CallError::Timeout(_) => CallFailure::Timeout,
            CallError::Trapped(_) => CallFailure::Trap,
            CallError::MemoryLimit(_) => CallFailure::MemoryLimit,
            CallError::Overloaded(_) => CallFailure::Overloaded,
            CallError::Start(_) => CallFailure::Start,
        }
    }
}

impl<W: PooledWorld> PoolGauge for PoolInner<W> {
    fn sizes(&self) -> PoolSizes {
        let (live, idle) = match self.slots.lock() {
            Ok(slots) => (slots.live(), slots.idle()),
            Err(_) => (0, 0),
        };
        PoolSizes {
            live,
            idle,
            max: self.settings.max_instances,
        }
    }
}

/// What went wrong, on one line and without the guest backtrace: the trap
/// code or host error and its causes. The backtrace is logged at debug level
/// for whoever debugs the component.
fn trap_reason(trap: &wasmtime::Error) -> String {
    let backtrace = trap
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(ToString::to_string);
    if let Some(backtrace) = &backtrace {
        tracing::debug!(%backtrace, "guest backtrace");
    }
    let mut parts: Vec<String> = Vec::new();
    for cause in trap.chain() {
        let text = cause.to_string();
        if backtrace.as_deref() == Some(text.as_str()) {
            continue;
        }
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if let Some(code) = trap.downcast_ref::<Trap>().map(Trap::to_string)
        && !parts.iter().any(|p| p.contains(&code))
    {
        parts.push(code);
    }
    parts.join(": ")
}
