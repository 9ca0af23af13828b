//! How each component's change lands: the changes that need no load are
//! applied at once, the loads are sorted into phases (exclusive components
//! after the versions they replace have drained), and each load's outcome
//! is settled into the records: the new version, or the old one kept as
//! stale, or the failure.

use super::diff::{Change, Desired};
use super::exclusive::{self, Resume, opens_files_exclusively};
use super::{ReloadFailure, ReloadReport};
use crate::blocks::catalog::{CatalogEntry, ComponentInfo, LoadStatus};
use crate::blocks::state::StateStore;
use crate::config::resources::ComponentResource;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

/// One component as loaded: the resource it came from, and its catalog entry.
#[derive(Clone)]
pub(super) struct Record {
    /// The resource of the serving version, or of the last attempt when
    /// nothing serves.
    pub(super) resource: ComponentResource,
    /// What the catalog shows; `state` is set while a version serves.
    pub(super) entry: CatalogEntry,
}

/// A component to load in this reload.
pub(super) struct Load {
    pub(super) name: String,
    pub(super) change: Change,
    pub(super) resource: ComponentResource,
    /// What served or failed before, if anything.
    pub(super) old: Option<Record>,
}

/// The loads of one reload, in the order they may run.
#[derive(Default)]
pub(super) struct Phases {
    /// Loaded at once, beside what serves.
    pub(super) now: Vec<Load>,
    /// Exclusive components, loaded once every retired version drained.
    pub(super) later: Vec<Load>,
    /// Exclusive versions retired in this reload, to wait for.
    pub(super) retiring: Vec<Weak<dyn StateStore>>,
    /// The stand-ins of paused components, by name.
    pub(super) resumes: HashMap<String, Resume>,
}

impl Record {
    /// Whether a version serves.
    pub(super) fn serving(&self) -> bool {
        self.entry.serves()
    }

    /// Whether a version served when the reload began (a retired exclusive
    /// version has lost its state, not its status).
    pub(super) fn served(&self) -> bool {
        !matches!(self.entry.info.status, LoadStatus::Failed(_))
    }
}

/// Applies the changes that need no load to `records` (keep, keep broken,
/// remove) and sorts the loads into phases. An exclusive component waits
/// for phase two when an exclusive version is retired in this reload; its
/// own old version then gives way to a paused stand-in.
pub(super) fn sort_changes(
    records: &mut BTreeMap<String, Record>,
    report: &mut ReloadReport,
    mut old_records: BTreeMap<String, Record>,
    changes: BTreeMap<String, Change>,
    desired: Vec<Desired>,
) -> Phases {
    let retires_exclusive = changes.iter().any(|(name, change)| {
        matches!(change, Change::Update | Change::Remove)
            && old_records
                .get(name)
                .is_some_and(|r| r.serving() && opens_files_exclusively(&r.resource))
    });
    let mut desired: HashMap<String, ComponentResource> = desired
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
pub(super) enum Outcome {
    /// The new version's entry (serving or failed).
    Loaded(Box<CatalogEntry>),
    /// The new version failed and the retired old one was started again.
    Reopened {
        entry: Box<CatalogEntry>,
        reopened: Box<CatalogEntry>,
    },
    /// A retired version never drained, so nothing was started.
    NotDrained,
}

/// Records the outcome of loading `load`: the new version if it serves,
/// else the old one marked stale, else the failure.
pub(super) fn settle(
    records: &mut BTreeMap<String, Record>,
    report: &mut ReloadReport,
    load: Load,
    entry: CatalogEntry,
) {
    let name = load.name.clone();
    if entry.serves() {
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
pub(super) fn settle_exclusive(
    records: &mut BTreeMap<String, Record>,
    report: &mut ReloadReport,
    mut load: Load,
    outcome: Outcome,
) {
    let message = match outcome {
        Outcome::Loaded(entry) => return settle(records, report, load, *entry),
        Outcome::Reopened { entry, reopened } if reopened.state.is_some() => {
            if let Some(old) = &mut load.old {
                old.entry.state = reopened.state;
            }
            return settle(records, report, load, *entry);
        }
        Outcome::Reopened { entry, reopened } => format!(
            "{}; the previous version could not be started again: {}",
            status_message(Some(&entry)),
            status_message(Some(&reopened))
        ),
        Outcome::NotDrained => format!(
            "component `{}`: the old version still had calls running after {:?}; not started again, to keep its files safe",
            load.name,
            exclusive::DRAIN_LIMIT
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
            grants: Vec::new(),
        },
    };
    let entry = CatalogEntry::failed(ComponentInfo {
        status: LoadStatus::Failed(message.clone()),
        ..info
    });
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
pub(super) fn status_message(entry: Option<&CatalogEntry>) -> String {
    match entry.map(|e| &e.info.status) {
        Some(LoadStatus::Failed(message) | LoadStatus::Stale(message)) => message.clone(),
        _ => String::new(),
    }
}
