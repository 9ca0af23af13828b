//! From a [`RawResiliency`] to a checked [`ResiliencyResource`]: the retry
//! policies and which component's inbound side (delivery of its events to
//! the app) uses which, every problem collected with its field.
//!
//! Timeouts, circuit breakers and app targets are Dapr fields the schema
//! knows but nothing applies yet; they are read when service invocation
//! needs them.

use super::ResiliencyResource;
use super::convert::{FieldError, check_scopes, resource_name, scalar_text};
use super::raw::{RawResiliency, RawRetry};
use crate::blocks::resiliency::{
    DEFAULT_CONSTANT_DURATION, DEFAULT_MAX_INTERVAL, RetryBackoff, RetryPolicy,
};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Checks `raw` and builds the resource; `source` is its file.
pub fn resiliency(
    raw: RawResiliency,
    source: &Path,
) -> Result<ResiliencyResource, Vec<FieldError>> {
    let mut errors = Vec::new();
    let metadata = raw.metadata.unwrap_or_default();
    let spec = raw.spec.unwrap_or_default();
    let name = resource_name(&mut errors, metadata.name);
    let retries: BTreeMap<String, RetryPolicy> = spec
        .policies
        .and_then(|policies| policies.retries)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, raw)| {
            let field = format!("spec.policies.retries.{name}");
            retry_policy(&mut errors, &field, raw).map(|policy| (name, policy))
        })
        .collect();
    let mut inbound_retries = BTreeMap::new();
    let components = spec
        .targets
        .and_then(|targets| targets.components)
        .unwrap_or_default();
    for (component, target) in components {
        let Some(policy_name) = target.inbound.and_then(|inbound| inbound.retry) else {
            continue;
        };
        match retries.get(&policy_name) {
            Some(policy) => {
                inbound_retries.insert(component, *policy);
            }
            None => errors.push((
                format!("spec.targets.components.{component}.inbound.retry"),
                format!("no retry policy named `{policy_name}` in spec.policies.retries"),
            )),
        }
    }
    let scopes = raw.scopes.unwrap_or_default();
    check_scopes(&mut errors, &scopes);
    match name {
        Some(name) if errors.is_empty() => Ok(ResiliencyResource {
            name,
            namespace: metadata.namespace.filter(|ns| !ns.is_empty()),
            inbound_retries,
            scopes,
            source: source.to_path_buf(),
        }),
        _ => Err(errors),
    }
}

/// One retry policy: `constant` (the default, `duration` 5 s) or
/// `exponential` (`maxInterval` 60 s), `maxRetries` -1 (the default) for
/// no limit.
fn retry_policy(errors: &mut Vec<FieldError>, field: &str, raw: RawRetry) -> Option<RetryPolicy> {
    let before = errors.len();
    let duration = |errors: &mut Vec<FieldError>, name: &str, value: Option<Value>, default| {
        let Some(value) = value else { return default };
        let text = scalar_text(value);
        humantime::parse_duration(text.trim()).unwrap_or_else(|_| {
            errors.push((
                format!("{field}.{name}"),
                format!("`{text}` is not a duration (such as 500ms, 5s or 1m30s)"),
            ));
            default
        })
    };
    let backoff = match raw.policy.as_deref().map(str::trim) {
        None | Some("constant") => RetryBackoff::Constant(duration(
            errors,
            "duration",
            raw.duration,
            DEFAULT_CONSTANT_DURATION,
        )),
        Some("exponential") => RetryBackoff::Exponential(duration(
            errors,
            "maxInterval",
            raw.max_interval,
            DEFAULT_MAX_INTERVAL,
        )),
        Some(other) => {
            errors.push((
                format!("{field}.policy"),
                format!("`{other}` is not a retry policy (constant or exponential)"),
            ));
            RetryBackoff::Constant(Duration::ZERO)
        }
    };
    let max_retries = match raw.max_retries {
        None | Some(-1) => None,
        Some(n) => match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push((
                    format!("{field}.maxRetries"),
                    format!("{n} is out of range (-1 for no limit, or 0 and up)"),
                ));
                None
            }
        },
    };
    (errors.len() == before).then_some(RetryPolicy {
        backoff,
        max_retries,
    })
}
