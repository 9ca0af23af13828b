//! "Retire, then load" for components whose files two live versions must
//! never open at once.
//!
//! redb cannot lock its file under WASI, so two live instances of
//! `state.redb` on one directory could corrupt it. A reload of such a
//! component therefore never starts the new version beside the old one:
//! - it publishes a [`PausedStateStore`] in the old version's place, so new
//!   calls wait instead of reaching the old version or failing;
//! - it waits until the old version has [`drained`]: the last call on it
//!   has ended and its instances (and their open files) are dropped;
//! - only then does it start the new version, and [`Resume`] hands the
//!   waiting calls to it (or to the old version, reopened, if the new one
//!   fails to start).
//!
//! The component pauses for the drain plus the new version's start, the
//! price of never having two writers. While its newest version keeps
//! failing, every reload tries it again, and so pauses it again. Limit: a call abandoned mid-way (its
//! client went away, or its deadline fired) during a blocking file operation
//! may leave that one operation finishing on a host thread after the drain;
//! redb's own commit protocol is what protects the file in that window.

use crate::blocks::ComponentError;
use crate::blocks::state::{
    BulkItem, DeleteRequest, Feature, GetRequest, Item, Metadata, Operation, QueryRequest,
    QueryResponse, SetRequest, StateStore,
};
use crate::components::builtin;
use crate::config::resources::ComponentResource;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The longest a call waits on a paused component: beyond the old
/// version's call deadline (the drain) plus a cold compile (the start).
const PAUSE_LIMIT: Duration = Duration::from_secs(120);
/// The longest a reload waits for a retired version's calls to end: beyond
/// any call deadline a component is granted in practice.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// How often [`drained`] looks whether the old version is gone.
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// Whether `resource` is a built-in whose files must never be open in two
/// versions at once.
pub fn opens_files_exclusively(resource: &ComponentResource) -> bool {
    resource.wasm.is_none()
        && builtin::lookup(&resource.component_type).is_some_and(|b| b.exclusive_files)
}

/// What a paused component resolves to: the store now serving it, or why
/// none does.
type Resolution = Result<Arc<dyn StateStore>, String>;

/// Stands in for a component between retiring its old version and starting
/// its new one; every call waits, then runs on whatever took its place.
pub struct PausedStateStore {
    name: String,
    features: Vec<Feature>,
    resolved: watch::Receiver<Option<Resolution>>,
}

/// Ends a pause; dropped without [`Resume::serve`], the waiting calls fail
/// as unavailable.
pub struct Resume(watch::Sender<Option<Resolution>>);

/// A paused stand-in for component `name` (reporting the old version's
/// `features` meanwhile) and the handle that ends the pause.
pub fn pause(name: &str, features: Vec<Feature>) -> (Arc<PausedStateStore>, Resume) {
    let (sender, resolved) = watch::channel(None);
    let paused = PausedStateStore {
        name: name.to_owned(),
        features,
        resolved,
    };
    (Arc::new(paused), Resume(sender))
}

impl Resume {
    /// Hands the waiting (and later) calls to `store`, or fails them with
    /// the message when no version could be started.
    pub fn serve(self, resolution: Result<Arc<dyn StateStore>, String>) {
        self.0.send_replace(Some(resolution));
    }
}

/// Waits until nothing holds `old` any more (every call on it ended and its
/// pool, with its instances, dropped), or `limit` passes. Returns whether it
/// drained.
pub async fn drained(old: Weak<dyn StateStore>, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while old.strong_count() > 0 {
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    true
}

impl PausedStateStore {
    /// The store that took this one's place, once there is one.
    async fn resumed(&self) -> Result<Arc<dyn StateStore>, ComponentError> {
        let unavailable =
            |why: &str| ComponentError::Unavailable(format!("component `{}` {why}", self.name));
        let mut resolved = self.resolved.clone();
        let waited = tokio::time::timeout(PAUSE_LIMIT, resolved.wait_for(Option::is_some)).await;
        let resolution = match waited {
            Ok(Ok(resolution)) => resolution.clone(),
            Ok(Err(_)) => return Err(unavailable("was being reloaded and the reload stopped")),
            Err(_) => return Err(unavailable("is still being reloaded")),
        };
        match resolution {
            Some(Ok(store)) => Ok(store),
            Some(Err(message)) => Err(unavailable(&format!("could not be reloaded: {message}"))),
            None => Err(unavailable("is still being reloaded")),
        }
    }
}

#[async_trait::async_trait]
impl StateStore for PausedStateStore {
    fn features(&self) -> Vec<Feature> {
        self.features.clone()
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>, ComponentError> {
        self.resumed().await?.get(request).await
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>, ComponentError> {
        self.resumed().await?.bulk_get(requests).await
    }

    async fn set(&self, request: SetRequest) -> Result<(), ComponentError> {
        self.resumed().await?.set(request).await
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<(), ComponentError> {
        self.resumed().await?.bulk_set(requests).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<(), ComponentError> {
        self.resumed().await?.delete(request).await
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<(), ComponentError> {
        self.resumed().await?.bulk_delete(requests).await
    }

    async fn transact(
        &self,
        operations: Vec<Operation>,
        metadata: Metadata,
    ) -> Result<(), ComponentError> {
        self.resumed().await?.transact(operations, metadata).await
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponse, ComponentError> {
        self.resumed().await?.query(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::FakeStore;

    fn get(key: &str) -> GetRequest {
        GetRequest {
            key: key.into(),
            ..GetRequest::default()
        }
    }

    #[tokio::test]
    async fn waiting_calls_run_on_the_store_that_resumes_them() {
        let (paused, resume) = pause("s", Vec::new());
        let waiting = tokio::spawn({
            let paused = Arc::clone(&paused);
            async move { paused.get(get("k")).await }
        });
        let store: Arc<dyn StateStore> = FakeStore::new(&[]);
        store
            .set(SetRequest {
                key: "k".into(),
                value: b"1".to_vec(),
                ..SetRequest::default()
            })
            .await
            .expect("set");
        resume.serve(Ok(store));
        let item = waiting.await.expect("task").expect("get");
        assert_eq!(item.map(|i| i.value), Some(b"1".to_vec()));
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_pause_fails_calls_as_unavailable() {
        let (paused, resume) = pause("s", Vec::new());
        resume.serve(Err("bad wasm".into()));
        let err = paused.get(get("k")).await.expect_err("failed");
        assert!(
            matches!(&err, ComponentError::Unavailable(m) if m.contains("bad wasm")),
            "{err:?}"
        );
        let (paused, resume) = pause("s", Vec::new());
        drop(resume);
        let err = paused.get(get("k")).await.expect_err("abandoned");
        assert!(matches!(err, ComponentError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn draining_waits_for_the_last_holder() {
        let store: Arc<dyn StateStore> = FakeStore::new(&[]);
        let in_flight = Arc::clone(&store);
        let weak = Arc::downgrade(&store);
        drop(store);
        assert!(!drained(weak.clone(), Duration::from_millis(20)).await);
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(in_flight);
        });
        assert!(drained(weak, Duration::from_secs(30)).await);
        release.await.expect("task");
    }
}
