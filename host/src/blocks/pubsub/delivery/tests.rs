//! The delivery loop against an in-test broker and app: what is acked,
//! nacked and dead-lettered for each answer, how many events are in flight,
//! and what stopping leaves behind.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::appchannel::events::{BulkDelivery, TopicDelivery, Verdict};
use crate::appchannel::{AppChannelError, AppRequest, AppResponse};
use crate::blocks::ComponentError;
use crate::blocks::catalog::{CatalogEntry, CatalogSnapshot, ComponentInfo, LoadStatus};
use crate::blocks::pubsub::subscription::Routes;
use crate::blocks::pubsub::{
    Broker, BrokerSubscription, IncomingMessage, OutgoingMessage, PublishFailure,
};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A broker in memory that records how each message was settled.
#[derive(Default)]
struct RecordingBroker {
    queue: Mutex<VecDeque<IncomingMessage>>,
    acked: Mutex<Vec<String>>,
    nacked: Mutex<Vec<(String, Duration)>>,
    published: Mutex<Vec<(String, Vec<u8>)>>,
    /// The `max` of every pull, in order.
    pulls: Mutex<Vec<u32>>,
    /// How many pulls for nothing (subscribes) fail before one works.
    refused_subscribes: AtomicUsize,
    /// How many ack calls were made, and how long each takes.
    ack_calls: AtomicUsize,
    ack_pause: Duration,
    /// Whether it holds its messages in itself, as the in-process broker.
    volatile: bool,
}

impl RecordingBroker {
    fn with_events(count: usize) -> Arc<Self> {
        let broker = Arc::new(RecordingBroker::default());
        for n in 0..count {
            broker.push("orders", &format!("m{n}"));
        }
        broker
    }

    /// Queues an event with id `id` on `topic`.
    fn push(&self, topic: &str, id: &str) {
        let event = serde_json::json!({
            "specversion": "1.0", "id": id, "source": "test",
            "type": "test.event", "data": {"id": id}
        });
        self.queue.lock().unwrap().push_back(IncomingMessage {
            id: id.into(),
            topic: topic.into(),
            data: serde_json::to_vec(&event).unwrap(),
            content_type: "application/cloudevents+json".into(),
            metadata: Default::default(),
            attempt: 1,
        });
    }

    fn queued(&self, topic: &str) -> usize {
        let queue = self.queue.lock().unwrap();
        queue.iter().filter(|m| m.topic == topic).count()
    }

    /// The ids acked, repeats kept, sorted by their number.
    fn acked_in_order(&self) -> Vec<String> {
        let mut acked = self.acked.lock().unwrap().clone();
        acked.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
        acked
    }

    fn settled(&self) -> usize {
        self.acked.lock().unwrap().len() + self.nacked.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl Broker for RecordingBroker {
    async fn publish(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), Vec<PublishFailure>> {
        let mut published = self.published.lock().unwrap();
        for message in messages {
            published.push((topic.to_owned(), message.data));
        }
        Ok(())
    }

    async fn pull(
        &self,
        subscription: &BrokerSubscription,
        max: u32,
        _wait: Duration,
    ) -> Result<Vec<IncomingMessage>, ComponentError> {
        self.pulls.lock().unwrap().push(max);
        if max == 0
            && self
                .refused_subscribes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(ComponentError::Unavailable("the broker is down".into()));
        }
        let mut queue = self.queue.lock().unwrap();
        let (mut taken, kept) = (Vec::new(), std::mem::take(&mut *queue));
        for message in kept {
            if taken.len() < max as usize && message.topic == subscription.topic {
                taken.push(message);
            } else {
                queue.push_back(message);
            }
        }
        Ok(taken)
    }

    fn volatile_messages(&self) -> bool {
        self.volatile
    }

    async fn ack(&self, ids: Vec<String>) -> Result<(), ComponentError> {
        self.ack_calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.ack_pause).await;
        self.acked.lock().unwrap().extend(ids);
        Ok(())
    }

    async fn nack(&self, ids: Vec<String>, after: Duration) -> Result<(), ComponentError> {
        let mut nacked = self.nacked.lock().unwrap();
        nacked.extend(ids.into_iter().map(|id| (id, after)));
        Ok(())
    }
}

/// An app answering every event with one verdict after a pause, counting
/// how many events it holds at once.
struct ScriptedApp {
    verdict: Verdict,
    pause: Duration,
    holding: AtomicUsize,
    most_held: AtomicUsize,
    routes: Mutex<Vec<String>>,
    bulk_sizes: Mutex<Vec<usize>>,
}

