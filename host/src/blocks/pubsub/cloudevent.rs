//! CloudEvents 1.0 envelopes as Dapr makes them, so events published here
//! read the same to subscribers (and to Dapr sidecars sharing the broker) as
//! events Dapr published.
//!
//! Three shapes come out of this module:
//! - [`wrap`] of a plain payload: Dapr's envelope (`id`, `source` = the app
//!   id, `type` = [`DEFAULT_EVENT_TYPE`], `specversion` 1.0,
//!   `datacontenttype`, `data` or `data_base64`, `time`, and Dapr's extension
//!   attributes `topic`, `pubsubname`, `traceid`, `traceparent`,
//!   `tracestate`, `expiration`), with Dapr's `cloudevent.*` metadata
//!   overrides;
//! - [`wrap`] of a body sent as [`CLOUD_EVENT_CONTENT_TYPE`]: the app's own
//!   event, checked, with only Dapr's edits (missing required attributes and
//!   `time` filled, `topic`/`pubsubname` set to where it is published, trace
//!   attributes set from the request's trace context);
//! - [`from_raw_payload`]: what a subscriber with `rawPayload` receives for a
//!   message that is not a CloudEvent.
//!
//! What the `cloudevents-sdk` crate does, and what is done by hand:
//! - the crate builds a plain payload's envelope ([`EventBuilderV10`]: required
//!   attributes, `time`, the extension attributes, text and binary data) and
//!   writes it in the JSON event format (`data_base64` for binary data);
//! - the crate validates an app's own event: its context attributes and data
//!   are read into a [`cloudevents::Event`], which checks the required
//!   attributes and their types, `time` (RFC 3339), `dataschema` (a URI) and
//!   that `data` and `data_base64` are not both present and fit the
//!   `datacontenttype`;
//! - by hand, on a map of raw JSON values: JSON data is embedded verbatim,
//!   because the crate holds it as a `serde_json::Value`, which turns integers
//!   beyond 64 bits into floats (Dapr decodes with `UseNumber` to avoid just
//!   that); an app's own event keeps every attribute byte for byte, including
//!   extension values the crate's `ExtensionValue` cannot hold (objects,
//!   floats), which Dapr passes through; Dapr's defaults and overrides are
//!   edits of that map.
//!
//! Where this differs from Dapr on purpose:
//! - without a trace context in the request, a new one is made (Dapr's comes
//!   from its own tracing span); a valid `traceparent` header is carried
//!   unchanged, so the subscriber's span joins the publisher's trace without
//!   a sidecar span nobody records in between;
//! - an app's own event must be a CloudEvents 1.0 event (Dapr forwards any
//!   JSON object); a missing `id` is filled and a missing `source` is the app
//!   id (Dapr leaves `id` out and uses `Dapr`); its trace attributes are kept
//!   when the request carries no trace context;
//! - text data that is not UTF-8 goes as `data_base64` (Dapr would replace the
//!   invalid bytes);
//! - [`from_raw_payload`] reports the content type the broker kept, where
//!   Dapr, knowing none, always says `application/octet-stream`.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use cloudevents::{Data, EventBuilder as _, EventBuilderV10};
use serde_json::value::{RawValue, to_raw_value};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::Metadata;

/// The content type of a body that is a CloudEvent in the JSON event format.
pub const CLOUD_EVENT_CONTENT_TYPE: &str = "application/cloudevents+json";

/// The `type` Dapr gives the events it wraps.
pub const DEFAULT_EVENT_TYPE: &str = "com.dapr.event.sent";

/// The only CloudEvents version Dapr (and so Outrig) produces.
pub const SPEC_VERSION: &str = "1.0";

/// The `datacontenttype` of a payload published without a content type;
/// Dapr assumes text.
pub const DEFAULT_DATA_CONTENT_TYPE: &str = "text/plain";

/// The `source` of an event made on delivery from a raw payload: the
/// publisher is unknown, so Dapr names itself.
pub const RAW_PAYLOAD_SOURCE: &str = "Dapr";

