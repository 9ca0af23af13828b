//! Messages between the contract and AMQP: an outgoing message becomes a
//! publication (content type, expiration from its TTL, Dapr's per-request
//! `routingKey`, `priority`, `messageId`, `correlationId`, `type`), and a
//! delivery becomes an incoming message with its attempt and the
//! attributes Dapr exposes (`messageid`, `correlationid`, `type`, headers).

use crate::config::{RabbitConfig, text};
use crate::content::Properties;
use crate::session::{Delivery, Publication};
use crate::wire::FieldValue;
use outrig_sdk::pubsub::{IncomingMessage, OutgoingMessage};
use outrig_sdk::{Error, Metadata, Result};
use std::time::Duration;

/// The header in which this component counts deliveries across the copies
/// a nack publishes.
pub const ATTEMPT_HEADER: &str = "x-outrig-attempt";
/// Quorum queues count a message's returns (nacks, lost connections) here.
const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";
/// AMQP short strings (names, property values) hold at most this many bytes.
const SHORTSTR_MAX: usize = 255;

/// The publication of `message` to the exchange `topic`, or why it cannot
/// be one (a property too long for AMQP, a malformed `priority`).
pub fn publication(
    config: &RabbitConfig,
    topic: &str,
    message: &OutgoingMessage,
) -> Result<Publication> {
    let metadata = Metadata::from(message.metadata.clone());
    let priority = match text(&metadata, "priority") {
        None => None,
        Some(raw) => Some(raw.parse::<u8>().map_err(|_| {
            Error::invalid(format!("metadata `priority`: `{raw}` is not 0 to 255"))
        })?),
    };
    let ttl = message
        .ttl_seconds
        .filter(|&seconds| seconds > 0)
        .map(|seconds| Duration::from_secs(seconds.into()))
        .or(config.default_ttl);
    let properties = Properties {
        content_type: Some(message.content_type.clone()).filter(|t| !t.is_empty()),
        delivery_mode: config.delivery_mode,
        priority,
        expiration: ttl.map(|ttl| ttl.as_millis().to_string()),
        message_id: text(&metadata, "messageId"),
        correlation_id: text(&metadata, "correlationId"),
        kind: text(&metadata, "type"),
        ..Properties::default()
    };
    let routing_key = text(&metadata, "routingKey").unwrap_or_default();
    for (name, value) in [
        ("the content type", properties.content_type.as_deref()),
        ("messageId", properties.message_id.as_deref()),
        ("correlationId", properties.correlation_id.as_deref()),
        ("type", properties.kind.as_deref()),
        ("routingKey", Some(routing_key.as_str())),
    ] {
        check_short(name, value.unwrap_or_default())?;
    }
    Ok(Publication {
        exchange: topic.to_string(),
        routing_key,
        properties,
        body: message.data.clone(),
    })
}

/// Refuses a value longer than an AMQP short string.
pub fn check_short(name: &str, value: &str) -> Result<()> {
    if value.len() > SHORTSTR_MAX {
        return Err(Error::invalid(format!(
            "{name} is {} bytes long; AMQP allows at most {SHORTSTR_MAX}",
            value.len()
        )));
    }
    Ok(())
}

/// How many times a delivery has been handed out, this time included: the
/// count carried by the copy a nack published (1 on the original), plus
/// the returns since (counted exactly by quorum queues, as one by the
/// `redelivered` flag elsewhere, since a classic queue only says "at least
/// once before").
pub fn attempt(properties: &Properties, redelivered: bool) -> u32 {
    let header = |name: &str| {
        properties
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .and_then(FieldValue::as_i64)
            .map(|n| n.clamp(0, u32::MAX.into()) as u32)
    };
    let published = header(ATTEMPT_HEADER).filter(|&n| n >= 1).unwrap_or(1);
    let returns = match header(DELIVERY_COUNT_HEADER) {
        Some(count) if count > 0 => count,
        _ => u32::from(redelivered),
    };
    published.saturating_add(returns)
}

/// The copy of a held message that a nack publishes: its attempt counted
/// on, its expiration dropped (it would otherwise cut the redelivery delay
/// short; the host still drops CloudEvents past their `expiration`).
pub fn redelivery_properties(properties: &Properties, attempt: u32) -> Properties {
    let mut properties = properties.clone();
    properties.expiration = None;
    properties
        .headers
        .get_or_insert_with(Default::default)
        .set(ATTEMPT_HEADER, FieldValue::I64(i64::from(attempt) + 1));
    properties
}