impl ScriptedApp {
    fn new(verdict: Verdict, pause: Duration) -> Arc<Self> {
        Arc::new(ScriptedApp {
            verdict,
            pause,
            holding: AtomicUsize::new(0),
            most_held: AtomicUsize::new(0),
            routes: Mutex::new(Vec::new()),
            bulk_sizes: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait::async_trait]
impl AppChannel for ScriptedApp {
    async fn invoke(&self, _request: AppRequest) -> Result<AppResponse, AppChannelError> {
        Err(AppChannelError::InvalidRequest("not in this test".into()))
    }

    async fn health_check(&self) -> Result<(), AppChannelError> {
        Ok(())
    }

    async fn subscriptions(&self) -> Result<Vec<SubscriptionSpec>, AppChannelError> {
        Ok(Vec::new())
    }

    async fn deliver(&self, delivery: TopicDelivery<'_>) -> Result<Verdict, AppChannelError> {
        let held = self.holding.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_held.fetch_max(held, Ordering::SeqCst);
        self.routes.lock().unwrap().push(delivery.route.to_owned());
        tokio::time::sleep(self.pause).await;
        self.holding.fetch_sub(1, Ordering::SeqCst);
        Ok(self.verdict)
    }

    async fn deliver_bulk(
        &self,
        delivery: BulkDelivery<'_>,
    ) -> Result<Vec<Verdict>, AppChannelError> {
        self.bulk_sizes.lock().unwrap().push(delivery.entries.len());
        Ok(vec![self.verdict; delivery.entries.len()])
    }
}

fn catalog_with(broker: Arc<RecordingBroker>) -> Arc<Catalog> {
    Arc::new(Catalog::new(snapshot_with(broker)))
}

/// A snapshot serving `broker` as the component `pubsub`.
fn snapshot_with(broker: Arc<RecordingBroker>) -> CatalogSnapshot {
    let info = ComponentInfo {
        name: "pubsub".into(),
        component_type: "pubsub.test".into(),
        version: "v1".into(),
        features: Vec::new(),
        status: LoadStatus::Loaded,
        sha256: None,
        source: "test".into(),
        grants: Vec::new(),
    };
    let mut snapshot = CatalogSnapshot::default();
    let broker: Arc<dyn Broker> = broker;
    snapshot.entries.insert(
        "pubsub".into(),
        CatalogEntry {
            info,
            state: None,
            pubsub: Some(broker),
        },
    );
    snapshot
}

fn spec(dead_letter: Option<&str>) -> SubscriptionSpec {
    SubscriptionSpec {
        dead_letter_topic: dead_letter.map(String::from),
        ..spec_to("orders", "/orders")
    }
}

/// A subscription to `topic` of the `pubsub` component, routed to `route`.
fn spec_to(topic: &str, route: &str) -> SubscriptionSpec {
    SubscriptionSpec {
        pubsub_name: "pubsub".into(),
        topic: topic.into(),
        routes: Routes {
            rules: Vec::new(),
            default: Some(route.into()),
        },
        origin: "test".into(),
        ..SubscriptionSpec::default()
    }
}

fn start(
    broker: &Arc<RecordingBroker>,
    app: &Arc<ScriptedApp>,
    spec: SubscriptionSpec,
    concurrency: usize,
) -> Delivery {
    start_reporting(
        broker,
        app,
        spec,
        concurrency,
        &Arc::new(DeliveryStatus::new(true)),
    )
}

/// Delivery of the app's own subscription `spec`, with nothing declared.
fn start_reporting(
    broker: &Arc<RecordingBroker>,
    app: &Arc<ScriptedApp>,
    spec: SubscriptionSpec,
    concurrency: usize,
    status: &Arc<DeliveryStatus>,
) -> Delivery {
    let declared = DeclaredFeed::new(DeclaredDelivery::default());
    start_following(broker, app, vec![spec], &declared, concurrency, status)
}

/// Delivery of the app's own subscriptions `programmatic` and of those
/// `declared` declares, now and later.
fn start_following(
    broker: &Arc<RecordingBroker>,
    app: &Arc<ScriptedApp>,
    programmatic: Vec<SubscriptionSpec>,
    declared: &DeclaredFeed,
    concurrency: usize,
    status: &Arc<DeliveryStatus>,
) -> Delivery {
    let ctx = DeliveryContext {
        app_id: "app".into(),
        catalog: catalog_with(Arc::clone(broker)),
        app: Arc::clone(app) as Arc<dyn AppChannel>,
        signals: Arc::new(PublishSignals::default()),
        declared: declared.follow(),
    };
    let settings = DeliverySettings {
        concurrency,
        idle_poll: Duration::from_millis(5),
        ..DeliverySettings::default()
    };
    Delivery::start(ctx, programmatic, settings, Arc::clone(status))
}

/// Waits (bounded) until `done` holds; the bound only keeps a broken build
/// from hanging, it asserts nothing about speed.
async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the condition never held");
}

/// The ids `m0` to `m<count - 1>`.
fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|n| format!("m{n}")).collect()
}