/// The content type of bytes with no declared type.
const OCTET_STREAM: &str = "application/octet-stream";

/// Dapr's prefix of publish metadata that overrides envelope attributes
/// (`cloudevent.id`, `cloudevent.source`, ...).
const OVERRIDE_PREFIX: &str = "cloudevent.";

/// An event as a map of attribute names to their JSON text, so values the
/// host does not touch are written back exactly as they came.
type RawEvent = BTreeMap<String, Box<RawValue>>;

/// The W3C trace context headers of a publish request, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders {
    /// The `traceparent` header.
    pub traceparent: Option<String>,
    /// The `tracestate` header.
    pub tracestate: Option<String>,
}

/// Everything about a publish that goes into its envelope besides the payload.
#[derive(Debug, Clone)]
pub struct EnvelopeContext<'a> {
    /// The publishing app's id: the envelope's `source`.
    pub app_id: &'a str,
    /// The pub/sub component: the `pubsubname` attribute.
    pub pubsub: &'a str,
    /// The topic: the `topic` attribute.
    pub topic: &'a str,
    /// The payload's content type as the app declared it (may be empty).
    pub content_type: &'a str,
    /// The request's trace context.
    pub trace: &'a TraceHeaders,
    /// The publish metadata, for Dapr's `cloudevent.*` overrides.
    pub metadata: &'a Metadata,
    /// `metadata.ttlInSeconds`, already validated: sets `expiration`.
    pub ttl_seconds: Option<u32>,
    /// The time of the publish: `time`, and the start of the TTL.
    pub now: SystemTime,
}

/// Why a payload could not be made into (or read as) a CloudEvent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudEventError {
    /// The bytes are not JSON at all.
    #[error("the event is not valid JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("the event is not a JSON object")]
    NotAnObject,
    /// The event declares a CloudEvents version other than 1.0.
    #[error("the event's specversion is {0}; only \"1.0\" is supported")]
    SpecVersion(String),
    /// An attribute or the data does not follow CloudEvents 1.0.
    #[error("the event is not a valid CloudEvents 1.0 event: {0}")]
    Invalid(String),
}

/// Whether `content_type` says the body is a CloudEvent (parameters and case
/// ignored, as Dapr compares it).
pub fn is_cloud_event(content_type: &str) -> bool {
    has_media_type(content_type, CLOUD_EVENT_CONTENT_TYPE)
}

/// The envelope of one publish, serialised: an app's own event (content
/// type [`CLOUD_EVENT_CONTENT_TYPE`]) checked and completed, or `data`
/// wrapped in Dapr's envelope.
pub fn wrap(data: &[u8], ctx: &EnvelopeContext<'_>) -> Result<Vec<u8>, CloudEventError> {
    let event = if is_cloud_event(ctx.content_type) {
        complete_app_event(data, ctx)?
    } else {
        new_envelope(data, ctx)?
    };
    serde_json::to_vec(&event).map_err(|err| CloudEventError::Invalid(err.to_string()))
}

/// The event a subscriber with `rawPayload` receives for `data`: Dapr's
/// shape (`data_base64`, `source` [`RAW_PAYLOAD_SOURCE`], a fresh `id`), with
/// `datacontenttype` the content type the broker kept, or
/// `application/octet-stream` when it kept none.
pub fn from_raw_payload(data: &[u8], content_type: &str, topic: &str, pubsub: &str) -> Value {
    let content_type = if content_type.is_empty() {
        OCTET_STREAM
    } else {
        content_type
    };
    let mut event = Map::new();
    for (name, value) in [
        ("id", uuid::Uuid::new_v4().to_string()),
        ("specversion", SPEC_VERSION.to_owned()),
        ("datacontenttype", content_type.to_owned()),
        ("source", RAW_PAYLOAD_SOURCE.to_owned()),
        ("type", DEFAULT_EVENT_TYPE.to_owned()),
        ("topic", topic.to_owned()),
        ("pubsubname", pubsub.to_owned()),
        (
            "data_base64",
            base64::engine::general_purpose::STANDARD.encode(data),
        ),
    ] {
        event.insert(name.to_owned(), Value::String(value));
    }
    Value::Object(event)
}

