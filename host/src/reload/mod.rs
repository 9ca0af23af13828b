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

pub mod diff;
pub mod exclusive;
pub mod report;
pub mod source;
pub mod watch;

#[cfg(test)]
mod tests;

pub use report::{ReloadCause, ReloadFailure, ReloadReport, ReloadTrigger};
pub use source::ResourceSource;

use crate::blocks::Catalog;
use crate::blocks::catalog::{CatalogEntry, CatalogSnapshot, ComponentInfo, LoadStatus};
use crate::blocks::state::StateStore;
use crate::components::{ComponentHost, LoadContext};
use crate::config::resources::ComponentResource;
use diff::{Change, Current, Desired};
use exclusive::{Resume, opens_files_exclusively};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The longest a reload waits for a retired version's calls to end: beyond
/// any call deadline a component is granted in practice.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Loads components and swaps them in place while the sidecar serves.
pub struct Reloader {
    host: ComponentHost,
    base: LoadContext,
    source: ResourceSource,
    catalog: Arc<Catalog>,
    records: Mutex<BTreeMap<String, Record>>,
}

/// One component as loaded: the resource it came from, and its catalog entry.
#[derive(Clone)]
struct Record {
    /// The resource of the serving version, or of the last attempt when
    /// nothing serves.
    resource: ComponentResource,
    /// What the catalog shows; `state` is set while a version serves.
    entry: CatalogEntry,
}

/// What the resources describe now.
struct Wanted {
    /// The components listed, with the sha256 of their `.wasm` files.
    desired: Vec<Desired>,
    /// Each resource file that did not parse, with its errors.
    broken_files: BTreeMap<PathBuf, String>,
}

/// A component to load in this reload.
struct Load {
    name: String,
    change: Change,
    resource: ComponentResource,
    /// What served or failed before, if anything.
    old: Option<Record>,
}

/// The loads of one reload, in the order they may run.
#[derive(Default)]
struct Phases {
    /// Loaded at once, beside what serves.
    now: Vec<Load>,
    /// Exclusive components, loaded once every retired version drained.
    later: Vec<Load>,
    /// Exclusive versions retired in this reload, to wait for.
    retiring: Vec<Weak<dyn StateStore>>,
    /// The stand-ins of paused components, by name.
    resumes: HashMap<String, Resume>,
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
        }
    }

    /// Where the components are described.
    pub fn source(&self) -> &ResourceSource {
        &self.source
    }

    /// The first load, of resources read (strictly) at start.
    pub async fn load_initial(&self, resources: Vec<ComponentResource>) -> ReloadReport {
        let wanted = hash_wasm_files(resources, BTreeMap::new());
        self.apply(ReloadCause::Start, wanted).await
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
        hash_wasm_files(scanned.components, scanned.broken_files).await
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
        let phases = sort_changes(&mut records, &mut report, old_records, changes, wanted);

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
                    (load, Outcome::Reopened { entry, reopened })
                }
                _ => (load, Outcome::Loaded(entry)),
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

impl Record {
    /// Whether a version serves.
    fn serving(&self) -> bool {
        self.entry.state.is_some()
    }

