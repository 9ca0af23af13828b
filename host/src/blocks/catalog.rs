//! The components this sidecar serves, by name, swappable as a whole.
//!
//! The API layer looks components up here on every request; loading and
//! hot reload publish a new [`CatalogSnapshot`] atomically, so a request sees
//! either the old set or the new one, never a mix.

use super::pubsub::Broker;
use super::state::{Feature, StateStore};
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether a component is serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadStatus {
    /// Loaded and initialised.
    Loaded,
    /// The last load failed; the message says why (file and field where known).
    Failed(String),
    /// An earlier version serves, because loading the newest one (after a
    /// hot reload) failed; the message says why. The serving version's
    /// sha256 is still the one reported.
    Stale(String),
}

/// What `/v1.0/metadata` reports about a component.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    /// `metadata.name` in the YAML.
    pub name: String,
    /// `spec.type`, e.g. `state.redis`.
    pub component_type: String,
    /// `spec.version`, e.g. `v1`.
    pub version: String,
    /// Features the component declared.
    pub features: Vec<Feature>,
    /// Load status.
    pub status: LoadStatus,
    /// sha256 of the `.wasm` that serves it.
    pub sha256: Option<String>,
    /// Where it came from: a YAML file, or `embedded default`.
    pub source: String,
    /// What its instances may touch, one grant per entry (`tcp://…`,
    /// `http://…`, `dir …`, `env …`, `memory …`, `timeout …`,
    /// `instances …`), so the log and the metadata show what a component
    /// was allowed; empty until it loaded.
    pub grants: Vec<String>,
}

/// A component and its building-block implementation.
#[derive(Clone)]
pub struct CatalogEntry {
    /// What is reported about it.
    pub info: ComponentInfo,
    /// Set when the component is a loaded state store.
    pub state: Option<Arc<dyn StateStore>>,
    /// Set when the component is a loaded pub/sub broker.
    pub pubsub: Option<Arc<dyn Broker>>,
}

impl CatalogEntry {
    /// An entry that serves nothing (its load failed).
    pub fn failed(info: ComponentInfo) -> Self {
        CatalogEntry {
            info,
            state: None,
            pubsub: None,
        }
    }

    /// Whether the entry serves a building block.
    pub fn serves(&self) -> bool {
        self.state.is_some() || self.pubsub.is_some()
    }
}

/// One consistent set of components.
#[derive(Clone, Default)]
pub struct CatalogSnapshot {
    /// Components by name.
    pub entries: BTreeMap<String, CatalogEntry>,
}

/// The current set of components, read lock-free on the request path.
#[derive(Default)]
pub struct Catalog {
    current: ArcSwap<CatalogSnapshot>,
}

impl Catalog {
    /// A catalog serving `snapshot`.
    pub fn new(snapshot: CatalogSnapshot) -> Self {
        Catalog {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The loaded state store called `name`.
    pub fn state_store(&self, name: &str) -> Option<Arc<dyn StateStore>> {
        self.current.load().entries.get(name)?.state.clone()
    }

    /// The loaded pub/sub broker called `name`.
    pub fn broker(&self, name: &str) -> Option<Arc<dyn Broker>> {
        self.current.load().entries.get(name)?.pubsub.clone()
    }

    /// Whether any state store is loaded at all (Dapr distinguishes "not
    /// configured" from "not found").
    pub fn has_state_stores(&self) -> bool {
        self.current
            .load()
            .entries
            .values()
            .any(|e| e.state.is_some())
    }

    /// Everything reported about every component, sorted by name.
    pub fn infos(&self) -> Vec<ComponentInfo> {
        self.current
            .load()
            .entries
            .values()
            .map(|e| e.info.clone())
            .collect()
    }

    /// Publishes a new set of components; calls already holding a store finish on it.
    pub fn publish(&self, snapshot: CatalogSnapshot) {
        self.current.store(Arc::new(snapshot));
    }
}
