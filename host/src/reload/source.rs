//! Where the components to serve are described: the resources directory, or
//! the embedded defaults when there is none. Read once at start (strictly: a
//! broken file stops the sidecar) and again at every reload (leniently: a
//! broken file keeps what it described before serving).

use super::diff::Desired;
use crate::blocks::pubsub::subscription::SubscriptionSpec;
use crate::blocks::resiliency::RetryPolicy;
use crate::config::resources::{
    self, ComponentResource, LoadErrors, MetadataEntry, MetadataValue, SubscriptionResource,
};
use crate::config::settings::{DEFAULT_PUBSUB_NAME, DEFAULT_STATE_STORE_NAME, SidecarSettings};
use anyhow::bail;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the component resources come from.
#[derive(Debug, Clone)]
pub enum ResourceSource {
    /// The YAML in a resources directory, keeping the components in scope
    /// for `app_id`.
    Directory {
        /// The resources directory.
        dir: PathBuf,
        /// The app id that `scopes` are checked against.
        app_id: String,
    },
    /// No resources directory: the embedded defaults, which never change.
    Embedded(Vec<ComponentResource>),
}

/// What a lenient read found.
#[derive(Debug, Clone, Default)]
pub struct Scanned {
    /// The components in scope, from the files that parsed.
    pub components: Vec<ComponentResource>,
    /// Each file that did not parse, with its errors (one line each).
    pub broken_files: BTreeMap<PathBuf, String>,
}

impl ResourceSource {
    /// The source `settings` name: the resources directory if it exists,
    /// else the embedded defaults (an explicit `--resources-path` must exist).
    pub fn from_settings(settings: &SidecarSettings) -> anyhow::Result<Self> {
        let dir = &settings.resources_path;
        if dir.is_dir() {
            return Ok(ResourceSource::Directory {
                dir: dir.clone(),
                app_id: settings.app_id.clone(),
            });
        }
        if settings.resources_path_explicit {
            bail!("--resources-path {}: not a directory", dir.display());
        }
        tracing::info!(
            "no resources directory at {}; serving the embedded defaults",
            dir.display()
        );
        Ok(ResourceSource::Embedded(embedded_defaults(
            &settings.data_dir(),
        )))
    }

    /// The directory to watch for changes; none for the embedded defaults.
    pub fn watched_dir(&self) -> Option<&Path> {
        match self {
            ResourceSource::Directory { dir, .. } => Some(dir),
            ResourceSource::Embedded(_) => None,
        }
    }

    /// Every component in scope; any error in any file fails the read.
    pub fn read_all(&self) -> Result<Vec<ComponentResource>, LoadErrors> {
        match self {
            ResourceSource::Directory { dir, app_id } => {
                Ok(in_scope(resources::load_dir(dir)?, app_id))
            }
            ResourceSource::Embedded(defaults) => Ok(defaults.clone()),
        }
    }

    /// The components in scope from the files that parse, and the errors of
    /// those that do not; fails only when the directory cannot be read.
    pub fn scan(&self) -> Result<Scanned, LoadErrors> {
        let ResourceSource::Directory { dir, app_id } = self else {
            return self.read_all().map(|components| Scanned {
                components,
                broken_files: BTreeMap::new(),
            });
        };
        let scan = resources::scan_dir(dir)?;
        let mut broken_files: BTreeMap<PathBuf, String> = BTreeMap::new();
        for error in scan.errors.0 {
            let line = error.to_string();
            broken_files
                .entry(error.file.clone())
                .and_modify(|all| {
                    all.push_str("; ");
                    all.push_str(&line);
                })
                .or_insert(line);
        }
        let components = resources::warn_and_keep_components(scan.report);
        Ok(Scanned {
            components: in_scope(components, app_id),
            broken_files,
        })
    }

    /// What the resources declare for delivery to this app, read in one
    /// pass: the `Subscription`s and each pub/sub component's inbound retry
    /// policy (from `Resiliency`; a later file wins for the same component),
    /// of the resources whose `scopes` admit this app (no scopes admit every
    /// app). Any error in any file fails the read, as
    /// [`ResourceSource::read_all`] does. The embedded defaults declare
    /// nothing. Unknown fields are not logged here: reading the components
    /// logs those of every resource.
    pub fn declared_delivery(&self) -> Result<DeclaredDelivery, LoadErrors> {
        match self {
            ResourceSource::Directory { dir, app_id } => {
                let report = resources::load_dir_report(dir)?;
                Ok(DeclaredDelivery {
                    subscriptions: subscriptions_in_scope(report.subscriptions, app_id),
                    inbound_retries: report
                        .resiliencies
                        .into_iter()
                        .filter(|resource| admits(&resource.scopes, app_id))
                        .flat_map(|resource| resource.inbound_retries)
                        .collect(),
                })
            }
            ResourceSource::Embedded(_) => Ok(DeclaredDelivery::default()),
        }
    }

    /// [`ResourceSource::declared_delivery`]'s subscriptions for a reload: those of the files
    /// that parse (a broken file's errors are reported by
    /// [`ResourceSource::scan`]); fails only when the directory cannot be read.
    pub fn scan_subscriptions(&self) -> Result<Vec<SubscriptionSpec>, LoadErrors> {
        match self {
            ResourceSource::Directory { dir, app_id } => Ok(subscriptions_in_scope(
                resources::scan_dir(dir)?.report.subscriptions,
                app_id,
            )),
            ResourceSource::Embedded(_) => Ok(Vec::new()),
        }
    }
}

