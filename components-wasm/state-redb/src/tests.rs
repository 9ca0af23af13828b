//! The store against a real redb file in a temporary directory.

use super::*;
use outrig_sdk::state_rules::ManualTime;
use outrig_sdk::state_rules::conformance::{self, read, set};
use redb::ReadableTableMetadata;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory of its own under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("outrig-redb-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn config(&self) -> Config {
        let metadata: Metadata = vec![("dir".to_string(), self.0.display().to_string())].into();
        Config::from_metadata(&metadata).expect("valid config")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn behaves_like_a_dapr_state_store() {
    let mut dirs = Vec::new();
    conformance::run(|clock| {
        let dir = TempDir::new();
        let store = Redb::open(&dir.config(), clock).expect("open");
        dirs.push(dir);
        store
    });
}

#[test]
fn data_and_versions_survive_reopening() {
    let dir = TempDir::new();
    let time = ManualTime::new(1_000_000);
    let etag = {
        let mut store = Redb::open(&dir.config(), Clock::manual(&time)).expect("open");
        store.set(set("app||kept", b"v1")).expect("set");
        store
            .set(SetRequest {
                ttl_seconds: Some(60),
                ..set("app||ttl", b"t")
            })
            .expect("set");
        store.set(set("app||gone", b"x")).expect("set");
        store
            .delete(conformance::delete("app||gone"))
            .expect("delete");
        read(&mut store, "app||kept").expect("kept").1
    };
    let mut store = Redb::open(&dir.config(), Clock::manual(&time)).expect("reopen");
    assert_eq!(
        read(&mut store, "app||kept"),
        Some((b"v1".to_vec(), etag.clone()))
    );
    assert_eq!(read(&mut store, "app||gone"), None);
    let ttl = store
        .get(conformance::get("app||ttl"))
        .expect("get")
        .expect("ttl item");
    assert_eq!(ttl.expires_at_unix, Some(1_060));

    store.set(set("app||new", b"n")).expect("set after reopen");
    let (_, new_etag) = read(&mut store, "app||new").expect("new");
    let (old, new) = (etag.parse::<u64>().ok(), new_etag.parse::<u64>().ok());
    assert!(
        new > old,
        "versions restarted after reopening: {old:?} then {new:?}"
    );
}

#[test]
fn expired_records_are_purged_from_the_file() {
    let dir = TempDir::new();
    let time = ManualTime::new(0);
    let mut store = Redb::open(&dir.config(), Clock::manual(&time)).expect("open");
    store
        .set(SetRequest {
            ttl_seconds: Some(1),
            ..set("app||a", b"1")
        })
        .expect("set");
    time.advance_secs(2);
    store
        .set(set("app||b", b"2"))
        .expect("a later write purges");
    let txn = store.db.begin_read().expect("read txn");
    let records = txn.open_table(RECORDS).expect("records");
    assert_eq!(
        records.len().ok(),
        Some(1),
        "the expired record is still stored"
    );
}
