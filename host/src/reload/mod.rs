//! Hot reload: the components change while the sidecar serves, without a
//! failed request.
//!
//! A [`Reloader`] owns what was loaded from which resource. On every reload
//! (at start, on `POST /v1.0/outrig/reload`, on `SIGHUP`, or when the
//! [`watch`]er sees the resources change) it reads the resources again,
//! [`diff`]s them against what serves, and:
//! - loads what is new or changed (compile or cache, instantiate, `init`)
//!   off the request path, all at once;
//! - keeps what did not change as it is: the same instances, no re-`init`;
//! - publishes the result in one catalog snapshot, atomically. Calls in
//!   flight finish on the version they started on; its pool drops with the
//!   last of them.
//!
//! A new version that fails any step (a YAML error, an unreadable or
//! invalid `.wasm`, a sha256 mismatch, a refused `init`) leaves the old one
//! serving; the component reports `stale` with the error in
//! `/v1.0/metadata`, and the reload's [`ReloadReport`] and the log say why.
//! Components whose files must never be open twice are swapped by
//! [`exclusive`]'s "retire, then load", with a short pause and a second
//! snapshot. Reloads run one at a time.
//!
//! Once the components are published, the declared `Subscription`s and
//! retry policies are published too, for delivery to follow; a reload that
//! met a broken resource file keeps the declared ones as they were, since
//! the broken file may have declared some.

pub mod diff;
pub mod exclusive;
mod outcome;
pub mod report;
pub mod source;
pub mod watch;

#[cfg(test)]
mod tests;

pub use report::{ReloadCause, ReloadFailure, ReloadReport, ReloadTrigger};
pub use source::{ResourceSource, Scanned};

