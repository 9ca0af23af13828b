//! From a [`RawSubscription`] to a checked [`SubscriptionResource`]: the
//! fields of its version (`dapr.io/v1alpha1`'s `route`, `dapr.io/v2alpha1`'s
//! `routes`), every problem collected with the field it concerns. Routing
//! rules are compiled here, so a broken `match` is reported when the file
//! is read, not at every event.

use super::SubscriptionResource;
use super::convert::{FieldError, check_scopes, required, resource_name, scalar_text};
use super::raw::{RawBulkSubscribe, RawRoutes, RawSubscription};
use crate::blocks::pubsub::Metadata;
use crate::blocks::pubsub::routing;
use crate::blocks::pubsub::subscription::{
    BulkSubscribe, RouteRule, Routes, SubscriptionKind, SubscriptionSpec,
};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Checks `raw` (of `dapr.io/v2alpha1` when `v2`, else v1alpha1) and builds
/// the subscription; `source` is the file it came from.
pub fn subscription(
    raw: RawSubscription,
    v2: bool,
    source: &Path,
) -> Result<SubscriptionResource, Vec<FieldError>> {
    let mut errors = Vec::new();
    let metadata = raw.metadata.unwrap_or_default();
    let spec = raw.spec.unwrap_or_default();

    let name = resource_name(&mut errors, metadata.name);
    let pubsub_name = required(&mut errors, "spec.pubsubname", spec.pubsubname);
    let topic = required(&mut errors, "spec.topic", spec.topic);
    let routes = if v2 {
        v2_routes(&mut errors, spec.routes)
    } else {
        let route = required(&mut errors, "spec.route", spec.route);
        Routes::from_dapr(route, Vec::new(), None)
    };
    let entries = metadata_map(&mut errors, spec.metadata.unwrap_or_default());
    let bulk = spec
        .bulk_subscribe
        .and_then(|bulk| bulk_subscribe(&mut errors, bulk));
    let scopes = raw.scopes.unwrap_or_default();
    check_scopes(&mut errors, &scopes);

    match (name, pubsub_name, topic) {
        (Some(name), Some(pubsub_name), Some(topic)) if errors.is_empty() => {
            Ok(SubscriptionResource {
                spec: SubscriptionSpec {
                    pubsub_name,
                    topic,
                    routes,
                    metadata: entries,
                    dead_letter_topic: spec.dead_letter_topic.filter(|topic| !topic.is_empty()),
                    bulk,
                    origin: format!("{}: Subscription {name}", source.display()),
                    kind: SubscriptionKind::Declarative,
                },
                name,
                namespace: metadata.namespace.filter(|ns| !ns.is_empty()),
                scopes,
                source: source.to_path_buf(),
            })
        }
        _ => Err(errors),
    }
}

/// v2alpha1's `spec.routes`: rules with a `path` each (a `match` compiled
/// if given; without one the rule always holds, as in Dapr) and a default.
fn v2_routes(errors: &mut Vec<FieldError>, raw: Option<RawRoutes>) -> Routes {
    const FIELD: &str = "spec.routes";
    let Some(raw) = raw else {
        errors.push((FIELD.into(), "missing (rules, default, or both)".into()));
        return Routes::default();
    };
    let mut rules = Vec::new();
    for (index, rule) in raw.rules.unwrap_or_default().into_iter().enumerate() {
        let field = format!("{FIELD}.rules[{index}]");
        let condition = rule.condition.unwrap_or_default();
        if let Err(message) = routing::compile_condition(&condition) {
            errors.push((
                format!("{field}.match"),
                format!("`{}`: {message}", condition.trim()),
            ));
        }
        if let Some(path) = required(errors, &format!("{field}.path"), rule.path) {
            rules.push(RouteRule { condition, path });
        }
    }
    let routes = Routes::from_dapr(None, rules, raw.default);
    if routes.is_empty() {
        errors.push((
            FIELD.into(),
            "no rules and no default: no event would be delivered".into(),
        ));
    }
    routes
}

/// `spec.metadata`: names to scalar values, kept as their text.
fn metadata_map(errors: &mut Vec<FieldError>, raw: BTreeMap<String, Value>) -> Metadata {
    let mut metadata = Metadata::new();
    for (name, value) in raw {
        match value {
            Value::Sequence(_) | Value::Mapping(_) => errors.push((
                format!("spec.metadata.{name}"),
                "expected a string, number or boolean".into(),
            )),
            scalar => {
                metadata.insert(name, scalar_text(scalar));
            }
        }
    }
    metadata
}

/// `spec.bulkSubscribe`, or `None` when not enabled.
fn bulk_subscribe(errors: &mut Vec<FieldError>, raw: RawBulkSubscribe) -> Option<BulkSubscribe> {
    BulkSubscribe::from_dapr(
        raw.enabled.unwrap_or(false),
        raw.max_messages_count,
        raw.max_await_duration_ms,
    )
    .unwrap_or_else(|problems| {
        errors.extend(
            problems
                .into_iter()
                .map(|(field, message)| (format!("spec.bulkSubscribe.{field}"), message)),
        );
        None
    })
}
