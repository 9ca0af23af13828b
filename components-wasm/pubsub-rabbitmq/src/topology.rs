//! Dapr's RabbitMQ topology, named and declared: a topic is an exchange of
//! the configured kind; a consumer group's queue is `<consumerID>-<topic>`
//! (or the subscription's `queueName`), bound to it; with dead-lettering, the
//! queue dead-letters into the fanout exchange `dlx-<queue>`, bound to the
//! queue `dlq-<queue>`. Delayed redelivery adds the queues
//! `outrig-retry-<ms>-<queue>` (see [`RetryQueue`]).

use crate::config::{RabbitConfig, length_limit, text};
use crate::messages::check_short;
use crate::wire::{FieldTable, FieldValue};
use outrig_sdk::pubsub::Subscription;
use outrig_sdk::{Error, Metadata, Result};
use std::time::Duration;

/// A queue to declare: its name, flags and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub name: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub arguments: FieldTable,
}

/// An exchange to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeSpec {
    pub name: String,
    pub kind: String,
    pub durable: bool,
    pub auto_delete: bool,
}

/// Everything a subscription reads from, in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The topic's exchange.
    pub exchange: ExchangeSpec,
    /// The dead-letter exchange and queue, when dead-lettering is on.
    pub dead_letter: Option<(ExchangeSpec, QueueSpec)>,
    /// The consumer group's queue.
    pub queue: QueueSpec,
    /// The keys the queue is bound to the exchange with (`routingKey`,
    /// comma-separated; one empty key by default, which is all a fanout
    /// exchange needs).
    pub binding_keys: Vec<String>,
}

/// The exchange a topic is published to.
pub fn topic_exchange(config: &RabbitConfig, topic: &str) -> ExchangeSpec {
    ExchangeSpec {
        name: topic.to_string(),
        kind: config.exchange_kind.clone(),
        durable: config.durable,
        auto_delete: config.delete_when_unused,
    }
}

impl Route {
    /// The route of `subscription`, with its metadata (`queueName`,
    /// `routingKey`, `queueType`, `maxLen`, `maxLenBytes`) applied over the
    /// component's.
    pub fn for_subscription(config: &RabbitConfig, subscription: &Subscription) -> Result<Route> {
        let metadata = Metadata::from(subscription.metadata.clone());
        let group = config
            .consumer_id
            .as_deref()
            .unwrap_or(&subscription.consumer_group);
        let queue_name = text(&metadata, "queueName")
            .unwrap_or_else(|| format!("{group}-{}", subscription.topic));
        let max_len = length_limit(&metadata, "maxLen")?.or(config.max_len);
        let max_len_bytes = length_limit(&metadata, "maxLenBytes")?.or(config.max_len_bytes);
        let queue_type = text(&metadata, "queueType").unwrap_or_else(|| "classic".into());
        if !matches!(queue_type.as_str(), "classic" | "quorum") {
            return Err(Error::invalid(format!(
                "subscription metadata `queueType`: `{queue_type}` is neither `classic` nor `quorum`"
            )));
        }
        let mut arguments = length_arguments(max_len, max_len_bytes);
        let dead_letter = config.dead_letter.then(|| {
            let exchange = ExchangeSpec {
                name: format!("dlx-{queue_name}"),
                kind: "fanout".into(),
                durable: true,
                auto_delete: config.delete_when_unused,
            };
            let mut dlq_arguments = length_arguments(max_len, max_len_bytes);
            dlq_arguments.set("x-queue-mode", FieldValue::text("lazy"));
            let queue = QueueSpec {
                name: format!("dlq-{queue_name}"),
                durable: true,
                auto_delete: config.delete_when_unused,
                arguments: dlq_arguments,
            };
            (exchange, queue)
        });
        if let Some((exchange, _)) = &dead_letter {
            arguments.set("x-dead-letter-exchange", FieldValue::text(&exchange.name));
        }
        // Quorum queues count redeliveries (`x-delivery-count`); they are
        // durable by nature.
        let durable = config.durable || queue_type == "quorum";
        arguments.set("x-queue-type", FieldValue::text(&queue_type));
        let binding_keys: Vec<String> = match text(&metadata, "routingKey") {
            Some(keys) => keys.split(',').map(|k| k.trim().to_string()).collect(),
            None => vec![String::new()],
        };
        check_short("the topic", &subscription.topic)?;
        check_short("the queue name", &queue_name)?;
        if let Some((exchange, queue)) = &dead_letter {
            check_short("the dead-letter exchange name", &exchange.name)?;
            check_short("the dead-letter queue name", &queue.name)?;
        }
        for key in &binding_keys {
            check_short("routingKey", key)?;
        }
        Ok(Route {
            exchange: topic_exchange(config, &subscription.topic),
            dead_letter,
            queue: QueueSpec {
                name: queue_name,
                durable,
                auto_delete: false,
                arguments,
            },
            binding_keys,
        })
    }
}

/// `x-max-length` and `x-max-length-bytes` for the limits that are set.
fn length_arguments(max_len: Option<i64>, max_len_bytes: Option<i64>) -> FieldTable {
    let mut arguments = FieldTable::default();
    if let Some(limit) = max_len {
        arguments.set("x-max-length", FieldValue::I64(limit));
    }
    if let Some(limit) = max_len_bytes {
        arguments.set("x-max-length-bytes", FieldValue::I64(limit));
    }
    arguments
}

