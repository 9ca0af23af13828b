//! Where the components to serve are described: the resources directory, or
//! the embedded defaults when there is none. Read once at start (strictly: a
//! broken file stops the sidecar) and again at every reload (leniently: a
//! broken file keeps what it described before serving).

use super::diff::Desired;
use crate::blocks::pubsub::delivery::DeclaredDelivery;
use crate::blocks::pubsub::subscription::SubscriptionSpec;
use crate::config::resources::{
    self, ComponentResource, LoadErrors, LoadReport, MetadataEntry, MetadataValue,
    SubscriptionResource,
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

/// What one read of the resources found for this app.
#[derive(Debug, Clone, Default)]
pub struct Scanned {
    /// The components in scope, from the files that parsed.
    pub components: Vec<ComponentResource>,
    /// The subscriptions and retry policies in scope, from the files that
    /// parsed.
    pub delivery: DeclaredDelivery,
    /// Each file that did not parse, with its errors (one line each); empty
    /// after a strict read.
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

    /// Everything in scope, read in one pass; any error in any file fails
    /// the read. Unknown fields are logged. The embedded defaults declare no
    /// subscription and no retry policy.
    pub fn read_all(&self) -> Result<Scanned, LoadErrors> {
        match self {
            ResourceSource::Directory { dir, app_id } => Ok(in_scope(
                resources::load_dir_report(dir)?,
                app_id,
                BTreeMap::new(),
            )),
            ResourceSource::Embedded(defaults) => Ok(Scanned {
                components: defaults.clone(),
                ..Scanned::default()
            }),
        }
    }

    /// [`ResourceSource::read_all`] for a reload: what is in scope in the
    /// files that parse, and the errors of those that do not; fails only
    /// when the directory cannot be read.
    pub fn scan(&self) -> Result<Scanned, LoadErrors> {
        let ResourceSource::Directory { dir, app_id } = self else {
            return self.read_all();
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
        Ok(in_scope(scan.report, app_id, broken_files))
    }
}

/// What `report` holds for `app_id`: the resources whose `scopes` admit it
/// (later files win for one component's retry policy). Logs unknown fields.
fn in_scope(
    mut report: LoadReport,
    app_id: &str,
    broken_files: BTreeMap<PathBuf, String>,
) -> Scanned {
    let subscriptions = subscriptions_in_scope(std::mem::take(&mut report.subscriptions), app_id);
    let inbound_retries = std::mem::take(&mut report.resiliencies)
        .into_iter()
        .filter(|resource| admits(&resource.scopes, app_id))
        .flat_map(|resource| resource.inbound_retries)
        .collect();
    let components = resources::warn_and_keep_components(report)
        .into_iter()
        .filter(|resource| {
            let in_scope = admits(&resource.scopes, app_id);
            if !in_scope {
                tracing::info!(component = %resource.name, "skipped: app id not in its scopes");
            }
            in_scope
        })
        .collect();
    Scanned {
        components,
        delivery: DeclaredDelivery {
            subscriptions,
            inbound_retries,
        },
        broken_files,
    }
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
        let strict = source.read_all().expect("subscriptions");
        assert_eq!(
            topics(strict.delivery.subscriptions),
            vec!["everyone", "mine"]
        );

        // A broken file fails the strict read; the lenient one keeps the rest.
        std::fs::write(
            dir.path().join("broken.yaml"),
            subscription("broken", "").replace("  route: /broken\n", ""),
        )
        .expect("write");
        let errors = source.read_all().expect_err("broken file");
        assert!(
            errors.to_string().contains("spec.route: missing"),
            "{errors}"
        );
        let lenient = source.scan().expect("scan");
        assert_eq!(
            topics(lenient.delivery.subscriptions),
            vec!["everyone", "mine"]
        );
        assert_eq!(lenient.broken_files.len(), 1);

        let embedded = ResourceSource::Embedded(Vec::new())
            .read_all()
            .expect("embedded");
        assert_eq!(embedded.delivery, DeclaredDelivery::default());
    }
}
