//! What an app subscribes to, however it said so: the programmatic answer
//! of `GET /dapr/subscribe` or gRPC `ListTopicSubscriptions`, or a
//! declarative `Subscription` resource (`dapr.io/v1alpha1` or `v2alpha1`).
//! Every form becomes one [`SubscriptionSpec`], so delivery has one input.
//!
//! Route paths are kept as the subscriber wrote them, with or without a
//! leading `/`: a gRPC app is handed its path back verbatim in
//! `TopicEventRequest.path`, and matches on it. Over HTTP both spellings
//! are the same endpoint (Dapr adds the `/`); [`http_path`] is that rule,
//! the one place an HTTP delivery turns a route into a request path.

mod app_json;

pub use app_json::from_app_json;

use super::Metadata;
use std::borrow::Cow;

/// One topic subscription of the app.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionSpec {
    /// The pub/sub component (`pubsubname`).
    pub pubsub_name: String,
    /// The topic.
    pub topic: String,
    /// Where events go: rules tried in order, then the default route.
    pub routes: Routes,
    /// The subscription's metadata (`rawPayload`, broker options).
    pub metadata: Metadata,
    /// Where dropped events are published instead of being discarded.
    pub dead_letter_topic: Option<String>,
    /// Deliver in batches instead of one event per call.
    pub bulk: Option<BulkSubscribe>,
    /// Where the subscription came from, for logs and errors (the app, or a
    /// resource file and its name).
    pub origin: String,
    /// Declared in a resource or asked for by the app (Dapr's metadata API
    /// reports which).
    pub kind: SubscriptionKind,
}

/// How a subscription was made, in Dapr's metadata terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionKind {
    /// A `Subscription` resource.
    Declarative,
    /// The app's answer to `GET /dapr/subscribe` or `ListTopicSubscriptions`.
    #[default]
    Programmatic,
}

impl SubscriptionKind {
    /// Dapr's name for it (`PubsubSubscriptionType`).
    pub fn dapr_name(self) -> &'static str {
        match self {
            SubscriptionKind::Declarative => "DECLARATIVE",
            SubscriptionKind::Programmatic => "PROGRAMMATIC",
        }
    }
}

impl SubscriptionSpec {
    /// Whether the broker's messages are raw payloads, not CloudEvents
    /// (`metadata.rawPayload`): they are wrapped for the app on delivery.
    pub fn raw_payload(&self) -> bool {
        self.metadata
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("rawPayload") && v.eq_ignore_ascii_case("true"))
    }
}

/// Dapr's `routes`: the path events go to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routes {
    /// `rules`: the first whose `match` holds for the event gives the path.
    pub rules: Vec<RouteRule>,
    /// `default` (or v1's `route`): the path when no rule matches.
    pub default: Option<String>,
}

impl Routes {
    /// The routes as Dapr reads a subscription that may carry both forms:
    /// `routes.default` if given, else v1's single `route`, after the rules.
    /// Empty strings count as absent, as in Dapr.
    pub fn from_dapr(
        route: Option<String>,
        rules: Vec<RouteRule>,
        default: Option<String>,
    ) -> Routes {
        let given = |path: Option<String>| path.filter(|path| !path.is_empty());
        Routes {
            rules,
            default: given(default).or_else(|| given(route)),
        }
    }

    /// The routes as Dapr's metadata lists them: `(match, path)` per rule,
    /// then the default as a rule with an empty `match`.
    pub fn as_dapr_rules(&self) -> Vec<(&str, &str)> {
        self.rules
            .iter()
            .map(|rule| (rule.condition.as_str(), rule.path.as_str()))
            .chain(self.default.as_deref().map(|path| ("", path)))
            .collect()
    }

    /// Whether no event could ever be routed: no rule and no default. Dapr
    /// drops such a subscription.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.default.is_none()
    }
}

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// A CEL expression over `event` (the CloudEvent), e.g.
    /// `event.type == "order.created"`.
    pub condition: String,
    /// The app's path for events it matches.
    pub path: String,
}

/// Dapr's `bulkSubscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkSubscribe {
    /// The most events in one batch (`maxMessagesCount`, Dapr's default 100).
    pub max_messages: u32,
    /// How long to wait to fill a batch (`maxAwaitDurationMs`, default 1000).
    pub max_await_ms: u32,
}

impl BulkSubscribe {
    /// Dapr's `bulkSubscribe` as written: `None` unless enabled; a count
    /// that is absent or 0 takes Dapr's default (its JSON omits zeros, so 0
    /// means "not set"). A negative count or one beyond Dapr's 32-bit field
    /// is an error naming the field, even when bulk is not enabled.
    pub fn from_dapr(
        enabled: bool,
        max_messages_count: Option<i64>,
        max_await_duration_ms: Option<i64>,
    ) -> Result<Option<BulkSubscribe>, Vec<(&'static str, String)>> {
        let defaults = BulkSubscribe::default();
        let mut errors = Vec::new();
        let mut count = |field: &'static str, value: Option<i64>, default: u32| match value {
            None | Some(0) => default,
            Some(value) => match u32::try_from(value) {
                Ok(value) if i32::try_from(value).is_ok() => value,
                _ => {
                    errors.push((
                        field,
                        format!(
                            "{value} is out of range (1 to {}; 0 for the default {default})",
                            i32::MAX
                        ),
                    ));
                    default
                }
            },
        };
        let bulk = BulkSubscribe {
            max_messages: count(
                "maxMessagesCount",
                max_messages_count,
                defaults.max_messages,
            ),
            max_await_ms: count(
                "maxAwaitDurationMs",
                max_await_duration_ms,
                defaults.max_await_ms,
            ),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(enabled.then_some(bulk))
    }
}

/// The HTTP request path for a route: Dapr posts to `/<route>` whether or
/// not the route starts with `/`, so `orders` and `/orders` are one endpoint
/// (and an empty route is the app's root).
pub fn http_path(route: &str) -> Cow<'_, str> {
    if route.starts_with('/') {
        Cow::Borrowed(route)
    } else {
        Cow::Owned(format!("/{route}"))
    }
}

impl Default for BulkSubscribe {
    fn default() -> Self {
        BulkSubscribe {
            max_messages: 100,
            max_await_ms: 1000,
        }
    }
}

#[cfg(test)]
mod tests;
