//! The answer of an HTTP app's `GET /dapr/subscribe`, read as Dapr reads it.
//!
//! Dapr decodes it with Go's `encoding/json`, and this follows suit: field
//! names match case-insensitively (an exact match wins), `null` is the same
//! as an absent field, unknown fields are ignored, and a value of the wrong
//! type fails the whole answer. Dapr's precedence holds: `routes.default`
//! over v1's `route`, both after `routes.rules`; an entry with neither rules
//! nor a route is dropped with a warning, as Dapr drops it. A rule whose
//! `match` does not compile fails the answer, as in Dapr.
//!
//! Stricter than Dapr, because such an entry can never be delivered: an
//! entry without `pubsubname` or `topic` is an error naming its index, and
//! so is a negative or out-of-range `bulkSubscribe` count.

use super::{BulkSubscribe, RouteRule, Routes, SubscriptionKind, SubscriptionSpec};
use crate::blocks::pubsub::Metadata;
use crate::blocks::pubsub::routing;
use serde_json::{Map, Value};

/// Where programmatic subscriptions come from, for logs and errors.
const ORIGIN: &str = "app";

/// Parses the body of the app's `GET /dapr/subscribe` answer (a JSON array
/// of subscriptions; `null` is none). Every problem of every entry is
/// reported at once, `; `-separated, each naming the entry by its index.
pub fn from_app_json(body: &[u8]) -> Result<Vec<SubscriptionSpec>, String> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|error| format!("the answer is not JSON: {error}"))?;
    let entries = match answer {
        Value::Array(entries) => entries,
        Value::Null => Vec::new(),
        other => {
            return Err(format!(
                "expected a JSON array of subscriptions, got {}",
                kind(&other)
            ));
        }
    };
    let mut subscriptions = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let mut fields = Fields {
            errors: Vec::new(),
            prefix: format!("entry {index}: "),
        };
        let parsed = fields.subscription(entry);
        if !fields.errors.is_empty() {
            errors.append(&mut fields.errors);
            continue;
        }
        match parsed {
            Some(spec) if spec.routes.is_empty() => tracing::warn!(
                entry = index,
                pubsub = %spec.pubsub_name,
                topic = %spec.topic,
                "programmatic subscription without route, routes.default or routes.rules: ignored, as Dapr does"
            ),
            Some(spec) => subscriptions.push(spec),
            None => {}
        }
    }
    if errors.is_empty() {
        Ok(subscriptions)
    } else {
        Err(errors.join("; "))
    }
}

/// Reads the fields of one entry, collecting its problems.
struct Fields {
    errors: Vec<String>,
    /// `entry <index>: `, before every message.
    prefix: String,
}

impl Fields {
    fn subscription(&mut self, entry: &Value) -> Option<SubscriptionSpec> {
        let object = self.object(entry, "")?;
        let pubsub_name = self.required(object, "pubsubname");
        let topic = self.required(object, "topic");
        let route = self.string(object, "route", "route");
        let (rules, default) = match field(object, "routes") {
            Some(routes) => match self.object(routes, "routes") {
                Some(routes) => (
                    self.rules(routes),
                    self.string(routes, "default", "routes.default"),
                ),
                None => (Vec::new(), None),
            },
            None => (Vec::new(), None),
        };
        let metadata = self.metadata(object);
        let dead_letter_topic = self
            .string(object, "deadLetterTopic", "deadLetterTopic")
            .filter(|topic| !topic.is_empty());
        let bulk = self.bulk(object);
        Some(SubscriptionSpec {
            pubsub_name: pubsub_name?,
            topic: topic?,
            routes: Routes::from_dapr(route, rules, default),
            metadata,
            dead_letter_topic,
            bulk,
            origin: ORIGIN.to_owned(),
            kind: SubscriptionKind::Programmatic,
        })
    }