#[tokio::test]
async fn success_acks_every_event_and_nothing_else() {
    let broker = RecordingBroker::with_events(50);
    let app = ScriptedApp::new(Verdict::Success, Duration::ZERO);
    let delivery = start(&broker, &app, spec(None), 8);
    eventually(|| broker.settled() == 50).await;
    delivery.stop().await;
    assert_eq!(broker.acked_in_order(), numbered(50));
    assert!(broker.nacked.lock().unwrap().is_empty());
    assert!(app.routes.lock().unwrap().iter().all(|r| r == "/orders"));
}

#[tokio::test]
async fn acks_answered_while_one_is_under_way_share_the_next_call() {
    let broker = Arc::new(RecordingBroker {
        ack_pause: Duration::from_millis(5),
        ..RecordingBroker::default()
    });
    for n in 0..60 {
        broker.push("orders", &format!("m{n}"));
    }
    let app = ScriptedApp::new(Verdict::Success, Duration::ZERO);
    let delivery = start(&broker, &app, spec(None), 16);
    eventually(|| broker.settled() == 60).await;
    delivery.stop().await;
    assert_eq!(broker.acked_in_order(), numbered(60), "each acked once");
    let calls = broker.ack_calls.load(Ordering::SeqCst);
    assert!(calls <= 30, "{calls} ack calls for 60 events");
}

