//! A behaviour suite for stores built on these rules: ETags, concurrency,
//! TTL, transactions and queries, checked through the [`StateStore`] trait.
//! Store crates run it from their unit tests (feature `conformance`), so the
//! in-memory and redb stores are held to one written-down behaviour.

use super::{Clock, ManualTime};
use crate::state::{
    Concurrency, Consistency, DeleteRequest, GetRequest, Operation, QueryRequest, SetRequest,
    StateStore,
};
use crate::{Error, Feature, Result};

/// Where every suite's clock starts: late 2023, in milliseconds.
const START_MS: u64 = 1_700_000_000_500;

/// Runs every check against fresh stores made by `open`, which must build an
/// empty store reading the time from the clock it is given. Panics on the
/// first behaviour that differs.
pub fn run<S: StateStore>(mut open: impl FnMut(Clock) -> S) {
    features_are_declared::<S>();
    concurrency_table(&mut open);
    ttl_expires_and_can_be_cleared(&mut open);
    transactions_are_all_or_nothing(&mut open);
    queries_see_one_app_and_live_items(&mut open);
    bulk_get_answers_per_key(&mut open);
}

/// A fresh store with a clock the check can move.
fn fresh<S: StateStore>(open: &mut impl FnMut(Clock) -> S) -> (S, ManualTime) {
    let time = ManualTime::new(START_MS);
    (open(Clock::manual(&time)), time)
}

/// A set request with Dapr's defaults: last-write, no ETag, no TTL.
pub fn set(key: &str, value: &[u8]) -> SetRequest {
    SetRequest {
        key: key.into(),
        value: value.to_vec(),
        etag: None,
        concurrency: Concurrency::LastWrite,
        consistency: Consistency::Strong,
        ttl_seconds: None,
        metadata: Vec::new(),
    }
}

/// A delete request with Dapr's defaults: last-write, no ETag.
pub fn delete(key: &str) -> DeleteRequest {
    DeleteRequest {
        key: key.into(),
        etag: None,
        concurrency: Concurrency::LastWrite,
        consistency: Consistency::Strong,
        metadata: Vec::new(),
    }
}

/// A get request for `key`.
pub fn get(key: &str) -> GetRequest {
    GetRequest {
        key: key.into(),
        consistency: Consistency::Strong,
        metadata: Vec::new(),
    }
}

/// The stored value and ETag of `key`, or `None`; panics if the read fails.
pub fn read(store: &mut impl StateStore, key: &str) -> Option<(Vec<u8>, String)> {
    let item = store
        .get(get(key))
        .unwrap_or_else(|err| panic!("get {key}: {err:?}"))?;
    let etag = item
        .etag
        .unwrap_or_else(|| panic!("{key} was read without an etag"));
    Some((item.value, etag))
}

fn features_are_declared<S: StateStore>() {
    let features = S::features();
    for (name, wanted) in [
        ("etag", Feature::Etag),
        ("transactional", Feature::Transactional),
        ("ttl", Feature::Ttl),
        ("query-api", Feature::QueryApi),
    ] {
        assert!(
            features.contains(&wanted),
            "feature {name} is not declared: {features:?}"
        );
    }
}

/// Which ETag a case sends.
#[derive(Debug, Clone, Copy)]
enum Tag {
    None,
    Empty,
    Current,
    Stale,
    Garbage,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Set,
    Delete,
}

/// How a write or delete ended, as the concurrency rules can end it.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// It went ahead.
    Ok,
    /// `etag-mismatch`.
    Mismatch,
    /// `etag-invalid`.
    Invalid,
}

