//! `outrig components validate`: reads the resources directory as the
//! sidecar (and a hot reload) would, and reports every problem at once,
//! without starting anything: YAML errors, unknown fields, unknown types,
//! missing `.wasm` files, sha256 pins that do not match, and subscriptions
//! that do not parse (their routing rules included, compiled as delivery
//! would). Run it before saving into a watched directory; a non-zero exit
//! means a reload would keep the old version of something.

use super::ValidateArgs;
use crate::components::builtin;
use crate::config::resources::{self, ComponentResource, SubscriptionResource};
use crate::config::settings;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

/// Prints the report; exit code 1 when there are errors.
pub fn validate(args: &ValidateArgs) -> anyhow::Result<i32> {
    let dir = args
        .resources_path
        .clone()
        .unwrap_or_else(|| settings::DEFAULT_RESOURCES_PATH.into());
    let (report, errors) = report(&dir);
    print!("{report}");
    Ok(if errors == 0 { 0 } else { 1 })
}

/// The report on `dir`, and how many errors it lists.
pub fn report(dir: &Path) -> (String, usize) {
    let mut out = String::new();
    let scan = match resources::scan_dir(dir) {
        Ok(scan) => scan,
        Err(errors) => {
            let _ = writeln!(out, "error: {errors}");
            return (out, 1);
        }
    };
    let mut errors = scan.errors.0.len();
    for component in &scan.report.components {
        match check(component) {
            Ok(what) => {
                let _ = writeln!(
                    out,
                    "{}: {} ({}, {what})",
                    component.source.display(),
                    component.name,
                    component.component_type
                );
            }
            Err(problem) => {
                errors += 1;
                let _ = writeln!(
                    out,
                    "error: {}: component `{}`: {problem}",
                    component.source.display(),
                    component.name
                );
            }
        }
    }
    let mut warnings = scan.report.unknown_fields.len();
    for subscription in &scan.report.subscriptions {
        let _ = writeln!(out, "{}", describe(subscription));
        if let Some(problem) = unknown_pubsub(subscription, &scan.report.components) {
            warnings += 1;
            let _ = writeln!(out, "warning: {problem}");
        }
    }
    for unknown in &scan.report.unknown_fields {
        let _ = writeln!(
            out,
            "warning: {}: {}: unknown field (kept, not used)",
            unknown.file.display(),
            unknown.field
        );
    }
    for error in &scan.errors.0 {
        let _ = writeln!(out, "error: {error}");
    }
    let _ = writeln!(
        out,
        "{} components, {} subscriptions, {warnings} warnings, {errors} errors",
        scan.report.components.len(),
        scan.report.subscriptions.len(),
    );
    (out, errors)
}

/// One line on what a subscription delivers where.
fn describe(subscription: &SubscriptionResource) -> String {
    let spec = &subscription.spec;
    let mut routes = match spec.routes.rules.len() {
        0 => String::new(),
        1 => "1 rule".to_owned(),
        n => format!("{n} rules"),
    };
    if let Some(default) = &spec.routes.default {
        let joint = if routes.is_empty() { "" } else { ", default " };
        routes.push_str(&format!("{joint}{default}"));
    }
    format!(
        "{}: Subscription {} ({}/{} -> {routes})",
        subscription.source.display(),
        subscription.name,
        spec.pubsub_name,
        spec.topic
    )
}

/// A warning when no pub/sub component of the directory has the
/// subscription's `pubsubname` (it would receive nothing).
fn unknown_pubsub(
    subscription: &SubscriptionResource,
    components: &[ComponentResource],
) -> Option<String> {
    let name = &subscription.spec.pubsub_name;
    let known = components
        .iter()
        .any(|c| &c.name == name && c.component_type.starts_with("pubsub."));
    (!known).then(|| {
        format!(
            "{}: Subscription `{}`: spec.pubsubname: no pub/sub component `{name}` in this directory",
            subscription.source.display(),
            subscription.name
        )
    })
}