    fn rules(&mut self, routes: &Map<String, Value>) -> Vec<RouteRule> {
        let items = match field(routes, "rules") {
            None => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    "routes.rules",
                    format!("expected an array, got {}", kind(other)),
                );
                return Vec::new();
            }
        };
        let mut rules = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let at = format!("routes.rules[{index}]");
            let Some(rule) = self.object(item, &at) else {
                continue;
            };
            let condition = self
                .string(rule, "match", &format!("{at}.match"))
                .unwrap_or_default();
            let path = self
                .string(rule, "path", &format!("{at}.path"))
                .unwrap_or_default();
            if let Err(message) = routing::compile_condition(&condition) {
                self.error(
                    &format!("{at}.match"),
                    format!("`{}`: {message}", condition.trim()),
                );
            }
            rules.push(RouteRule { condition, path });
        }
        rules
    }

    fn metadata(&mut self, object: &Map<String, Value>) -> Metadata {
        let mut metadata = Metadata::new();
        match field(object, "metadata") {
            None => {}
            Some(Value::Object(items)) => {
                for (name, value) in items {
                    match value {
                        Value::String(text) => {
                            metadata.insert(name.clone(), text.clone());
                        }
                        Value::Null => {
                            metadata.insert(name.clone(), String::new());
                        }
                        other => self.error(
                            &format!("metadata.{name}"),
                            format!("expected a string, got {}", kind(other)),
                        ),
                    }
                }
            }
            Some(other) => self.error(
                "metadata",
                format!("expected an object, got {}", kind(other)),
            ),
        }
        metadata
    }

    fn bulk(&mut self, object: &Map<String, Value>) -> Option<BulkSubscribe> {
        let bulk = self.object(field(object, "bulkSubscribe")?, "bulkSubscribe")?;
        let enabled = match field(bulk, "enabled") {
            None => false,
            Some(Value::Bool(enabled)) => *enabled,
            Some(other) => {
                self.error(
                    "bulkSubscribe.enabled",
                    format!("expected true or false, got {}", kind(other)),
                );
                false
            }
        };
        let max_messages = self.integer(bulk, "maxMessagesCount");
        let max_await = self.integer(bulk, "maxAwaitDurationMs");
        match BulkSubscribe::from_dapr(enabled, max_messages, max_await) {
            Ok(bulk) => bulk,
            Err(problems) => {
                for (name, message) in problems {
                    self.error(&format!("bulkSubscribe.{name}"), message);
                }
                None
            }
        }
    }

    /// `value` as an object, else an error at `at` (`null` included).
    fn object<'v>(&mut self, value: &'v Value, at: &str) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(object) => Some(object),
            other => {
                let at = if at.is_empty() { "the entry" } else { at };
                self.error(at, format!("expected an object, got {}", kind(other)));
                None
            }
        }
    }

    /// A string field that must be given and not empty.
    fn required(&mut self, object: &Map<String, Value>, name: &str) -> Option<String> {
        match self.string(object, name, name) {
            Some(value) if !value.trim().is_empty() => Some(value),
            _ => {
                self.error(name, "missing".into());
                None
            }
        }
    }

    /// A string field; `None` when absent or `null`.
    fn string(&mut self, object: &Map<String, Value>, name: &str, at: &str) -> Option<String> {
        match field(object, name)? {
            Value::String(text) => Some(text.clone()),
            other => {
                self.error(at, format!("expected a string, got {}", kind(other)));
                None
            }
        }
    }

    /// A whole-number field of `bulkSubscribe`; `None` when absent or `null`.
    fn integer(&mut self, object: &Map<String, Value>, name: &str) -> Option<i64> {
        let at = format!("bulkSubscribe.{name}");
        match field(object, name)? {
            Value::Number(number) => match number.as_i64() {
                Some(value) => Some(value),
                None => {
                    self.error(&at, format!("{number} is not a whole number in range"));
                    None
                }
            },
            other => {
                self.error(&at, format!("expected a number, got {}", kind(other)));
                None
            }
        }
    }

    fn error(&mut self, at: &str, message: String) {
        self.errors.push(format!("{}{at}: {message}", self.prefix));
    }
}

/// The field `name` of `object` as Go's JSON decoder finds it: the exact
/// name, else any name equal to it ignoring case. `null` counts as absent.
fn field<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object
        .get(name)
        .or_else(|| {
            object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        })
        .filter(|value| !value.is_null())
}

/// A JSON value's kind, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