/// The outcome of `result`; panics on any error the rules never produce.
pub fn outcome(result: Result<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Ok,
        Err(Error::EtagMismatch) => Outcome::Mismatch,
        Err(Error::EtagInvalid) => Outcome::Invalid,
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn concurrency_table<S: StateStore>(open: &mut impl FnMut(Clock) -> S) {
    use Concurrency::{FirstWrite as First, LastWrite as Last};
    use Outcome::{Invalid, Mismatch, Ok};
    let cases = [
        // (key exists, operation, etag sent, mode, outcome)
        (false, Op::Set, Tag::None, First, Ok),
        (false, Op::Set, Tag::None, Last, Ok),
        (false, Op::Set, Tag::Stale, Last, Mismatch),
        (false, Op::Set, Tag::Garbage, First, Invalid),
        (true, Op::Set, Tag::None, First, Mismatch),
        (true, Op::Set, Tag::None, Last, Ok),
        (true, Op::Set, Tag::Empty, First, Mismatch),
        (true, Op::Set, Tag::Empty, Last, Ok),
        (true, Op::Set, Tag::Current, First, Ok),
        (true, Op::Set, Tag::Current, Last, Ok),
        (true, Op::Set, Tag::Stale, First, Mismatch),
        (true, Op::Set, Tag::Stale, Last, Mismatch),
        (true, Op::Set, Tag::Garbage, Last, Invalid),
        (false, Op::Delete, Tag::None, Last, Ok),
        (false, Op::Delete, Tag::None, First, Ok),
        (false, Op::Delete, Tag::Stale, Last, Mismatch),
        (false, Op::Delete, Tag::Garbage, Last, Invalid),
        (true, Op::Delete, Tag::None, Last, Ok),
        (true, Op::Delete, Tag::None, First, Mismatch),
        (true, Op::Delete, Tag::Current, First, Ok),
        (true, Op::Delete, Tag::Current, Last, Ok),
        (true, Op::Delete, Tag::Stale, Last, Mismatch),
        (true, Op::Delete, Tag::Garbage, First, Invalid),
    ];
    for (exists, op, tag, mode, want) in cases {
        let case = format!("exists {exists}, {op:?} with etag {tag:?}, {mode:?}");
        let (mut store, _time) = fresh(open);
        let key = "app||k";
        if exists {
            store
                .set(set(key, b"old"))
                .unwrap_or_else(|e| panic!("{case}: seed: {e:?}"));
        }
        let before = read(&mut store, key);
        let current: u64 = before
            .as_ref()
            .map_or(Some(0), |(_, etag)| etag.parse().ok())
            .unwrap_or_else(|| panic!("{case}: the etag is not a version number"));
        let etag = match tag {
            Tag::None => None,
            Tag::Empty => Some(String::new()),
            Tag::Current => before.as_ref().map(|(_, etag)| etag.clone()),
            Tag::Stale => Some((current + 1000).to_string()),
            Tag::Garbage => Some("not-a-version".into()),
        };
        let result = match op {
            Op::Set => store.set(SetRequest {
                etag,
                concurrency: mode,
                ..set(key, b"new")
            }),
            Op::Delete => store.delete(DeleteRequest {
                etag,
                concurrency: mode,
                ..delete(key)
            }),
        };
        assert_eq!(outcome(result), want, "{case}");
        let after = read(&mut store, key);
        match (want, op) {
            (Ok, Op::Set) => {
                let (value, etag) = after.unwrap_or_else(|| panic!("{case}: value missing"));
                assert_eq!(value, b"new", "{case}");
                let version: u64 = etag.parse().unwrap_or(0);
                assert!(
                    version > current,
                    "{case}: etag {etag} does not grow past {current}"
                );
            }
            (Ok, Op::Delete) => assert_eq!(after, None, "{case}: still there"),
            _ => assert_eq!(after, before, "{case}: a refused write changed the item"),
        }
    }
}

fn ttl_expires_and_can_be_cleared<S: StateStore>(open: &mut impl FnMut(Clock) -> S) {
    let (mut store, time) = fresh(open);
    let ttl = |key: &str, seconds| SetRequest {
        ttl_seconds: Some(seconds),
        ..set(key, b"v")
    };
    // Twice in the same millisecond: an expiry index must not lose the entry.
    store.set(ttl("app||ttl", 10)).expect("set with ttl");
    store
        .set(ttl("app||ttl", 10))
        .expect("set with the same ttl again");
    store.set(ttl("app||kept", 10)).expect("set with ttl");
    store
        .set(set("app||kept", b"v"))
        .expect("rewrite without ttl");

    let item = store
        .get(get("app||ttl"))
        .expect("get")
        .expect("item before expiry");
    assert_eq!(
        item.expires_at_unix,
        Some(START_MS.div_ceil(1000) + 10),
        "reported expiry"
    );
    let kept = store
        .get(get("app||kept"))
        .expect("get")
        .expect("item without ttl");
    assert_eq!(
        kept.expires_at_unix, None,
        "a write without TTL clears the old one"
    );

    time.advance_secs(9);
    assert!(
        read(&mut store, "app||ttl").is_some(),
        "expired a second early"
    );
    time.advance_secs(2);
    assert_eq!(read(&mut store, "app||ttl"), None, "visible after expiry");
    assert!(
        read(&mut store, "app||kept").is_some(),
        "an item without TTL expired"
    );

    let first_write = SetRequest {
        concurrency: Concurrency::FirstWrite,
        ..set("app||ttl", b"again")
    };
    store
        .set(first_write)
        .expect("first-write over an expired key");
    assert_eq!(
        read(&mut store, "app||ttl").map(|(v, _)| v),
        Some(b"again".to_vec())
    );
}

fn transactions_are_all_or_nothing<S: StateStore>(open: &mut impl FnMut(Clock) -> S) {
    let (mut store, _time) = fresh(open);
    store.set(set("app||a", b"a")).expect("seed");
    let (_, etag) = read(&mut store, "app||a").expect("seeded item");
    let with_etag = |etag: &str| DeleteRequest {
        etag: Some(etag.into()),
        ..delete("app||a")
    };
    let run = |store: &mut S, ops| store.transact(ops, Vec::<(String, String)>::new().into());

    let failing = [
        (with_etag("999999"), "stale etag", "mismatch"),
        (with_etag("garbage"), "invalid etag", "invalid"),
    ];
    for (last, name, kind) in failing {
        let ops = vec![Operation::Set(set("app||b", b"b")), Operation::Delete(last)];
        let result = run(&mut store, ops);
        let as_expected = match kind {
            "mismatch" => matches!(result, Err(Error::EtagMismatch)),
            _ => matches!(result, Err(Error::EtagInvalid)),
        };
        assert!(as_expected, "{name}: {result:?}");
        assert_eq!(
            read(&mut store, "app||b"),
            None,
            "{name}: a failed transaction wrote"
        );
        assert!(
            read(&mut store, "app||a").is_some(),
            "{name}: a failed transaction deleted"
        );
    }

    let ops = vec![
        Operation::Set(set("app||b", b"b")),
        Operation::Set(set("app||c", b"c1")),
        Operation::Set(set("app||c", b"c2")),
        Operation::Delete(with_etag(&etag)),
    ];
    run(&mut store, ops).expect("transaction");
    assert_eq!(
        read(&mut store, "app||a"),
        None,
        "deleted in the transaction"
    );
    assert_eq!(
        read(&mut store, "app||b").map(|(v, _)| v),
        Some(b"b".to_vec())
    );
    assert_eq!(
        read(&mut store, "app||c").map(|(v, _)| v),
        Some(b"c2".to_vec())
    );
}

fn queries_see_one_app_and_live_items<S: StateStore>(open: &mut impl FnMut(Clock) -> S) {
    let (mut store, time) = fresh(open);
    let seeds: [(&str, &[u8], Option<u32>); 6] = [
        ("app1||x", br#"{"n": 1, "org": "A"}"#, None),
        ("app1||y", br#"{"n": 2, "org": "A"}"#, None),
        ("app1||z", br#"{"n": 3, "org": "B"}"#, None),
        ("app1||soon", br#"{"n": 4, "org": "A"}"#, Some(5)),
        ("app1||raw", b"not json", None),
        ("app2||x", br#"{"n": 5, "org": "A"}"#, None),
    ];
    for (key, value, ttl_seconds) in seeds {
        store
            .set(SetRequest {
                ttl_seconds,
                ..set(key, value)
            })
            .expect("seed");
    }
    time.advance_secs(6);
    let query = |text: &str| QueryRequest {
        query: text.into(),
        key_prefix: "app1||".into(),
        metadata: Vec::new(),
    };
    let response = store
        .query(query(
            r#"{"filter": {"EQ": {"org": "A"}}, "sort": [{"key": "n", "order": "DESC"}]}"#,
        ))
        .expect("query");
    let keys: Vec<&str> = response.results.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        ["app1||y", "app1||x"],
        "filtered, sorted, one app, live only"
    );
    for result in &response.results {
        let stored = read(&mut store, &result.key).map(|(_, etag)| etag);
        assert_eq!(result.etag, stored, "query etag of {}", result.key);
    }

    let paged = store
        .query(query(r#"{"page": {"limit": 2}}"#))
        .expect("paged query");
    assert_eq!(paged.results.len(), 2, "first page");
    let token = paged.token.expect("a token for the second page");
    let next = store
        .query(query(&format!(
            r#"{{"page": {{"limit": 2, "token": "{token}"}}}}"#
        )))
        .expect("second page");
    assert_eq!((next.results.len(), next.token), (1, None), "last page");

    let bad = store.query(query(r#"{"filter": {"LIKE": {"org": "A"}}}"#));
    assert!(matches!(bad, Err(Error::InvalidArgument(_))), "{bad:?}");
}

fn bulk_get_answers_per_key<S: StateStore>(open: &mut impl FnMut(Clock) -> S) {
    let (mut store, _time) = fresh(open);
    store.set(set("app||here", b"1")).expect("seed");
    let answers = store
        .bulk_get(vec![get("app||here"), get("app||gone")])
        .expect("bulk get");
    let summary: Vec<(&str, Option<&[u8]>)> = answers
        .iter()
        .map(|a| (a.key.as_str(), a.item.as_ref().map(|i| i.value.as_slice())))
        .collect();
    assert_eq!(
        summary,
        [("app||here", Some(&b"1"[..])), ("app||gone", None)]
    );
}