/// What serves `component` if it loads, or why it would not.
fn check(component: &ComponentResource) -> Result<String, String> {
    let Some(wasm) = &component.wasm else {
        return match builtin::lookup(&component.component_type) {
            Some(_) => Ok("built-in".into()),
            None => Err(format!(
                "spec.type: unknown component type `{}`; built-in types are {}",
                component.component_type,
                builtin::type_names().join(", ")
            )),
        };
    };
    let bytes = std::fs::read(&wasm.path)
        .map_err(|err| format!("spec.wasm.path: cannot read {}: {err}", wasm.path.display()))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    match &wasm.sha256 {
        Some(pin) if *pin != actual => Err(format!(
            "spec.wasm.sha256: {} has sha256 {actual}, but {pin} is required",
            wasm.path.display()
        )),
        Some(_) => Ok(format!("{}, sha256 pin matches", wasm.path.display())),
        None => Ok(format!("{}, sha256 {actual}", wasm.path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |file: &str, spec: &str| {
            let name = file.trim_end_matches(".yaml");
            let text = format!(
                "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n{spec}"
            );
            std::fs::write(dir.path().join(file), text).expect("write");
        };
        std::fs::write(dir.path().join("mine.wasm"), b"bytes").expect("write");
        let sha = hex::encode(Sha256::digest(b"bytes"));
        write("good.yaml", "  type: state.in-memory\n  extra: 1\n");
        write(
            "pinned.yaml",
            &format!("  type: state.mine\n  wasm:\n    path: mine.wasm\n    sha256: {sha}\n"),
        );
        write("unknown.yaml", "  type: state.nope\n");
        write(
            "missing.yaml",
            "  type: state.mine\n  wasm:\n    path: gone.wasm\n",
        );
        write(
            "wrongpin.yaml",
            &format!(
                "  type: state.mine\n  wasm:\n    path: mine.wasm\n    sha256: {}\n",
                "0".repeat(64)
            ),
        );
        write("broken.yaml", "  type: [\n");
        let subscription = |name: &str, spec: &str| {
            format!(
                "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: {name}\nspec:\n{spec}"
            )
        };
        write("bus.yaml", "  type: pubsub.in-memory\n");
        std::fs::write(
            dir.path().join("subs.yaml"),
            [
                subscription(
                    "orders",
                    "  pubsubname: bus\n  topic: orders\n  routes:\n    rules:\n    - {match: \"event.type == 'big'\", path: /big}\n    default: /orders\n",
                ),
                subscription(
                    "elsewhere",
                    "  pubsubname: nowhere\n  topic: t\n  routes:\n    default: t\n",
                ),
            ]
            .join("---\n"),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("badrule.yaml"),
            subscription(
                "badrule",
                "  pubsubname: bus\n  topic: t\n  routes:\n    rules:\n    - {match: \"event.data.price >\", path: /p}\n",
            ),
        )
        .expect("write");
        let (text, errors) = report(dir.path());
        assert_eq!(errors, 5, "{text}");
        for expected in [
            "good (state.in-memory, built-in)",
            "pinned (state.mine,",
            "sha256 pin matches",
            "component `unknown`: spec.type: unknown component type",
            "component `missing`: spec.wasm.path: cannot read",
            "component `wrongpin`: spec.wasm.sha256:",
            "warning: ",
            "spec.extra: unknown field",
            "broken.yaml",
            "subs.yaml: Subscription orders (bus/orders -> 1 rule, default /orders)",
            "subs.yaml: Subscription elsewhere (nowhere/t -> t)",
            "Subscription `elsewhere`: spec.pubsubname: no pub/sub component `nowhere`",
            "badrule.yaml: spec.routes.rules[0].match: `event.data.price >`: 1:",
            "6 components, 2 subscriptions, 2 warnings, 5 errors",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
    }
}