/// An event read back from a broker. Like Dapr, any JSON object is taken as
/// an event (events published by other producers are not re-validated);
/// anything else is refused.
pub fn parse(data: &[u8]) -> Result<Value, CloudEventError> {
    match serde_json::from_slice::<Value>(data) {
        Ok(event @ Value::Object(_)) => Ok(event),
        Ok(_) => Err(CloudEventError::NotAnObject),
        Err(err) => Err(CloudEventError::NotJson(err.to_string())),
    }
}

/// Whether `event` carries an `expiration` (RFC 3339) before `now`.
/// An event without one, or with one that does not parse, never expires, as
/// in Dapr.
pub fn expired(event: &Value, now: SystemTime) -> bool {
    let Some(expiration) = event.get("expiration").and_then(Value::as_str) else {
        return false;
    };
    match DateTime::parse_from_rfc3339(expiration) {
        Ok(expiration) => expiration.with_timezone(&Utc) < DateTime::<Utc>::from(now),
        Err(_) => false,
    }
}

/// Dapr's envelope around a plain payload.
fn new_envelope(data: &[u8], ctx: &EnvelopeContext<'_>) -> Result<RawEvent, CloudEventError> {
    let overrides = Overrides::from_metadata(ctx.metadata);
    let content_type = if ctx.content_type.is_empty() {
        DEFAULT_DATA_CONTENT_TYPE
    } else {
        ctx.content_type
    };
    // JSON is embedded verbatim below; the crate gets a placeholder.
    let json = has_media_type(content_type, "application/json")
        .then(|| serde_json::from_slice::<Box<RawValue>>(data).ok())
        .flatten();
    let payload = match (&json, std::str::from_utf8(data)) {
        (Some(_), _) => Data::Json(Value::Null),
        (None, Ok(text)) if !has_media_type(content_type, OCTET_STREAM) => {
            Data::String(text.to_owned())
        }
        _ => Data::Binary(data.to_vec()),
    };
    let trace = overrides.trace(ctx.trace);
    let mut builder = EventBuilderV10::new()
        .id(overrides.id.unwrap_or_else(new_id))
        .source(overrides.source.unwrap_or(ctx.app_id))
        .ty(overrides.ty.unwrap_or(DEFAULT_EVENT_TYPE))
        .time(DateTime::<Utc>::from(ctx.now).trunc_subsecs(0))
        .extension("topic", ctx.topic)
        .extension("pubsubname", ctx.pubsub)
        .extension("traceid", trace.traceparent.as_str())
        .extension("traceparent", trace.traceparent.as_str())
        .extension("tracestate", trace.tracestate.as_str())
        .data(content_type, payload);
    if let Some(expiration) = expiration(ctx) {
        builder = builder.extension("expiration", expiration);
    }
    let event = builder
        .build()
        .map_err(|err| CloudEventError::Invalid(err.to_string()))?;
    let mut raw = to_raw_event(serde_json::to_value(&event))?;
    if let Some(json) = json {
        raw.insert("data".to_owned(), json);
    }
    Ok(raw)
}

