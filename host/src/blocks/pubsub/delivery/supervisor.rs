//! Keeps one worker per subscription while the declared subscriptions
//! change: a reload that adds a `Subscription` starts its worker, one that
//! removes it stops its worker (which settles what it has in flight), one
//! that changes it replaces the worker, and the others run on untouched.

use super::worker::Worker;
use super::{
    ActiveSubscription, DeclaredDelivery, DeliveryContext, DeliverySettings, DeliveryStatus,
};
use crate::blocks::pubsub::subscription::SubscriptionSpec;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// The workers of one app and what they were started from.
pub(super) struct Supervisor {
    ctx: DeliveryContext,
    /// The declared subscriptions, seen up to the ones running.
    declared: watch::Receiver<Arc<DeclaredDelivery>>,
    programmatic: Vec<SubscriptionSpec>,
    settings: DeliverySettings,
    status: Arc<DeliveryStatus>,
    running: Vec<RunningWorker>,
    /// Workers told to stop, finishing what they have in flight.
    retiring: JoinSet<()>,
}

/// What a reconcile does for one wanted subscription, in wanted order.
enum Step {
    /// Its worker runs on.
    Keep(RunningWorker),
    /// It needs a new worker.
    Start(SubscriptionSpec),
}

/// One subscription's worker and the switch that stops it.
struct RunningWorker {
    subscription: Arc<ActiveSubscription>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Starts the workers of the subscriptions declared now and of the
    /// app's own, and reports them to `status`.
    pub(super) fn start(
        ctx: DeliveryContext,
        programmatic: Vec<SubscriptionSpec>,
        settings: DeliverySettings,
        status: Arc<DeliveryStatus>,
    ) -> Self {
        let mut declared = ctx.declared.clone();
        let now = declared.borrow_and_update().subscriptions.clone();
        let mut supervisor = Supervisor {
            ctx,
            declared,
            programmatic,
            settings,
            status,
            running: Vec::new(),
            retiring: JoinSet::new(),
        };
        supervisor.reconcile(now);
        supervisor
    }

    /// Follows the declared subscriptions until `stopped` turns true, then
    /// stops every worker and waits for what they have in flight.
    pub(super) async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        // A clone sees what this one saw: a change made since `start` is
        // still to come.
        let mut declared = self.declared.clone();
        let mut following = true;
        loop {
            tokio::select! {
                _ = stopped.wait_for(|stopped| *stopped) => break,
                changed = declared.changed(), if following => {
                    if changed.is_err() {
                        // No more reloads: keep what runs until stopped.
                        following = false;
                        continue;
                    }
                    let subscriptions = declared.borrow_and_update().subscriptions.clone();
                    self.reconcile(subscriptions);
                }
            }
        }
        for worker in std::mem::take(&mut self.running) {
            self.retire(worker);
        }
        while self.retiring.join_next().await.is_some() {}
    }

    /// Brings the workers in line with `declared` and the app's own
    /// subscriptions: unchanged ones keep running.
    fn reconcile(&mut self, declared: Vec<SubscriptionSpec>) {
        while self.retiring.try_join_next().is_some() {}
        let wanted = super::startup::merge(declared, self.programmatic.clone());
        let mut before = std::mem::take(&mut self.running);
        let plan: Vec<Step> = wanted
            .into_iter()
            .map(
                |spec| match before.iter().position(|w| w.subscription.spec == spec) {
                    Some(kept) => Step::Keep(before.swap_remove(kept)),
                    None => Step::Start(spec),
                },
            )
            .collect();
        for worker in before {
            let spec = &worker.subscription.spec;
            tracing::info!(pubsub = %spec.pubsub_name, topic = %spec.topic, origin = %spec.origin, "unsubscribed");
            self.retire(worker);
        }
        for step in plan {
            let spec = match step {
                Step::Keep(kept) => {
                    self.running.push(kept);
                    continue;
                }
                Step::Start(spec) => spec,
            };
            match ActiveSubscription::compile(spec) {
                Ok(subscription) => {
                    let worker = self.spawn(subscription);
                    self.running.push(worker);
                }
                Err(err) => tracing::error!("{err}; not subscribed"),
            }
        }
        let subscriptions = self
            .running
            .iter()
            .map(|worker| Arc::clone(&worker.subscription))
            .collect();
        self.status.set_running(subscriptions);
    }

    fn spawn(&self, subscription: ActiveSubscription) -> RunningWorker {
        let subscription = Arc::new(subscription);
        let (stop, stopped) = watch::channel(false);
        let worker = Worker::new(
            self.ctx.clone(),
            Arc::clone(&subscription),
            self.settings.clone(),
            stopped,
        );
        RunningWorker {
            subscription,
            stop,
            task: tokio::spawn(worker.run()),
        }
    }

    /// Tells `worker` to stop; it settles what it has in flight.
    fn retire(&mut self, worker: RunningWorker) {
        worker.stop.send_replace(true);
        let task = worker.task;
        self.retiring.spawn(async move {
            if let Err(err) = task.await {
                tracing::warn!(error = %err, "a delivery worker ended abnormally");
            }
        });
    }
}
