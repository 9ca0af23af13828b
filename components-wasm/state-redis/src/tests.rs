//! The store's contract, exercised natively against the real Redis at
//! 127.0.0.1:6379 (as on the project's machines). Every test works under its
//! own key prefix and deletes what it wrote.

use super::*;
use redis_wire::{Cmd, Reply};
use std::sync::atomic::{AtomicUsize, Ordering};

const REDIS: &str = "127.0.0.1:6379";

/// Metadata from literal pairs, for this crate's tests.
pub(crate) fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>()
        .into()
}

/// A store plus the keys it may touch, removed again on drop.
struct Scratch {
    store: RedisStore,
    prefix: String,
    databases: Vec<u32>,
}

impl Scratch {
    fn new(extra: &[(&str, &str)]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "outrig-test-redis-{}-{}-{}||",
            std::process::id(),
            unix_millis(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut pairs = vec![("redisHost", REDIS)];
        pairs.extend_from_slice(extra);
        let store = RedisStore::init(metadata(&pairs)).expect("init");
        let databases = vec![0, store.config.endpoint.database];
        Scratch {
            store,
            prefix,
            databases,
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A separate connection to `database`, for checking what is really stored.
    fn raw(&self, database: u32) -> Connection<TcpStream> {
        let mut config = self.store.config.clone();
        config.endpoint.database = database;
        Connection::open(&config).expect("raw connection")
    }

    fn raw_run(&self, database: u32, cmd: Cmd) -> Reply {
        let mut replies = self.raw(database).pipeline(&[cmd]).expect("raw command");
        replies.pop().expect("one reply")
    }

    fn get(&mut self, name: &str) -> Option<Item> {
        let key = self.key(name);
        self.store.get(get_request(&key)).expect("get")
    }

    fn set(&mut self, name: &str, value: &str, etag: Option<&str>, first: bool) -> Result<()> {
        let mut request = set_request(&self.key(name), value.as_bytes(), etag);
        if first {
            request.concurrency = Concurrency::FirstWrite;
        }
        self.store.set(request)
    }

    /// Seconds until `name` expires, by the item's reported expiry.
    fn expires_in(&mut self, name: &str) -> u64 {
        let expires = self.get(name).and_then(|item| item.expires_at_unix);
        expires
            .expect("has an expiry")
            .saturating_sub(unix_millis() / 1000)
    }

    fn delete(&mut self, name: &str, etag: Option<&str>) -> Result<()> {
        let key = self.key(name);
        self.store.delete(delete_request(&key, etag))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for &database in &self.databases {
            let mut raw = self.raw(database);
            let pattern = format!("{}*", self.prefix);
            let Ok(mut replies) = raw.pipeline(&[Cmd::new("KEYS").arg(pattern)]) else {
                continue;
            };
            if let Some(Reply::Array(Some(keys))) = replies.pop() {
                let mut del = Cmd::new("DEL");
                for key in keys.iter().filter_map(|k| match k {
                    Reply::Bulk(Some(key)) => Some(key.clone()),
                    _ => None,
                }) {
                    del = del.arg(key);
                }
                if !keys.is_empty() {
                    let _ = raw.pipeline(&[del]);
                }
            }
        }
    }
}

/// The outcome's kind, since the SDK's error type has no `PartialEq`.
fn kind(result: &Result<()>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(Error::EtagMismatch) => "etag-mismatch",
        Err(Error::EtagInvalid) => "etag-invalid",
        Err(Error::InvalidArgument(_)) => "invalid-argument",
        Err(Error::Unavailable(_)) => "unavailable",
        Err(Error::NotSupported(_)) => "not-supported",
        Err(Error::NotFound) => "not-found",
        Err(Error::Internal(_)) => "internal",
    }
}

/// An item's value and ETag, the parts a comparison cares about.
fn seen(item: Option<Item>) -> Option<(Vec<u8>, Option<String>)> {
    item.map(|item| (item.value, item.etag))
}

fn get_request(key: &str) -> GetRequest {
    GetRequest {
        key: key.into(),
        consistency: Consistency::Strong,
        metadata: vec![],
    }
}

fn set_request(key: &str, value: &[u8], etag: Option<&str>) -> SetRequest {
    SetRequest {
        key: key.into(),
        value: value.to_vec(),
        etag: etag.map(String::from),
        concurrency: Concurrency::LastWrite,
        consistency: Consistency::Strong,
        ttl_seconds: None,
        metadata: vec![],
    }
}

fn delete_request(key: &str, etag: Option<&str>) -> DeleteRequest {
    DeleteRequest {
        key: key.into(),
        etag: etag.map(String::from),
        concurrency: Concurrency::LastWrite,
        consistency: Consistency::Strong,
        metadata: vec![],
    }
}

/// One step of a scenario on a single key and what it must give.
enum Step {
    Set(&'static str, Option<&'static str>, bool),
    Delete(Option<&'static str>),
    /// Expect this value and ETag (or a miss).
    Get(Option<(&'static str, &'static str)>),
}

#[test]
fn etag_and_first_write_semantics() {
    use Step::*;
    let (ok, mismatch, invalid) = ("ok", "etag-mismatch", "etag-invalid");
    let scenario: Vec<(Step, &str)> = vec![
        (Get(None), ok),
        (Delete(None), ok),
        (Delete(Some("1")), mismatch),
        (Set("a", Some("1"), false), mismatch),
        (Set("a", None, true), ok),
        (Get(Some(("a", "1"))), ok),
        (Set("b", None, true), mismatch),
        (Set("b", Some("1"), true), ok),
        (Get(Some(("b", "2"))), ok),
        (Set("c", Some("1"), false), mismatch),
        (Set("c", Some("x1"), false), invalid),
        (Set("c", Some("-2"), false), invalid),
        (Set("c", None, false), ok),
        (Get(Some(("c", "3"))), ok),
        (Delete(Some("2")), mismatch),
        (Delete(Some("nope")), invalid),
        (Delete(Some("3")), ok),
        (Get(None), ok),
        (Set("d", None, true), ok),
        (Get(Some(("d", "1"))), ok),
    ];
    let mut scratch = Scratch::new(&[]);
    for (i, (step, expected)) in scenario.into_iter().enumerate() {
        let result = match step {
            Set(value, etag, first) => scratch.set("k", value, etag, first),
            Delete(etag) => scratch.delete("k", etag),
            Get(want) => {
                let got = seen(scratch.get("k"));
                let want = want.map(|(v, e)| (v.as_bytes().to_vec(), Some(e.to_string())));
                assert_eq!(got, want, "step {i}");
                Ok(())
            }
        };
        assert_eq!(kind(&result), expected, "step {i}");
    }
}

#[test]
fn data_layout_is_daprs() {
    let mut scratch = Scratch::new(&[]);
    let binary = b"\x00\xff\r\n{not json".to_vec();
    let key = scratch.key("bin");
    scratch
        .store
        .set(set_request(&key, &binary, None))
        .expect("set");
    let stored = scratch.raw_run(0, Cmd::new("HGETALL").arg(&key));
    let expected = ["data".as_bytes(), &binary, b"version", b"1"];
    let expected = expected
        .iter()
        .map(|b| Reply::Bulk(Some(b.to_vec())))
        .collect();
    assert_eq!(stored, Reply::Array(Some(expected)));

    // A key as Dapr leaves it (HINCRBY'd version, its own `first-write` marker) reads and updates.
    let dapr = scratch.key("dapr");
    let hset = Cmd::new("HSET")
        .arg(&dapr)
        .arg("data")
        .arg("\"hi\"")
        .arg("version")
        .arg("41");
    scratch.raw_run(0, hset.arg("first-write").arg("0"));
    let item = scratch.get("dapr").expect("present");
    assert_eq!(
        (item.value, item.etag.as_deref()),
        (b"\"hi\"".to_vec(), Some("41"))
    );
    scratch
        .set("dapr", "\"yo\"", Some("41"), false)
        .expect("update with Dapr's etag");
    let version = scratch.raw_run(0, Cmd::new("HGET").arg(&dapr).arg("version"));
    assert_eq!(version, Reply::Bulk(Some(b"42".to_vec())));

    // A plain string left at the key (not Dapr's layout) is replaced by a write.
    let plain = scratch.key("plain");
    scratch.raw_run(0, Cmd::new("SET").arg(&plain).arg("old"));
    scratch
        .set("plain", "new", None, false)
        .expect("replaces the string");
    assert_eq!(
        seen(scratch.get("plain")),
        Some((b"new".to_vec(), Some("1".into())))
    );
}

#[test]
fn ttl_is_set_reported_and_cleared() {
    let mut scratch = Scratch::new(&[("ttlInSeconds", "1000")]);
    let key = scratch.key("t");
    let mut request = set_request(&key, b"v", None);
    request.ttl_seconds = Some(100);
    scratch.store.set(request).expect("set with ttl");
    assert!((99..=101).contains(&scratch.expires_in("t")));

    scratch
        .set("t", "v", None, false)
        .expect("set with default ttl");
    assert!((999..=1001).contains(&scratch.expires_in("t")));

    let mut forever = set_request(&key, b"v", None);
    forever.metadata = vec![("ttlInSeconds".into(), "-1".into())];
    scratch.store.set(forever).expect("set forever");
    assert_eq!(
        scratch.get("t").map(|item| item.expires_at_unix),
        Some(None)
    );

    let mut short = set_request(&key, b"v", None);
    short.ttl_seconds = Some(1);
    scratch.store.set(short).expect("set short ttl");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(
        scratch.get("t").is_none(),
        "expired keys are never returned"
    );
}

#[test]
fn transactions_check_everything_before_writing() {
    let mut scratch = Scratch::new(&[]);
    let (a, b) = (scratch.key("a"), scratch.key("b"));
    scratch.set("b", "b0", None, false).expect("seed");
    let refused = vec![
        Operation::Set(set_request(&a, b"a1", None)),
        Operation::Delete(delete_request(&b, Some("7"))),
    ];
    let result = scratch.store.transact(refused, Metadata::default());
    assert_eq!(kind(&result), "etag-mismatch");
    assert!(
        scratch.get("a").is_none(),
        "nothing of a refused transaction is applied"
    );

    let invalid = vec![Operation::Set(set_request(&a, b"a1", Some("v1")))];
    assert_eq!(
        kind(&scratch.store.transact(invalid, Metadata::default())),
        "etag-invalid"
    );

    // Checks see the effect of earlier operations on the same key.
    let sequential = vec![
        Operation::Set(set_request(&a, b"a1", None)),
        Operation::Set(set_request(&a, b"a2", Some("1"))),
        Operation::Delete(delete_request(&b, Some("1"))),
    ];
    scratch
        .store
        .transact(sequential, Metadata::default())
        .expect("applies");
    assert_eq!(
        seen(scratch.get("a")),
        Some((b"a2".to_vec(), Some("2".into())))
    );
    assert!(scratch.get("b").is_none());
    assert_eq!(
        kind(&scratch.store.transact(vec![], Metadata::default())),
        "ok"
    );
}

#[test]
fn bulk_calls_report_per_key_and_first_failure() {
    let mut scratch = Scratch::new(&[]);
    let keys: Vec<String> = ["x", "y", "missing", "string"]
        .iter()
        .map(|k| scratch.key(k))
        .collect();
    let sets = vec![
        set_request(&keys[0], b"1", None),
        set_request(&keys[1], b"2", None),
    ];
    scratch.store.bulk_set(sets).expect("bulk set");
    scratch.raw_run(0, Cmd::new("SET").arg(&keys[3]).arg("plain"));

    let items = scratch
        .store
        .bulk_get(keys.iter().map(|k| get_request(k)).collect())
        .expect("bulk");
    let summary: Vec<_> = items
        .iter()
        .map(|b| {
            (
                b.key.clone(),
                b.item.as_ref().map(|i| i.value.clone()),
                b.error.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (keys[0].clone(), Some(b"1".to_vec()), false),
            (keys[1].clone(), Some(b"2".to_vec()), false),
            (keys[2].clone(), None, false),
            (keys[3].clone(), None, true),
        ]
    );

    let sets = vec![
        set_request(&keys[0], b"3", Some("9")),
        set_request(&keys[1], b"4", None),
    ];
    assert_eq!(kind(&scratch.store.bulk_set(sets)), "etag-mismatch");
    assert_eq!(
        scratch.get("y").map(|i| i.value),
        Some(b"4".to_vec()),
        "not atomic"
    );

    let deletes = keys[..2].iter().map(|k| delete_request(k, None)).collect();
    scratch.store.bulk_delete(deletes).expect("bulk delete");
    assert!(scratch.get("x").is_none() && scratch.get("y").is_none());
}

#[test]
fn database_is_selected() {
    let mut scratch = Scratch::new(&[("redisDB", "3")]);
    scratch.set("db", "v", None, false).expect("set");
    let key = scratch.key("db");
    assert_eq!(
        scratch.raw_run(3, Cmd::new("EXISTS").arg(&key)),
        Reply::Integer(1)
    );
    assert_eq!(
        scratch.raw_run(0, Cmd::new("EXISTS").arg(&key)),
        Reply::Integer(0)
    );
}

#[test]
fn reconnects_after_the_connection_dies() {
    let mut scratch = Scratch::new(&[]);
    scratch.set("r", "v", None, false).expect("set");
    let kill_own_connection = |scratch: &mut Scratch| {
        let conn = scratch.store.conn.get_mut().expect("connected");
        let id = match conn
            .pipeline(&[Cmd::new("CLIENT").arg("ID")])
            .expect("id")
            .pop()
        {
            Some(Reply::Integer(id)) => id,
            other => panic!("CLIENT ID gave {other:?}"),
        };
        scratch.raw_run(
            0,
            Cmd::new("CLIENT").arg("KILL").arg("ID").arg(id.to_string()),
        );
    };

    kill_own_connection(&mut scratch);
    assert!(
        scratch.get("r").is_some(),
        "a read retries once on a fresh connection"
    );

    kill_own_connection(&mut scratch);
    let write = scratch.set("r", "w", None, false);
    assert!(matches!(write, Err(Error::Unavailable(_))), "{write:?}");
    assert!(
        !scratch.store.conn.is_open(),
        "the broken connection is dropped"
    );
    scratch
        .set("r", "w", None, false)
        .expect("the next call reconnects");
}

#[test]
fn a_lost_script_cache_is_refilled() {
    let mut scratch = Scratch::new(&[]);
    scratch.set("s", "v", None, false).expect("set");
    scratch
        .store
        .conn
        .get_mut()
        .expect("connected")
        .forget_script();
    scratch
        .set("s", "w", Some("1"), false)
        .expect("falls back to EVAL");
    assert_eq!(scratch.get("s").and_then(|i| i.etag), Some("2".into()));
}

#[test]
fn unreachable_or_refusing_servers_are_unavailable() {
    let mut down =
        RedisStore::init(metadata(&[("redisHost", "127.0.0.1:1")])).expect("init is lazy");
    assert!(matches!(
        down.get(get_request("k")),
        Err(Error::Unavailable(_))
    ));

    let pairs = [
        ("redisHost", REDIS),
        ("redisUsername", "nobody"),
        ("redisPassword", "wrong"),
    ];
    let mut refused = RedisStore::init(metadata(&pairs)).expect("init");
    match refused.get(get_request("k")) {
        Err(Error::Unavailable(message)) => assert!(message.contains("refused"), "{message}"),
        other => panic!("wrong credentials gave {other:?}"),
    }
    assert!(matches!(
        refused.get(get_request("")),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn error_replies_map_to_retryable_or_not() {
    let cases = [
        (
            "LOADING Redis is loading the dataset in memory",
            "unavailable",
        ),
        ("BUSY Redis is busy running a script", "unavailable"),
        (
            "READONLY You can't write against a read only replica.",
            "unavailable",
        ),
        ("NOAUTH Authentication required.", "unavailable"),
        (
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "internal",
        ),
        ("ERR unknown command", "internal"),
    ];
    for (reply, expected) in cases {
        assert_eq!(kind(&Err(server_error(reply))), expected, "{reply}");
    }
}