/// An app's own event with Dapr's edits, checked against CloudEvents 1.0.
fn complete_app_event(data: &[u8], ctx: &EnvelopeContext<'_>) -> Result<RawEvent, CloudEventError> {
    let mut event: RawEvent = serde_json::from_slice(data).map_err(|err| {
        match serde_json::from_slice::<&RawValue>(data) {
            Ok(_) => CloudEventError::NotAnObject,
            Err(_) => CloudEventError::NotJson(err.to_string()),
        }
    })?;
    let missing = |event: &RawEvent, name: &str| {
        event
            .get(name)
            .is_none_or(|raw| matches!(raw.get(), "null" | "\"\""))
    };
    let mut fill = |name: &str, value: &str| -> Result<(), CloudEventError> {
        if missing(&event, name) {
            event.insert(name.to_owned(), raw_string(value)?);
        }
        Ok(())
    };
    fill("id", &new_id())?;
    fill("source", ctx.app_id)?;
    fill("type", DEFAULT_EVENT_TYPE)?;
    fill("specversion", SPEC_VERSION)?;
    fill("time", &rfc3339(ctx.now))?;
    let version = event
        .get("specversion")
        .map(|raw| raw.get())
        .unwrap_or_default();
    if serde_json::from_str::<Value>(version).ok() != Some(Value::from(SPEC_VERSION)) {
        return Err(CloudEventError::SpecVersion(version.to_owned()));
    }
    validate(&event)?;
    // The topic and component it is published to, whatever it claims.
    event.insert("topic".to_owned(), raw_string(ctx.topic)?);
    event.insert("pubsubname".to_owned(), raw_string(ctx.pubsub)?);
    match TraceContext::from_headers(ctx.trace) {
        // The request's live context wins, as in Dapr.
        Some(trace) => {
            event.insert("traceid".to_owned(), raw_string(&trace.traceparent)?);
            event.insert("traceparent".to_owned(), raw_string(&trace.traceparent)?);
            event.insert("tracestate".to_owned(), raw_string(&trace.tracestate)?);
        }
        None => {
            let own = event
                .get("traceparent")
                .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
                .filter(|traceparent| !traceparent.is_empty());
            let traceparent = own.unwrap_or_else(|| TraceContext::new().traceparent);
            if missing(&event, "traceparent") {
                event.insert("traceparent".to_owned(), raw_string(&traceparent)?);
            }
            if missing(&event, "traceid") {
                event.insert("traceid".to_owned(), raw_string(&traceparent)?);
            }
            if !event.contains_key("tracestate") {
                event.insert("tracestate".to_owned(), raw_string("")?);
            }
        }
    }
    if let Some(expiration) = expiration(ctx) {
        event.insert("expiration".to_owned(), raw_string(&expiration)?);
    }
    Ok(event)
}

/// Reads the event's context attributes and data into the crate's
/// [`cloudevents::Event`], which refuses what CloudEvents 1.0 does not allow.
/// Extension attributes are left out: Dapr passes any JSON value through.
fn validate(event: &RawEvent) -> Result<(), CloudEventError> {
    const CHECKED: [&str; 10] = [
        "specversion",
        "id",
        "source",
        "type",
        "datacontenttype",
        "dataschema",
        "subject",
        "time",
        "data",
        "data_base64",
    ];
    let mut attributes = Map::new();
    for name in CHECKED {
        if let Some(raw) = event.get(name) {
            let value = serde_json::from_str(raw.get())
                .map_err(|err| CloudEventError::Invalid(format!("{name}: {err}")))?;
            attributes.insert(name.to_owned(), value);
        }
    }
    serde_json::from_value::<cloudevents::Event>(Value::Object(attributes))
        .map(drop)
        .map_err(|err| CloudEventError::Invalid(err.to_string()))
}

/// The crate's serialised event as a map of raw values.
fn to_raw_event(value: serde_json::Result<Value>) -> Result<RawEvent, CloudEventError> {
    let Ok(Value::Object(map)) = value else {
        return Err(CloudEventError::Invalid(
            "the envelope did not serialise to a JSON object".to_owned(),
        ));
    };
    map.into_iter()
        .map(|(name, value)| {
            to_raw_value(&value)
                .map(|raw| (name, raw))
                .map_err(|err| CloudEventError::Invalid(err.to_string()))
        })
        .collect()
}

/// `text` as a raw JSON string.
fn raw_string(text: &str) -> Result<Box<RawValue>, CloudEventError> {
    to_raw_value(text).map_err(|err| CloudEventError::Invalid(err.to_string()))
}

/// `metadata.ttlInSeconds` as Dapr's `expiration`: the publish time plus the
/// TTL, RFC 3339 to the second.
fn expiration(ctx: &EnvelopeContext<'_>) -> Option<String> {
    let ttl = Duration::from_secs(u64::from(ctx.ttl_seconds?));
    ctx.now.checked_add(ttl).map(rfc3339)
}

