//! The envelopes byte by byte: Dapr's attributes, data encodings, an app's
//! own event, trace context, TTL, and the delivery-side helpers.
#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// 2024-05-01T10:00:00.250Z.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_714_557_600_250)
}

fn context<'a>(
    content_type: &'a str,
    trace: &'a TraceHeaders,
    metadata: &'a Metadata,
) -> EnvelopeContext<'a> {
    EnvelopeContext {
        app_id: "orders",
        pubsub: "pubsub",
        topic: "a/b",
        content_type,
        trace,
        metadata,
        ttl_seconds: None,
        now: now(),
    }
}

/// Wraps `data` as `content_type` with no trace context or metadata.
fn wrapped(data: &[u8], content_type: &str) -> Value {
    let (trace, metadata) = (TraceHeaders::default(), Metadata::new());
    let bytes = wrap(data, &context(content_type, &trace, &metadata)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn traced(traceparent: &str, tracestate: Option<&str>) -> TraceHeaders {
    TraceHeaders {
        traceparent: Some(traceparent.to_owned()),
        tracestate: tracestate.map(str::to_owned),
    }
}

#[test]
fn a_json_payload_gets_daprs_envelope() {
    let event = wrapped(br#"{"orderId": 7}"#, "application/json");
    let object = event.as_object().unwrap();
    let id = object["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "id is a UUID: {id}");
    assert_eq!(event["source"], "orders");
    assert_eq!(event["type"], "com.dapr.event.sent");
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(event["data"], json!({"orderId": 7}));
    assert_eq!(event["topic"], "a/b");
    assert_eq!(event["pubsubname"], "pubsub");
    assert_eq!(event["time"], "2024-05-01T10:00:00Z");
    assert_eq!(event["tracestate"], "");
    assert_eq!(event["traceid"], event["traceparent"]);
    assert!(!object.contains_key("expiration"));
    assert!(!object.contains_key("data_base64"));
}

#[test]
fn data_is_encoded_by_content_type_as_dapr_does() {
    // (body, content type, attribute, value, datacontenttype)
    let cases: [(&[u8], &str, &str, Value, &str); 7] = [
        (b"hello", "", "data", json!("hello"), "text/plain"),
        (b"hello", "text/plain", "data", json!("hello"), "text/plain"),
        (
            b"<a/>",
            "application/xml",
            "data",
            json!("<a/>"),
            "application/xml",
        ),
        // JSON that does not parse is kept as text.
        (
            b"{nope",
            "application/json",
            "data",
            json!("{nope"),
            "application/json",
        ),
        (
            b"[1,2]",
            "Application/JSON; charset=utf-8",
            "data",
            json!([1, 2]),
            "Application/JSON; charset=utf-8",
        ),
        (
            &[0, 159, 146, 150],
            "application/octet-stream",
            "data_base64",
            json!("AJ+Slg=="),
            "application/octet-stream",
        ),
        // Bytes that are not UTF-8 go as base64 whatever the type says.
        (
            &[0xff, 0xfe],
            "text/plain",
            "data_base64",
            json!("//4="),
            "text/plain",
        ),
    ];
    for (body, content_type, attribute, value, datacontenttype) in cases {
        let event = wrapped(body, content_type);
        assert_eq!(event[attribute], value, "{content_type}: {event}");
        assert_eq!(event["datacontenttype"], datacontenttype, "{event}");
        let other = if attribute == "data" {
            "data_base64"
        } else {
            "data"
        };
        assert!(event.get(other).is_none(), "{event}");
    }
}

#[test]
fn json_data_is_embedded_byte_for_byte() {
    // A Value would turn the big integer into a float.
    let body = br#"{"big": 123456789012345678901234567890, "f": 1.50}"#;
    let (trace, metadata) = (TraceHeaders::default(), Metadata::new());
    let bytes = wrap(body, &context("application/json", &trace, &metadata)).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains(r#""data":{"big": 123456789012345678901234567890, "f": 1.50}"#),
        "{text}"
    );
}

#[test]
fn the_request_trace_context_is_carried_unchanged() {
    let trace = traced(TRACEPARENT, Some("congo=t61rcWkgMzE"));
    let metadata = Metadata::new();
    let bytes = wrap(b"x", &context("text/plain", &trace, &metadata)).unwrap();
    let event: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(event["traceparent"], TRACEPARENT);
    assert_eq!(event["traceid"], TRACEPARENT);
    assert_eq!(event["tracestate"], "congo=t61rcWkgMzE");
}

#[test]
fn without_a_valid_trace_context_a_new_one_is_made() {
    for trace in [
        TraceHeaders::default(),
        traced("garbage", Some("congo=1")),
        // All-zero trace id, uppercase hex, version ff: invalid per W3C.
        traced(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            None,
        ),
        traced(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            None,
        ),
        traced(
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        ),
    ] {
        let metadata = Metadata::new();
        let bytes = wrap(b"x", &context("text/plain", &trace, &metadata)).unwrap();
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        let traceparent = event["traceparent"].as_str().unwrap();
        assert!(valid_traceparent(traceparent), "{traceparent}");
        assert_ne!(Some(traceparent), trace.traceparent.as_deref());
        assert!(traceparent.ends_with("-01"), "sampled: {traceparent}");
        // The tracestate of an ignored traceparent is ignored with it.
        assert_eq!(event["tracestate"], "");
    }
    let a = wrapped(b"x", "text/plain");
    let b = wrapped(b"x", "text/plain");
    assert_ne!(
        a["traceparent"], b["traceparent"],
        "each publish gets its own trace"
    );
    assert_ne!(a["id"], b["id"], "and its own id");
}

#[test]
fn traceparent_versions_are_read_as_w3c_says() {
    let cases = [
        (TRACEPARENT, true),
        // A later version may append fields; version 00 may not.
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what",
            true,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what",
            false,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            false,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            false,
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            false,
        ),
        ("", false),
    ];
    for (value, valid) in cases {
        assert_eq!(valid_traceparent(value), valid, "{value}");
    }
}

#[test]
fn ttl_sets_the_expiration_to_the_second() {
    let (trace, metadata) = (TraceHeaders::default(), Metadata::new());
    let ctx = EnvelopeContext {
        ttl_seconds: Some(90),
        ..context("text/plain", &trace, &metadata)
    };
    let event: Value = serde_json::from_slice(&wrap(b"x", &ctx).unwrap()).unwrap();
    assert_eq!(event["expiration"], "2024-05-01T10:01:30Z");
    assert!(!expired(&event, now() + Duration::from_secs(89)));
    assert!(expired(&event, now() + Duration::from_secs(91)));
}

#[test]
fn cloudevent_metadata_overrides_the_envelope_as_in_dapr() {
    let trace = traced(TRACEPARENT, Some("a=1"));
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let metadata: Metadata = [
        ("cloudevent.id", "my-id"),
        ("CloudEvent.Source", "billing"),
        ("cloudevent.type", "order.created"),
        ("cloudevent.traceparent", other),
        ("cloudevent.tracestate", "b=2"),
        // Empty overrides are ignored, and so are attributes Dapr does not override.
        ("cloudevent.traceid", ""),
        ("cloudevent.subject", "ignored"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let bytes = wrap(b"x", &context("text/plain", &trace, &metadata)).unwrap();
    let event: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(event["id"], "my-id");
    assert_eq!(event["source"], "billing");
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["traceparent"], other);
    assert_eq!(event["traceid"], other);
    assert_eq!(event["tracestate"], "b=2");
    assert!(event.get("subject").is_none());
}

#[test]
fn an_apps_own_event_passes_through_with_daprs_edits() {
    let body = json!({
        "specversion": "1.0",
        "id": "evt-1",
        "source": "https://example.com/orders",
        "type": "order.created",
        "datacontenttype": "application/json",
        "data": {"qty": 3},
        "time": "2020-01-01T00:00:00Z",
        "topic": "somewhere-else",
        "traceparent": TRACEPARENT,
        "partitionkey": {"nested": [1.5]}
    });
    let trace = TraceHeaders::default();
    let metadata = Metadata::new();
    let ctx = EnvelopeContext {
        ttl_seconds: Some(60),
        ..context(CLOUD_EVENT_CONTENT_TYPE, &trace, &metadata)
    };
    let bytes = wrap(body.to_string().as_bytes(), &ctx).unwrap();
    let event: Value = serde_json::from_slice(&bytes).unwrap();
    for kept in ["id", "source", "type", "datacontenttype", "data", "time"] {
        assert_eq!(event[kept], body[kept], "{kept} is the app's");
    }
    // An extension value the crate cannot hold passes through, as in Dapr.
    assert_eq!(event["partitionkey"], json!({"nested": [1.5]}));
    assert_eq!(event["topic"], "a/b", "where it was published");
    assert_eq!(event["pubsubname"], "pubsub");
    // Without a request trace context, the event's own is kept.
    assert_eq!(event["traceparent"], TRACEPARENT);
    assert_eq!(event["traceid"], TRACEPARENT);
    assert_eq!(event["tracestate"], "");
    assert_eq!(event["expiration"], "2024-05-01T10:01:00Z");
}

#[test]
fn an_apps_event_gets_missing_attributes_and_the_request_trace() {
    let trace = traced(TRACEPARENT, Some("k=v"));
    let metadata = Metadata::new();
    let body = br#"{"data": "hi", "datacontenttype": "text/plain", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}"#;
    let bytes = wrap(body, &context(CLOUD_EVENT_CONTENT_TYPE, &trace, &metadata)).unwrap();
    let event: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
    assert_eq!(event["source"], "orders");
    assert_eq!(event["type"], DEFAULT_EVENT_TYPE);
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["time"], "2024-05-01T10:00:00Z");
    assert_eq!(event["data"], "hi");
    // The request's live context wins over the event's, as in Dapr.
    assert_eq!(event["traceparent"], TRACEPARENT);
    assert_eq!(event["traceid"], TRACEPARENT);
    assert_eq!(event["tracestate"], "k=v");
}

#[test]
fn malformed_events_are_refused_with_the_reason() {
    let cases: [(&str, &str); 8] = [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("\"text\"", "not a JSON object"),
        (r#"{"specversion": "0.3"}"#, "only \"1.0\""),
        (r#"{"specversion": 1}"#, "only \"1.0\""),
        (r#"{"id": 5}"#, "id"),
        (
            r#"{"time": "yesterday"}"#,
            "not a valid CloudEvents 1.0 event",
        ),
        (
            r#"{"data": "a", "data_base64": "YQ=="}"#,
            "both data and data_base64",
        ),
    ];
    let (trace, metadata) = (TraceHeaders::default(), Metadata::new());
    for (body, reason) in cases {
        let err = wrap(
            body.as_bytes(),
            &context(CLOUD_EVENT_CONTENT_TYPE, &trace, &metadata),
        )
        .unwrap_err();
        assert!(err.to_string().contains(reason), "{body}: {err}");
    }
}

#[test]
fn the_cloudevents_content_type_is_recognised_like_dapr() {
    assert!(is_cloud_event("application/cloudevents+json"));
    assert!(is_cloud_event(
        "Application/CloudEvents+JSON; charset=utf-8"
    ));
    assert!(!is_cloud_event("application/json"));
    assert!(!is_cloud_event("application/cloudevents-batch+json"));
}

#[test]
fn raw_payloads_become_daprs_raw_event_on_delivery() {
    let event = from_raw_payload(b"\x00raw", "application/x-thing", "t", "p");
    assert_eq!(event["data_base64"], "AHJhdw==");
    assert_eq!(event["datacontenttype"], "application/x-thing");
    assert_eq!(event["source"], RAW_PAYLOAD_SOURCE);
    assert_eq!(event["type"], DEFAULT_EVENT_TYPE);
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["topic"], "t");
    assert_eq!(event["pubsubname"], "p");
    assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
    assert!(event.get("data").is_none());
    let unknown = from_raw_payload(b"x", "", "t", "p");
    assert_eq!(unknown["datacontenttype"], "application/octet-stream");
}

#[test]
fn events_read_back_must_be_json_objects() {
    let event = wrapped(b"hello", "text/plain");
    let bytes = serde_json::to_vec(&event).unwrap();
    assert_eq!(parse(&bytes).unwrap(), event);
    // Like Dapr, any object is taken.
    assert_eq!(parse(br#"{"a": 1}"#).unwrap(), json!({"a": 1}));
    assert_eq!(parse(b"[1]").unwrap_err(), CloudEventError::NotAnObject);
    assert!(matches!(parse(b"{"), Err(CloudEventError::NotJson(_))));
}

#[test]
fn expiration_that_is_missing_or_unreadable_never_expires() {
    let later = now() + Duration::from_secs(3600 * 24 * 365 * 100);
    assert!(!expired(&json!({}), later));
    assert!(!expired(&json!({"expiration": "soon"}), later));
    assert!(!expired(&json!({"expiration": 5}), later));
    assert!(expired(
        &json!({"expiration": "2024-05-01T12:00:00+02:00"}),
        now()
    ));
    assert!(!expired(
        &json!({"expiration": "2024-05-01T12:00:01+02:00"}),
        now()
    ));
}