#[tokio::test]
async fn retry_nacks_with_the_backoff_of_the_attempt() {
    let broker = RecordingBroker::with_events(3);
    let app = ScriptedApp::new(Verdict::Retry, Duration::ZERO);
    let delivery = start(&broker, &app, spec(None), 8);
    eventually(|| broker.settled() == 3).await;
    delivery.stop().await;
    assert!(broker.acked.lock().unwrap().is_empty());
    let first = Backoff::default().after(1);
    assert!(
        broker
            .nacked
            .lock()
            .unwrap()
            .iter()
            .all(|(_, after)| *after == first)
    );
    assert!(broker.published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn drop_dead_letters_then_acks_or_just_acks_without_a_topic() {
    let broker = RecordingBroker::with_events(2);
    let app = ScriptedApp::new(Verdict::Drop, Duration::ZERO);
    let delivery = start(&broker, &app, spec(Some("orders-dead")), 8);
    eventually(|| broker.settled() == 2).await;
    delivery.stop().await;
    let published = broker.published.lock().unwrap().clone();
    assert_eq!(published.len(), 2);
    assert!(published.iter().all(|(topic, _)| topic == "orders-dead"));
    assert_eq!(broker.acked.lock().unwrap().len(), 2);

    let broker = RecordingBroker::with_events(2);
    let delivery = start(&broker, &app, spec(None), 8);
    eventually(|| broker.settled() == 2).await;
    delivery.stop().await;
    assert!(broker.published.lock().unwrap().is_empty());
    assert_eq!(broker.acked.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn never_more_events_in_flight_than_the_concurrency() {
    let broker = RecordingBroker::with_events(40);
    let app = ScriptedApp::new(Verdict::Success, Duration::from_millis(20));
    let delivery = start(&broker, &app, spec(None), 4);
    eventually(|| broker.settled() == 40).await;
    delivery.stop().await;
    let most = app.most_held.load(Ordering::SeqCst);
    assert!(most <= 4, "{most} events were in flight at once");
    assert!(most >= 2, "deliveries should overlap, saw {most}");
}

#[tokio::test]
async fn stopping_lets_events_in_flight_finish_and_nacks_nothing() {
    let broker = RecordingBroker::with_events(4);
    let app = ScriptedApp::new(Verdict::Success, Duration::from_millis(300));
    let delivery = start(&broker, &app, spec(None), 4);
    eventually(|| app.holding.load(Ordering::SeqCst) == 4).await;
    delivery.stop().await;
    assert_eq!(broker.acked.lock().unwrap().len(), 4);
    assert!(broker.nacked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_message_that_is_not_a_cloud_event_is_dead_lettered() {
    let broker = RecordingBroker::with_events(0);
    broker.queue.lock().unwrap().push_back(IncomingMessage {
        id: "raw".into(),
        topic: "orders".into(),
        data: b"\x00not json".to_vec(),
        content_type: String::new(),
        metadata: Default::default(),
        attempt: 1,
    });
    let app = ScriptedApp::new(Verdict::Success, Duration::ZERO);
    let delivery = start(&broker, &app, spec(Some("dead")), 2);
    eventually(|| broker.settled() == 1).await;
    delivery.stop().await;
    assert!(app.routes.lock().unwrap().is_empty());
    assert_eq!(broker.published.lock().unwrap()[0].0, "dead");
}

#[tokio::test]
async fn bulk_subscriptions_deliver_batches() {
    let broker = RecordingBroker::with_events(25);
    let app = ScriptedApp::new(Verdict::Success, Duration::ZERO);
    let mut bulk = spec(None);
    bulk.bulk = Some(crate::blocks::pubsub::subscription::BulkSubscribe {
        max_messages: 10,
        max_await_ms: 50,
    });
    let delivery = start(&broker, &app, bulk, 4);
    eventually(|| broker.settled() == 25).await;
    delivery.stop().await;
    let sizes = app.bulk_sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 25);
    assert!(sizes.iter().all(|&n| n <= 10), "{sizes:?}");
    assert_eq!(broker.acked.lock().unwrap().len(), 25);
}

#[tokio::test]
async fn readiness_waits_until_the_worker_subscribed_at_the_broker() {
    let status = Arc::new(DeliveryStatus::new(true));
    assert!(!status.is_ready(), "not ready before delivery starts");
    let broker = RecordingBroker::with_events(1);
    let app = ScriptedApp::new(Verdict::Success, Duration::ZERO);
    let delivery = start_reporting(&broker, &app, spec(None), 2, &status);
    eventually(|| status.is_ready()).await;
    eventually(|| broker.settled() == 1).await;
    delivery.stop().await;
    assert_eq!(
        broker.pulls.lock().unwrap()[0],
        0,
        "the first pull subscribes"
    );
    let listed = status.subscriptions();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].spec.topic, "orders");
    assert!(
        DeliveryStatus::new(false).is_ready(),
        "no app, nothing to wait for"
    );
}

#[tokio::test]
async fn a_refused_subscribe_is_retried_without_holding_readiness_back() {
    let status = Arc::new(DeliveryStatus::new(true));
    let broker = RecordingBroker::with_events(1);
    broker.refused_subscribes.store(2, Ordering::SeqCst);
    let app = ScriptedApp::new(Verdict::Success, Duration::ZERO);
    let delivery = start_reporting(&broker, &app, spec(None), 2, &status);
    eventually(|| status.is_ready()).await;
    eventually(|| broker.settled() == 1).await;
    delivery.stop().await;
    let pulls = broker.pulls.lock().unwrap().clone();
    assert_eq!(
        pulls[..3],
        [0, 0, 0],
        "two refusals, then a subscribe that works"
    );
    assert!(pulls[3..].iter().all(|&max| max > 0));
}

#[tokio::test]
async fn declared_subscriptions_follow_reloads_and_leave_the_others_running() {
    let broker = RecordingBroker::with_events(0);
    let app = ScriptedApp::new(Verdict::Success, Duration::ZERO);
    let status = Arc::new(DeliveryStatus::new(true));
    let declared = DeclaredFeed::new(DeclaredDelivery {
        subscriptions: vec![spec_to("declared", "/v1")],
        ..DeclaredDelivery::default()
    });
    let own = spec_to("orders", "/orders");
    let delivery = start_following(&broker, &app, vec![own], &declared, 4, &status);
    broker.push("declared", "d1");
    broker.push("orders", "o1");
    eventually(|| broker.settled() == 2).await;
    let own_worker = Arc::clone(&status.subscriptions()[1]);

    // The route changes: the subscription's worker is replaced.
    assert!(declared.publish(DeclaredDelivery {
        subscriptions: vec![spec_to("declared", "/v2")],
        ..DeclaredDelivery::default()
    }));
    eventually(|| status.subscriptions()[0].spec.routes.default.as_deref() == Some("/v2")).await;
    broker.push("declared", "d2");
    eventually(|| broker.settled() == 3).await;

    // Another topic replaces it: the old topic is no longer pulled.
    declared.publish(DeclaredDelivery {
        subscriptions: vec![spec_to("moved", "/moved")],
        ..DeclaredDelivery::default()
    });
    eventually(|| status.subscriptions()[0].spec.topic == "moved").await;
    broker.push("moved", "m1");
    eventually(|| broker.settled() == 4).await;
    broker.push("declared", "d3");
    broker.push("orders", "o2");
    eventually(|| broker.settled() == 5).await;
    delivery.stop().await;

    assert_eq!(broker.queued("declared"), 1, "d3 was left for nobody");
    let routes = app.routes.lock().unwrap().clone();
    let count = |route: &str| routes.iter().filter(|r| *r == route).count();
    assert_eq!(
        (
            count("/v1"),
            count("/v2"),
            count("/moved"),
            count("/orders")
        ),
        (1, 1, 1, 2),
        "{routes:?}"
    );
    assert!(
        Arc::ptr_eq(&own_worker, &status.subscriptions()[1]),
        "the app's own subscription kept its worker"
    );
    assert!(
        !declared.publish(DeclaredDelivery {
            subscriptions: vec![spec_to("moved", "/moved")],
            ..DeclaredDelivery::default()
        }),
        "the same declaration is no change"
    );
}

#[tokio::test]
async fn a_changed_retry_policy_applies_to_the_next_settlement() {
    use crate::blocks::resiliency::{RetryBackoff, RetryPolicy};
    let policy = |seconds| DeclaredDelivery {
        inbound_retries: [(
            "pubsub".to_string(),
            RetryPolicy {
                backoff: RetryBackoff::Constant(Duration::from_secs(seconds)),
                max_retries: None,
            },
        )]
        .into(),
        ..DeclaredDelivery::default()
    };
    let broker = RecordingBroker::with_events(1);
    let app = ScriptedApp::new(Verdict::Retry, Duration::ZERO);
    let status = Arc::new(DeliveryStatus::new(true));
    let declared = DeclaredFeed::new(policy(7));
    let delivery = start_following(&broker, &app, vec![spec(None)], &declared, 2, &status);
    eventually(|| broker.settled() == 1).await;
    let worker = Arc::clone(&status.subscriptions()[0]);
    declared.publish(policy(9));
    broker.push("orders", "later");
    eventually(|| broker.settled() == 2).await;
    delivery.stop().await;
    let delays: Vec<Duration> = broker
        .nacked
        .lock()
        .unwrap()
        .iter()
        .map(|(_, d)| *d)
        .collect();
    assert_eq!(delays, [Duration::from_secs(7), Duration::from_secs(9)]);
    assert!(
        Arc::ptr_eq(&worker, &status.subscriptions()[0]),
        "no restart for a policy"
    );
}

#[tokio::test]
async fn a_swapped_in_process_broker_is_drained_before_its_new_version() {
    let old = Arc::new(RecordingBroker {
        volatile: true,
        ..RecordingBroker::default()
    });
    for n in 0..5 {
        old.push("orders", &format!("old{n}"));
    }
    let new = Arc::new(RecordingBroker::default());
    for n in 0..3 {
        new.push("orders", &format!("new{n}"));
    }
    let app = ScriptedApp::new(Verdict::Success, Duration::from_millis(20));
    let ctx = DeliveryContext {
        app_id: "app".into(),
        catalog: catalog_with(Arc::clone(&old)),
        app: Arc::clone(&app) as Arc<dyn AppChannel>,
        signals: Arc::new(PublishSignals::default()),
        declared: DeclaredFeed::new(DeclaredDelivery::default()).follow(),
    };
    let catalog = Arc::clone(&ctx.catalog);
    let settings = DeliverySettings {
        concurrency: 1,
        pull_batch: 1,
        idle_poll: Duration::from_millis(5),
        ..DeliverySettings::default()
    };
    let status = Arc::new(DeliveryStatus::new(true));
    let delivery = Delivery::start(ctx, vec![spec(None)], settings, status);
    eventually(|| old.settled() >= 1).await;
    catalog.publish(snapshot_with(Arc::clone(&new)));
    eventually(|| old.settled() + new.settled() == 8).await;
    delivery.stop().await;
    assert_eq!(
        old.acked.lock().unwrap().len(),
        5,
        "the old version's events, acked on it"
    );
    assert_eq!(new.acked.lock().unwrap().len(), 3);
    let routes = app.routes.lock().unwrap().len();
    assert_eq!(routes, 8, "each event delivered once");
}