/// `time` as Dapr writes it: RFC 3339, whole seconds, UTC.
fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A fresh event id, as Dapr makes them (a UUID v4).
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `content_type`'s media type (before any `;`) is `expected`,
/// ignoring case, as Dapr's `contenttype` helpers compare; codecs use it
/// where Dapr's wire rules depend on a content type.
pub fn has_media_type(content_type: &str, expected: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case(expected)
}

/// Dapr's `cloudevent.*` publish metadata: envelope attributes the app sets
/// itself (keys compared without case, as Dapr's decoder does). Empty values
/// count as unset.
#[derive(Default)]
struct Overrides<'a> {
    id: Option<String>,
    source: Option<&'a str>,
    ty: Option<&'a str>,
    traceid: Option<&'a str>,
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl<'a> Overrides<'a> {
    fn from_metadata(metadata: &'a Metadata) -> Self {
        let mut overrides = Overrides::default();
        for (key, value) in metadata {
            let Some(name) = key
                .get(..OVERRIDE_PREFIX.len())
                .filter(|prefix| prefix.eq_ignore_ascii_case(OVERRIDE_PREFIX))
                .and_then(|_| key.get(OVERRIDE_PREFIX.len()..))
            else {
                continue;
            };
            let value = Some(value.as_str()).filter(|value| !value.is_empty());
            match name.to_ascii_lowercase().as_str() {
                "id" => overrides.id = value.map(str::to_owned),
                "source" => overrides.source = value,
                "type" => overrides.ty = value,
                "traceid" => overrides.traceid = value,
                "traceparent" => overrides.traceparent = value,
                "tracestate" => overrides.tracestate = value,
                _ => {}
            }
        }
        overrides
    }

    /// The trace attributes: an overriding `traceparent` (else `traceid`)
    /// wins over the request's context, which wins over a new one.
    fn trace(&self, headers: &TraceHeaders) -> TraceContext {
        let mut trace = TraceContext::from_headers(headers).unwrap_or_else(TraceContext::new);
        if let Some(traceparent) = self.traceparent.or(self.traceid) {
            traceparent.clone_into(&mut trace.traceparent);
        }
        if let Some(tracestate) = self.tracestate {
            tracestate.clone_into(&mut trace.tracestate);
        }
        trace
    }
}

/// A W3C trace context as the envelope carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TraceContext {
    traceparent: String,
    tracestate: String,
}

impl TraceContext {
    /// The request's context; `None` when it has no valid `traceparent`
    /// (W3C: an invalid one is ignored, and `tracestate` with it).
    fn from_headers(headers: &TraceHeaders) -> Option<Self> {
        let traceparent = headers.traceparent.as_deref()?.trim();
        valid_traceparent(traceparent).then(|| TraceContext {
            traceparent: traceparent.to_owned(),
            tracestate: headers.tracestate.clone().unwrap_or_default(),
        })
    }

    /// A new trace: random trace and parent ids, sampled, so a subscriber
    /// with a parent-based sampler records it.
    fn new() -> Self {
        let trace_id = uuid::Uuid::new_v4().simple();
        let (span_id, _) = uuid::Uuid::new_v4().as_u64_pair();
        TraceContext {
            traceparent: format!("00-{trace_id}-{span_id:016x}-01"),
            tracestate: String::new(),
        }
    }
}

/// Whether `value` is a W3C `traceparent` this sidecar understands:
/// `version-traceid-parentid-flags` in lowercase hex, ids not all zero,
/// version not `ff`; a later version may append fields after the flags.
fn valid_traceparent(value: &str) -> bool {
    let mut parts = value.splitn(5, '-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let rest = parts.next();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    hex(version, 2)
        && version != "ff"
        && (version != "00" || rest.is_none())
        && hex(trace_id, 32)
        && nonzero(trace_id)
        && hex(parent_id, 16)
        && nonzero(parent_id)
        && hex(flags, 2)
}

#[cfg(test)]
mod tests;