use crate::blocks::Catalog;
use crate::blocks::catalog::{CatalogEntry, CatalogSnapshot};
use crate::blocks::pubsub::delivery::{DeclaredDelivery, DeclaredFeed};
use crate::blocks::state::StateStore;
use crate::components::{ComponentHost, LoadContext};
use crate::config::resources::ComponentResource;
use diff::{Change, Current, Desired};
use exclusive::{DRAIN_LIMIT, Resume};
use outcome::{
    Load, Outcome, Phases, Record, settle, settle_exclusive, sort_changes, status_message,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Instant;
use tokio::sync::Mutex;

/// Loads components and swaps them in place while the sidecar serves.
pub struct Reloader {
    host: ComponentHost,
    base: LoadContext,
    source: ResourceSource,
    catalog: Arc<Catalog>,
    records: Mutex<BTreeMap<String, Record>>,
    declared: DeclaredFeed,
}

/// What the resources describe now.
struct Wanted {
    /// The components listed, with the sha256 of their `.wasm` files.
    desired: Vec<Desired>,
    /// The subscriptions and retry policies declared.
    delivery: DeclaredDelivery,
    /// Each resource file that did not parse, with its errors.
    broken_files: BTreeMap<PathBuf, String>,
}

impl Reloader {
    /// A reloader publishing into `catalog` what `source` describes, loaded
    /// by `host`; `base` is the load context shared by every component.
    pub fn new(
        host: ComponentHost,
        base: LoadContext,
        source: ResourceSource,
        catalog: Arc<Catalog>,
    ) -> Self {
        Reloader {
            host,
            base,
            source,
            catalog,
            records: Mutex::new(BTreeMap::new()),
            declared: DeclaredFeed::new(DeclaredDelivery::default()),
        }
    }

    /// The declared subscriptions and retry policies, now and after every
    /// reload, for delivery to follow.
    pub fn follow_declared(&self) -> tokio::sync::watch::Receiver<Arc<DeclaredDelivery>> {
        self.declared.follow()
    }

    /// Where the components are described.
    pub fn source(&self) -> &ResourceSource {
        &self.source
    }

    /// The first load, of resources read (strictly) at start.
    pub async fn load_initial(&self, resources: Scanned) -> ReloadReport {
        self.apply(ReloadCause::Start, hash_wasm_files(resources))
            .await
    }

    /// The `.wasm` files the listed components load, to watch for changes.
    pub async fn wasm_files(&self) -> Vec<PathBuf> {
        let records = self.records.lock().await;
        records
            .values()
            .filter_map(|record| record.resource.wasm.as_ref())
            .map(|wasm| wasm.path.clone())
            .collect()
    }

    /// Reads the resources leniently (off the async threads: it reads files).
    async fn read(&self) -> Result<Wanted, String> {
        let source = self.source.clone();
        let scanned = match tokio::task::spawn_blocking(move || source.scan()).await {
            Ok(Ok(scanned)) => scanned,
            Ok(Err(errors)) => return Err(errors.to_string()),
            Err(err) => return Err(format!("reading the resources failed: {err}")),
        };
        hash_wasm_files(scanned).await
    }

    /// Reads what is `wanted`, diffs, loads and publishes, all under the
    /// lock: reloads run one at a time, and each reads the files only once
    /// the one before has applied what it read.
    async fn apply(
        &self,
        cause: ReloadCause,
        wanted: impl Future<Output = Result<Wanted, String>>,
    ) -> ReloadReport {
        let mut records = self.records.lock().await;
        let started = Instant::now();
        let mut report = ReloadReport::default();
        let wanted = match wanted.await {
            Ok(wanted) => wanted,
            Err(error) => {
                tracing::error!(?cause, "reload refused, nothing changed: {error}");
                report.failed.push(ReloadFailure {
                    name: None,
                    error,
                    still_serving: true,
                });
                report.unchanged = records.keys().cloned().collect();
                return finish(report, started, cause);
            }
        };
        for (file, error) in &wanted.broken_files {
            if !records.values().any(|r| r.resource.source == *file) {
                report.failed.push(ReloadFailure {
                    name: None,
                    error: error.clone(),
                    still_serving: false,
                });
            }
        }
        let changes = plan(&records, &wanted);
        let old_records = std::mem::take(&mut *records);
        let phases = sort_changes(
            &mut records,
            &mut report,
            old_records,
            changes,
            wanted.desired,
        );

        let loaded =
            futures::future::join_all(phases.now.iter().map(|l| self.load(&l.resource))).await;
        for (load, entry) in phases.now.into_iter().zip(loaded) {
            settle(&mut records, &mut report, load, entry);
        }
        self.publish(&records);

        if !phases.later.is_empty() {
            let Phases {
                later,
                retiring,
                resumes,
                ..
            } = phases;
            self.retire_then_load(&mut records, &mut report, later, retiring, resumes)
                .await;
            self.publish(&records);
        }
        if wanted.broken_files.is_empty() {
            report.delivery_changed = self.declared.publish(wanted.delivery);
        }
        finish(report, started, cause)
    }

    /// Phase two, for exclusive components: waits until every retired
    /// version has drained, then starts the new versions, reopening an old
    /// one whose new version fails.
    async fn retire_then_load(
        &self,
        records: &mut BTreeMap<String, Record>,
        report: &mut ReloadReport,
        later: Vec<Load>,
        retiring: Vec<Weak<dyn StateStore>>,
        mut resumes: HashMap<String, Resume>,
    ) {
        let drains = retiring
            .into_iter()
            .map(|old| exclusive::drained(old, DRAIN_LIMIT));
        let all_drained = futures::future::join_all(drains)
            .await
            .into_iter()
            .all(|drained| drained);
        let loads = later.into_iter().map(|load| async move {
            if !all_drained {
                return (load, Outcome::NotDrained);
            }
            let entry = self.load(&load.resource).await;
            let retired = load
                .old
                .as_ref()
                .filter(|old| old.entry.state.is_none() && old.served());
            match retired {
                Some(old) if entry.state.is_none() => {
                    let reopened = self.load(&old.resource).await;
                    (
                        load,
                        Outcome::Reopened {
                            entry: Box::new(entry),
                            reopened: Box::new(reopened),
                        },
                    )
                }
                _ => (load, Outcome::Loaded(Box::new(entry))),
            }
        });
        for (load, outcome) in futures::future::join_all(loads).await {
            let name = load.name.clone();
            settle_exclusive(records, report, load, outcome);
            if let Some(resume) = resumes.remove(&name) {
                let record = records.get(&name);
                let serving = record.and_then(|r| r.entry.state.clone());
                resume.serve(serving.ok_or_else(|| status_message(record.map(|r| &r.entry))));
            }
        }
    }

    async fn load(&self, resource: &ComponentResource) -> CatalogEntry {
        let mut ctx = self.base.clone();
        if let Some(dir) = resource.source.parent() {
            ctx.base_dir = dir.to_path_buf();
        }
        self.host.load(resource, &ctx).await
    }

    fn publish(&self, records: &BTreeMap<String, Record>) {
        let entries = records
            .iter()
            .map(|(name, record)| (name.clone(), record.entry.clone()))
            .collect();
        self.catalog.publish(CatalogSnapshot { entries });
    }
}

#[async_trait::async_trait]
impl ReloadTrigger for Reloader {
    async fn reload(&self, cause: ReloadCause) -> ReloadReport {
        self.apply(cause, self.read()).await
    }
}

/// The change for every component, from the records and what is wanted.
fn plan(records: &BTreeMap<String, Record>, wanted: &Wanted) -> BTreeMap<String, Change> {
    let current: BTreeMap<String, Current<'_>> = records
        .iter()
        .map(|(name, record)| {
            let now = Current {
                resource: &record.resource,
                sha256: record.entry.info.sha256.as_deref(),
                serving: record.serving(),
            };
            (name.clone(), now)
        })
        .collect();
    diff::plan(&current, &wanted.desired, &wanted.broken_files)
}

/// What `scanned` describes, with the sha256 of the `.wasm` files as they
/// are now (read off the async threads).
async fn hash_wasm_files(scanned: Scanned) -> Result<Wanted, String> {
    let Scanned {
        components,
        delivery,
        broken_files,
    } = scanned;
    match tokio::task::spawn_blocking(move || source::desired(components)).await {
        Ok(desired) => Ok(Wanted {
            desired,
            delivery,
            broken_files,
        }),
        Err(err) => Err(format!("hashing the .wasm files failed: {err}")),
    }
}

fn finish(mut report: ReloadReport, started: Instant, cause: ReloadCause) -> ReloadReport {
    report.elapsed_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    tracing::info!(
        ?cause,
        added = ?report.added,
        updated = ?report.updated,
        removed = ?report.removed,
        unchanged = report.unchanged.len(),
        failed = ?report.failed,
        elapsed_ms = report.elapsed_ms,
        "components reloaded"
    );
    crate::telemetry::metrics()
        .reload()
        .finished(cause == ReloadCause::Start, &report);
    report
}