/// A queue where nacked messages wait out their redelivery delay: every
/// message in it expires after the same delay (`x-message-ttl`, so expiry
/// keeps arrival order) and is then dead-lettered through the default
/// exchange straight back to the subscription's queue, to that consumer
/// group only. One queue per queue and delay, the delay rounded up to two
/// significant digits so retry policies with jitter make few of them; each
/// deletes itself when unused for a minute past its delay (`x-expires`,
/// refreshed by declaring it before every use).
pub struct RetryQueue;

impl RetryQueue {
    /// The queue for messages of `queue` to wait `delay` (already rounded).
    pub fn spec(queue: &str, delay: Duration, durable: bool) -> QueueSpec {
        let millis = delay.as_millis().min(i64::MAX as u128) as i64;
        let mut arguments = FieldTable::default();
        arguments.set("x-message-ttl", FieldValue::I64(millis));
        arguments.set("x-expires", FieldValue::I64(millis.saturating_add(60_000)));
        arguments.set("x-dead-letter-exchange", FieldValue::text(""));
        arguments.set("x-dead-letter-routing-key", FieldValue::text(queue));
        QueueSpec {
            name: format!("outrig-retry-{millis}-{queue}"),
            durable,
            auto_delete: false,
            arguments,
        }
    }

    /// `delay` rounded up to two significant digits of milliseconds (at
    /// least one).
    pub fn round(delay: Duration) -> Duration {
        let millis = delay.as_millis().clamp(1, u64::MAX as u128) as u64;
        let mut step = 1u64;
        while millis / step >= 100 {
            step *= 10;
        }
        Duration::from_millis(millis.div_ceil(step).saturating_mul(step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrig_sdk::pubsub::testing::subscription;

    fn config(pairs: &[(&str, &str)]) -> RabbitConfig {
        RabbitConfig::from_metadata(&Metadata::from_pairs(pairs)).expect("valid metadata")
    }

    #[test]
    fn queues_are_named_as_dapr_names_them() {
        let route =
            Route::for_subscription(&config(&[]), &subscription("orders", "app")).expect("route");
        assert_eq!(route.exchange.name, "orders");
        assert_eq!(route.exchange.kind, "fanout");
        assert_eq!(route.queue.name, "app-orders");
        assert!(route.queue.durable && !route.queue.auto_delete);
        assert!(route.dead_letter.is_none());
        assert_eq!(route.binding_keys, [""]);

        let with_id = config(&[("consumerID", "billing"), ("enableDeadLetter", "true")]);
        let route =
            Route::for_subscription(&with_id, &subscription("orders", "app")).expect("route");
        assert_eq!(route.queue.name, "billing-orders");
        let (dlx, dlq) = route.dead_letter.expect("dead-lettering on");
        assert_eq!(
            (dlx.name.as_str(), dlq.name.as_str()),
            ("dlx-billing-orders", "dlq-billing-orders")
        );
        assert_eq!(
            route.queue.arguments.get("x-dead-letter-exchange"),
            Some(&FieldValue::text("dlx-billing-orders"))
        );
    }

    #[test]
    fn subscription_metadata_overrides_the_component() {
        let mut sub = subscription("orders", "app");
        sub.metadata = vec![
            ("queueName".into(), "custom".into()),
            ("routingKey".into(), "a.*, b.#".into()),
            ("queueType".into(), "quorum".into()),
            ("maxLen".into(), "5".into()),
        ];
        let route =
            Route::for_subscription(&config(&[("maxLen", "100"), ("durable", "false")]), &sub)
                .expect("route");
        assert_eq!(route.queue.name, "custom");
        assert_eq!(route.binding_keys, ["a.*", "b.#"]);
        assert!(route.queue.durable, "quorum queues are durable");
        assert_eq!(
            route.queue.arguments.get("x-max-length"),
            Some(&FieldValue::I64(5))
        );
        sub.metadata = vec![("queueType".into(), "stream".into())];
        assert!(Route::for_subscription(&config(&[]), &sub).is_err());
        // A topic AMQP can name whose queue name it cannot.
        let long_queue = subscription(&"t".repeat(240), &"g".repeat(20));
        assert!(Route::for_subscription(&config(&[]), &long_queue).is_err());
    }

    #[test]
    fn retry_delays_round_up_to_two_significant_digits() {
        let cases = [
            (0, 1),
            (1, 1),
            (99, 99),
            (100, 100),
            (101, 110),
            (1234, 1300),
            (59_999, 60_000),
        ];
        for (millis, rounded) in cases {
            assert_eq!(
                RetryQueue::round(Duration::from_millis(millis)),
                Duration::from_millis(rounded),
                "{millis}"
            );
        }
        let spec = RetryQueue::spec("app-orders", Duration::from_millis(1300), true);
        assert_eq!(spec.name, "outrig-retry-1300-app-orders");
        assert_eq!(
            spec.arguments.get("x-dead-letter-routing-key"),
            Some(&FieldValue::text("app-orders"))
        );
    }
}