/// What the resources declare for pub/sub delivery to the app.
#[derive(Debug, Default, PartialEq)]
pub struct DeclaredDelivery {
    /// The declarative subscriptions in scope.
    pub subscriptions: Vec<SubscriptionSpec>,
    /// Each pub/sub component's inbound retry policy, by component name.
    pub inbound_retries: BTreeMap<String, RetryPolicy>,
}

/// Whether a resource with `scopes` applies to `app_id` (no scopes: to all).
fn admits(scopes: &[String], app_id: &str) -> bool {
    scopes.is_empty() || scopes.iter().any(|s| s == app_id)
}

/// The specs of the subscriptions whose `scopes` admit `app_id`.
fn subscriptions_in_scope(
    subscriptions: Vec<SubscriptionResource>,
    app_id: &str,
) -> Vec<SubscriptionSpec> {
    subscriptions
        .into_iter()
        .filter_map(|resource| {
            let admitted = admits(&resource.scopes, app_id);
            if !admitted {
                tracing::info!(subscription = %resource.name, "skipped: app id not in its scopes");
            }
            admitted.then_some(resource.spec)
        })
        .collect()
}

/// `components` with the sha256 their `.wasm` files have now (blocking: it
/// reads the files).
pub fn desired(components: Vec<ComponentResource>) -> Vec<Desired> {
    components
        .into_iter()
        .map(|resource| {
            let sha256 = resource
                .wasm
                .as_ref()
                .and_then(|wasm| std::fs::read(&wasm.path).ok())
                .map(|bytes| hex::encode(Sha256::digest(bytes)));
            Desired { resource, sha256 }
        })
        .collect()
}

/// The components whose `scopes` admit `app_id` (no scopes admit every app).
fn in_scope(components: Vec<ComponentResource>, app_id: &str) -> Vec<ComponentResource> {
    components
        .into_iter()
        .filter(|resource| {
            let in_scope =
                resource.scopes.is_empty() || resource.scopes.iter().any(|s| s == app_id);
            if !in_scope {
                tracing::info!(component = %resource.name, "skipped: app id not in its scopes");
            }
            in_scope
        })
        .collect()
}

/// A durable file-backed state store under Outrig's home and an in-process
/// pub/sub, named as Dapr's self-hosted defaults so apps written for Dapr
/// find them.
fn embedded_defaults(data_dir: &Path) -> Vec<ComponentResource> {
    let pubsub = ComponentResource {
        name: DEFAULT_PUBSUB_NAME.into(),
        namespace: None,
        component_type: "pubsub.in-memory".into(),
        version: "v1".into(),
        metadata: Vec::new(),
        scopes: Vec::new(),
        wasm: None,
        source: "embedded default".into(),
    };
    let state = ComponentResource {
        name: DEFAULT_STATE_STORE_NAME.into(),
        namespace: None,
        component_type: "state.redb".into(),
        version: "v1".into(),
        metadata: vec![MetadataEntry {
            name: "dataDir".into(),
            value: MetadataValue::Plain(
                data_dir
                    .join(DEFAULT_STATE_STORE_NAME)
                    .display()
                    .to_string(),
            ),
        }],
        scopes: Vec::new(),
        wasm: None,
        source: "embedded default".into(),
    };
    vec![state, pubsub]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_those_in_scope_of_the_app_and_none_when_embedded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let subscription = |name: &str, scopes: &str| {
            format!(
                "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata:\n  name: {name}\nspec:\n  pubsubname: pubsub\n  topic: {name}\n  route: /{name}\n{scopes}"
            )
        };
        let text = [
            subscription("everyone", ""),
            subscription("mine", "scopes: [other, orders]\n"),
            subscription("theirs", "scopes: [other]\n"),
        ]
        .join("---\n");
        std::fs::write(dir.path().join("subs.yaml"), text).expect("write");
        let source = ResourceSource::Directory {
            dir: dir.path().to_path_buf(),
            app_id: "orders".into(),
        };
        let topics = |specs: Vec<SubscriptionSpec>| -> Vec<String> {
            specs.into_iter().map(|spec| spec.topic).collect()
        };
        let strict = source.declared_delivery().expect("subscriptions");
        assert_eq!(topics(strict.subscriptions), vec!["everyone", "mine"]);

        // A broken file fails the strict read; the lenient one keeps the rest.
        std::fs::write(
            dir.path().join("broken.yaml"),
            subscription("broken", "").replace("  route: /broken\n", ""),
        )
        .expect("write");
        let errors = source.declared_delivery().expect_err("broken file");
        assert!(
            errors.to_string().contains("spec.route: missing"),
            "{errors}"
        );
        let lenient = source.scan_subscriptions().expect("scan");
        assert_eq!(topics(lenient), vec!["everyone", "mine"]);

        let embedded = ResourceSource::Embedded(Vec::new());
        assert_eq!(
            embedded.declared_delivery(),
            Ok(DeclaredDelivery::default())
        );
        assert_eq!(embedded.scan_subscriptions(), Ok(Vec::new()));
    }
}