    /// Whether a version served when the reload began (a retired exclusive
    /// version has lost its state, not its status).
    fn served(&self) -> bool {
        !matches!(self.entry.info.status, LoadStatus::Failed(_))
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

/// Applies the changes that need no load to `records` (keep, keep broken,
/// remove) and sorts the loads into phases. An exclusive component waits
/// for phase two when an exclusive version is retired in this reload; its
/// own old version then gives way to a paused stand-in.
fn sort_changes(
    records: &mut BTreeMap<String, Record>,
    report: &mut ReloadReport,
    mut old_records: BTreeMap<String, Record>,
    changes: BTreeMap<String, Change>,
    wanted: Wanted,
) -> Phases {
    let retires_exclusive = changes.iter().any(|(name, change)| {
        matches!(change, Change::Update | Change::Remove)
            && old_records
                .get(name)
                .is_some_and(|r| r.serving() && opens_files_exclusively(&r.resource))
    });
    let mut desired: HashMap<String, ComponentResource> = wanted
        .desired
        .into_iter()
        .map(|d| (d.resource.name.clone(), d.resource))
        .collect();
    let mut phases = Phases::default();
    for (name, change) in changes {
        let old = old_records.remove(&name);
        let resource = desired.remove(&name);
        match (change, old, resource) {
            (Change::Keep, Some(mut record), _) => {
                if matches!(record.entry.info.status, LoadStatus::Stale(_)) {
                    record.entry.info.status = LoadStatus::Loaded;
                }
                report.unchanged.push(name.clone());
                records.insert(name, record);
            }
            (Change::KeepBroken(error), Some(mut record), _) => {
                let still_serving = record.serving();
                record.entry.info.status = if still_serving {
                    LoadStatus::Stale(error.clone())
                } else {
                    LoadStatus::Failed(error.clone())
                };
                report.failed.push(ReloadFailure {
                    name: Some(name.clone()),
                    error,
                    still_serving,
                });
                records.insert(name, record);
            }
            (Change::Remove, Some(record), _) => {
                if let Some(state) = record.entry.state
                    && opens_files_exclusively(&record.resource)
                {
                    phases.retiring.push(Arc::downgrade(&state));
                }
                report.removed.push(name);
            }
            (change, old, Some(resource)) => {
                let exclusive = opens_files_exclusively(&resource)
                    || old
                        .as_ref()
                        .is_some_and(|r| opens_files_exclusively(&r.resource));
                let mut load = Load {
                    name,
                    change,
                    resource,
                    old,
                };
                if retires_exclusive && exclusive {
                    stand_in(records, &mut phases, &mut load);
                    phases.later.push(load);
                } else {
                    phases.now.push(load);
                }
            }
            // Not reachable from a plan: keep whatever there was.
            (_, old, _) => {
                if let Some(old) = old {
                    records.insert(name, old);
                }
            }
        }
    }
    phases
}

/// Until `load` runs in phase two, its old version keeps its place; an
/// exclusive one is retired and a paused stand-in takes its calls.
fn stand_in(records: &mut BTreeMap<String, Record>, phases: &mut Phases, load: &mut Load) {
    let Some(old) = &mut load.old else {
        return;
    };
    let exclusive = opens_files_exclusively(&old.resource);
    let mut placeholder = old.clone();
    if let Some(state) = old.entry.state.take_if(|_| exclusive) {
        let (paused, resume) = exclusive::pause(&load.name, state.features());
        phases.retiring.push(Arc::downgrade(&state));
        phases.resumes.insert(load.name.clone(), resume);
        placeholder.entry.state = Some(paused);
    }
    records.insert(load.name.clone(), placeholder);
}

/// How a phase-two load ended.
enum Outcome {
    /// The new version's entry (serving or failed).
    Loaded(CatalogEntry),
    /// The new version failed and the retired old one was started again.
    Reopened {
        entry: CatalogEntry,
        reopened: CatalogEntry,
    },
    /// A retired version never drained, so nothing was started.
    NotDrained,
}

/// Records the outcome of loading `load`: the new version if it serves,
/// else the old one marked stale, else the failure.
fn settle(
    records: &mut BTreeMap<String, Record>,
    report: &mut ReloadReport,
    load: Load,
    entry: CatalogEntry,
) {
    let name = load.name.clone();
    if entry.state.is_some() {
        match load.change {
            Change::Add => report.added.push(name.clone()),
            _ => report.updated.push(name.clone()),
        }
        let record = Record {
            resource: load.resource,
            entry,
        };
        records.insert(name, record);
        return;
    }
    let error = status_message(Some(&entry));
    match load.old.filter(Record::serving) {
        Some(mut old) => {
            old.entry.info.status = LoadStatus::Stale(error.clone());
            report.failed.push(ReloadFailure {
                name: Some(name.clone()),
                error,
                still_serving: true,
            });
            records.insert(name, old);
        }
        None => {
            let record = Record {
                resource: load.resource,
                entry,
            };
            report.failed.push(ReloadFailure {
                name: Some(name.clone()),
                error,
                still_serving: false,
            });
            records.insert(name, record);
        }
    }
}

/// [`settle`] for a phase-two load.
fn settle_exclusive(
    records: &mut BTreeMap<String, Record>,
    report: &mut ReloadReport,
    mut load: Load,
    outcome: Outcome,
) {
    let message = match outcome {
        Outcome::Loaded(entry) => return settle(records, report, load, entry),
        Outcome::Reopened { entry, reopened } if reopened.state.is_some() => {
            if let Some(old) = &mut load.old {
                old.entry.state = reopened.state;
            }
            return settle(records, report, load, entry);
        }
        Outcome::Reopened { entry, reopened } => format!(
            "{}; the previous version could not be started again: {}",
            status_message(Some(&entry)),
            status_message(Some(&reopened))
        ),
        Outcome::NotDrained => format!(
            "component `{}`: the old version still had calls running after {DRAIN_LIMIT:?}; not started again, to keep its files safe",
            load.name
        ),
    };
    let info = match &load.old {
        Some(old) => old.entry.info.clone(),
        None => ComponentInfo {
            name: load.name.clone(),
            component_type: load.resource.component_type.clone(),
            version: load.resource.version.clone(),
            features: Vec::new(),
            status: LoadStatus::Loaded,
            sha256: None,
            source: load.resource.source.display().to_string(),
        },
    };
    let entry = CatalogEntry {
        info: ComponentInfo {
            status: LoadStatus::Failed(message.clone()),
            ..info
        },
        state: None,
    };
    report.failed.push(ReloadFailure {
        name: Some(load.name.clone()),
        error: message,
        still_serving: false,
    });
    records.insert(
        load.name,
        Record {
            resource: load.resource,
            entry,
        },
    );
}

/// The error an entry's status carries (empty when it has none).
fn status_message(entry: Option<&CatalogEntry>) -> String {
    match entry.map(|e| &e.info.status) {
        Some(LoadStatus::Failed(message) | LoadStatus::Stale(message)) => message.clone(),
        _ => String::new(),
    }
}

/// `components` with the sha256 of their `.wasm` files as they are now
/// (read off the async threads).
async fn hash_wasm_files(
    components: Vec<ComponentResource>,
    broken_files: BTreeMap<PathBuf, String>,
) -> Result<Wanted, String> {
    match tokio::task::spawn_blocking(move || source::desired(components)).await {
        Ok(desired) => Ok(Wanted {
            desired,
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
    report
}