/// The contract's view of a delivery, under the message id `id`.
pub fn incoming(topic: &str, id: String, attempt: u32, delivery: Delivery) -> IncomingMessage {
    let properties = delivery.properties;
    let mut metadata = Vec::new();
    for (name, value) in [
        ("messageid", properties.message_id),
        ("correlationid", properties.correlation_id),
        ("type", properties.kind),
    ] {
        if let Some(value) = value {
            metadata.push((name.to_string(), value));
        }
    }
    for (name, value) in properties.headers.map(|h| h.0).unwrap_or_default() {
        if name.starts_with("x-outrig-") {
            continue;
        }
        if let Some(value) = value.as_text() {
            metadata.push((name, value));
        }
    }
    IncomingMessage {
        id,
        topic: topic.to_string(),
        data: delivery.body,
        content_type: properties.content_type.unwrap_or_default(),
        metadata,
        attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FieldTable;
    use outrig_sdk::pubsub::testing::message;

    fn config(pairs: &[(&str, &str)]) -> RabbitConfig {
        RabbitConfig::from_metadata(&Metadata::from_pairs(pairs)).expect("valid metadata")
    }

    #[test]
    fn publications_carry_content_type_ttl_and_request_metadata() {
        let mut outgoing = message("hi");
        outgoing.ttl_seconds = Some(30);
        outgoing.metadata = vec![
            ("routingKey".into(), "orders.eu".into()),
            ("messageID".into(), "m-1".into()),
            ("correlationId".into(), "c-1".into()),
            ("priority".into(), "5".into()),
        ];
        let made =
            publication(&config(&[("deliveryMode", "2")]), "orders", &outgoing).expect("valid");
        assert_eq!(
            (made.exchange.as_str(), made.routing_key.as_str()),
            ("orders", "orders.eu")
        );
        let p = &made.properties;
        assert_eq!(p.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.expiration.as_deref(), Some("30000"));
        assert_eq!((p.delivery_mode, p.priority), (Some(2), Some(5)));
        assert_eq!(
            (p.message_id.as_deref(), p.correlation_id.as_deref()),
            (Some("m-1"), Some("c-1"))
        );

        let mut plain = message("x");
        plain.content_type = String::new();
        let defaults = publication(&config(&[("ttlInSeconds", "7")]), "t", &plain).expect("valid");
        assert_eq!(defaults.properties.content_type, None);
        assert_eq!(defaults.properties.expiration.as_deref(), Some("7000"));
        assert_eq!(defaults.properties.delivery_mode, None);

        let mut long_type = message("x");
        long_type.content_type = "x".repeat(256);
        assert!(publication(&config(&[]), "t", &long_type).is_err());
        let mut bad_priority = message("x");
        bad_priority.metadata = vec![("priority".into(), "high".into())];
        assert!(publication(&config(&[]), "t", &bad_priority).is_err());
    }

    #[test]
    fn attempts_count_copies_and_returns() {
        let with_headers = |pairs: Vec<(&str, FieldValue)>| Properties {
            headers: Some(FieldTable(
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            )),
            ..Properties::default()
        };
        let cases = [
            (Properties::default(), false, 1),
            (Properties::default(), true, 2),
            (
                with_headers(vec![(ATTEMPT_HEADER, FieldValue::I64(3))]),
                false,
                3,
            ),
            (
                with_headers(vec![(ATTEMPT_HEADER, FieldValue::I32(3))]),
                true,
                4,
            ),
            (
                with_headers(vec![(DELIVERY_COUNT_HEADER, FieldValue::I64(4))]),
                true,
                5,
            ),
            (
                with_headers(vec![(ATTEMPT_HEADER, FieldValue::I64(-7))]),
                false,
                1,
            ),
            (
                with_headers(vec![(ATTEMPT_HEADER, FieldValue::text("x"))]),
                false,
                1,
            ),
        ];
        for (properties, redelivered, expected) in cases {
            assert_eq!(
                attempt(&properties, redelivered),
                expected,
                "{properties:?}"
            );
        }
        let copy = redelivery_properties(
            &Properties {
                expiration: Some("5000".into()),
                ..Properties::default()
            },
            2,
        );
        assert_eq!(copy.expiration, None);
        assert_eq!(attempt(&copy, false), 3);
    }
}
