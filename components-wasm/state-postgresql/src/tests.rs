//! The store's contract, exercised natively against the real PostgreSQL at
//! 127.0.0.1:5432 (trust auth, database `test`, as on the project's machines).
//! Every test uses its own state and metadata tables and drops them after.

use super::*;
use std::time::Duration;

/// The test server, reachable without a password.
pub(crate) const CONNECTION_STRING: &str =
    "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable";

/// Metadata from literal pairs, for this crate's tests.
pub(crate) fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::from(Vec::from_iter(
        pairs
            .iter()
            .map(|&(name, value)| (name.to_owned(), value.to_owned())),
    ))
}

/// A store on tables of its own, named after the test (`tag`) and this
/// process, plus a second connection to look behind the store's back.
struct Fixture {
    store: PgStore,
    table: String,
    meta: String,
    raw: PgConnection<TcpStream>,
}

impl Fixture {
    fn new(tag: &str, extra: &[(&str, &str)]) -> Self {
        let table = format!("outrig_test_{tag}_{}", std::process::id());
        let meta = format!("{table}_meta");
        let names = [("tableName", table.as_str()), ("metadataTableName", &meta)];
        let pairs = [
            &[("connectionString", CONNECTION_STRING)],
            &names[..],
            extra,
        ]
        .concat();
        let store = PgStore::init(metadata(&pairs)).expect("init");
        let raw =
            PgConnection::open(&store.config.conn, Duration::from_secs(5)).expect("raw connection");
        Fixture {
            store,
            table,
            meta,
            raw,
        }
    }

    /// Runs SQL on the side connection and returns the rows as text.
    fn sql(&mut self, sql: &str, params: &[Option<&str>]) -> Vec<Vec<Option<String>>> {
        let rows = self
            .raw
            .execute(sql, params)
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
        let cell = |c: Option<Vec<u8>>| c.map(|b| String::from_utf8_lossy(&b).into_owned());
        rows.rows
            .into_iter()
            .map(|row| row.into_iter().map(cell).collect())
            .collect()
    }

    fn get(&mut self, key: &str) -> Option<Item> {
        self.store.get(get(key)).expect("get")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let drop_tables = format!("DROP TABLE IF EXISTS {}, {}", self.table, self.meta);
        let _ = self.raw.execute(&drop_tables, &[]);
    }
}

fn get(key: &str) -> GetRequest {
    GetRequest {
        key: key.into(),
        consistency: Consistency::Eventual,
        metadata: vec![],
    }
}

fn set(key: &str, value: &[u8], etag: Option<&str>) -> SetRequest {
    SetRequest {
        key: key.into(),
        value: value.to_vec(),
        etag: etag.map(String::from),
        concurrency: Concurrency::LastWrite,
        consistency: Consistency::Eventual,
        ttl_seconds: None,
        metadata: vec![],
    }
}

fn first_write(mut request: SetRequest) -> SetRequest {
    request.concurrency = Concurrency::FirstWrite;
    request
}

fn with_ttl(mut request: SetRequest, seconds: u32) -> SetRequest {
    request.ttl_seconds = Some(seconds);
    request
}

fn delete(key: &str, etag: Option<&str>) -> DeleteRequest {
    DeleteRequest {
        key: key.into(),
        etag: etag.map(String::from),
        concurrency: Concurrency::LastWrite,
        consistency: Consistency::Eventual,
        metadata: vec![],
    }
}

/// Fails unless `got` is the same case as `want` (messages aside), since
/// the SDK's error type has no `PartialEq`.
#[track_caller]
fn assert_case(got: Result<()>, want: Result<()>, context: &str) {
    let same = match (&got, &want) {
        (Ok(()), Ok(())) => true,
        (Err(got), Err(want)) => std::mem::discriminant(got) == std::mem::discriminant(want),
        _ => false,
    };
    assert!(same, "{context}: got {got:?}, want {want:?}");
}

#[test]
fn etags_are_xmin_and_guard_writes() {
    let mut f = Fixture::new("etags", &[]);
    assert!(f.get("k").is_none());
    f.store
        .set(first_write(set("k", b"1", None)))
        .expect("first write of a new key");
    let first = f.get("k").and_then(|item| item.etag).expect("has an etag");
    let xmin = f.sql(
        &format!("SELECT xmin::text FROM {} WHERE key = 'k'", f.table),
        &[],
    );
    assert_eq!(
        xmin,
        vec![vec![Some(first.clone())]],
        "the etag is the row's xmin"
    );
    f.store
        .set(set("k", b"2", Some(&first)))
        .expect("matching etag");
    let second = f.get("k").and_then(|item| item.etag).expect("has an etag");
    assert_ne!(first, second);

    // Each write below must give the outcome beside it.
    let cases: Vec<(SetRequest, Result<()>)> = vec![
        (set("k", b"3", Some(&first)), Err(Error::EtagMismatch)),
        (first_write(set("k", b"3", None)), Err(Error::EtagMismatch)),
        (
            set("missing", b"3", Some(&second)),
            Err(Error::EtagMismatch),
        ),
        (set("k", b"3", Some("x1")), Err(Error::EtagInvalid)),
        (set("k", b"3", Some("4294967296")), Err(Error::EtagInvalid)),
        (set("", b"3", None), Err(Error::invalid(""))),
        (first_write(set("k", b"3", Some(&second))), Ok(())),
    ];
    for (request, expected) in cases {
        let label = format!(
            "{:?} {:?} {:?}",
            request.key, request.etag, request.concurrency
        );
        assert_case(f.store.set(request), expected, &label);
    }
    let third = f.get("k").and_then(|item| item.etag).expect("has an etag");
    let deletes: Vec<(DeleteRequest, Result<()>)> = vec![
        (delete("k", Some(&second)), Err(Error::EtagMismatch)),
        (delete("k", Some("-1")), Err(Error::EtagInvalid)),
        (delete("missing", Some(&third)), Err(Error::EtagMismatch)),
        (delete("missing", None), Ok(())),
        (delete("k", Some(&third)), Ok(())),
    ];
    for (request, expected) in deletes {
        let label = format!("delete {:?} {:?}", request.key, request.etag);
        assert_case(f.store.delete(request), expected, &label);
    }
    assert!(f.get("k").is_none());
}

#[test]
fn values_use_daprs_columns() {
    let mut f = Fixture::new("values", &[]);
    f.store
        .set(set("json", br#"{"b":1,  "a":[true]}"#, None))
        .expect("json");
    f.store
        .set(set("bytes", b"\x00\xffraw", None))
        .expect("bytes");
    let rows = f.sql(
        &format!(
            "SELECT key, value::text, isbinary::text FROM {} ORDER BY key",
            f.table
        ),
        &[],
    );
    let row = |k: &str, v: &str, b: &str| {
        vec![
            Some(k.to_string()),
            Some(v.to_string()),
            Some(b.to_string()),
        ]
    };
    assert_eq!(
        rows,
        vec![
            row("bytes", r#""AP9yYXc=""#, "true"),
            row("json", r#"{"a": [true], "b": 1}"#, "false")
        ]
    );
    assert_eq!(
        f.get("bytes").map(|item| item.value),
        Some(b"\x00\xffraw".to_vec())
    );
    assert_eq!(
        f.get("json").map(|item| item.value),
        Some(br#"{"a": [true], "b": 1}"#.to_vec())
    );

    // A row as Dapr writes it reads back, with its xmin as the etag.
    let insert = format!(
        "INSERT INTO {} (key, value, isbinary) VALUES ('dapr||k', '\"hi\"', false)",
        f.table
    );
    f.sql(&insert, &[]);
    let item = f.get("dapr||k").expect("present");
    assert_eq!(
        (item.value, item.etag.is_some(), item.expires_at_unix),
        (b"\"hi\"".to_vec(), true, None)
    );
}

#[test]
fn tables_follow_daprs_v1_schema() {
    let mut f = Fixture::new("schema", &[]);
    // An older Dapr table, without `expiredate`, gains the column.
    f.sql(&format!("CREATE TABLE {} (key text PRIMARY KEY, value jsonb NOT NULL, isbinary boolean NOT NULL, insertdate timestamptz NOT NULL DEFAULT now(), updatedate timestamptz)", f.table), &[]);
    f.store
        .set(with_ttl(set("k", b"1", None), 60))
        .expect("set");
    let columns = f.sql(
        "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
        &[Some(&f.table.clone())],
    );
    let expected = [
        "key text NO",
        "value jsonb NO",
        "isbinary boolean NO",
        "insertdate timestamp with time zone NO",
        "updatedate timestamp with time zone YES",
        "expiredate timestamp with time zone YES",
    ];
    assert_eq!(
        columns,
        expected
            .iter()
            .map(|c| vec![Some(c.to_string())])
            .collect::<Vec<_>>()
    );
    let level = f.sql(
        &format!("SELECT value FROM {} WHERE key = 'migrations'", f.meta),
        &[],
    );
    assert_eq!(level, vec![vec![Some("2".to_string())]]);
}

#[test]
fn ttl_expires_rows() {
    let mut f = Fixture::new("ttl", &[("cleanupIntervalInSeconds", "0")]);
    f.store
        .set(with_ttl(set("long", b"1", None), 100))
        .expect("set");
    let now = unix_seconds();
    let expires = f
        .get("long")
        .and_then(|item| item.expires_at_unix)
        .expect("has expiry");
    assert!(
        (now + 99..=now + 101).contains(&expires),
        "{expires} vs {now}"
    );
    f.store
        .set(set("long", b"1", None))
        .expect("set without ttl");
    assert_eq!(
        f.get("long").map(|item| item.expires_at_unix),
        Some(None),
        "an old TTL is cleared"
    );

    f.store
        .set(with_ttl(set("short", b"1", None), 1))
        .expect("set");
    std::thread::sleep(Duration::from_millis(1100));
    assert!(f.get("short").is_none(), "expired rows are never returned");
    let etag = f.sql(
        &format!("SELECT xmin::text FROM {} WHERE key = 'short'", f.table),
        &[],
    );
    let stale = etag
        .first()
        .and_then(|row| row[0].clone())
        .expect("no cleanup: the row is still there");
    assert_case(
        f.store.set(set("short", b"2", Some(&stale))),
        Err(Error::EtagMismatch),
        "etag-mismatch",
    );
    f.store
        .set(first_write(set("short", b"2", None)))
        .expect("first write over an expired row");
    assert_eq!(f.get("short").map(|item| item.value), Some(b"2".to_vec()));
}

#[test]
fn cleanup_deletes_expired_rows() {
    let mut f = Fixture::new("cleanup", &[("cleanupIntervalInSeconds", "1")]);
    f.store
        .set(with_ttl(set("short", b"1", None), 1))
        .expect("set");
    f.store.set(set("long", b"1", None)).expect("set");
    let stored = f.sql(&format!("SELECT count(*) FROM {}", f.table), &[]);
    assert_eq!(stored, vec![vec![Some("2".to_string())]]);
    std::thread::sleep(Duration::from_millis(1100));
    f.get("long"); // the first call after the interval cleans up
    let left = f.sql(&format!("SELECT key FROM {} ORDER BY key", f.table), &[]);
    assert_eq!(left, vec![vec![Some("long".to_string())]]);
    let claims = f.sql(
        &format!("SELECT count(*) FROM {} WHERE key = 'last-cleanup'", f.meta),
        &[],
    );
    assert_eq!(claims, vec![vec![Some("1".to_string())]]);
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[test]
fn transactions_are_all_or_nothing() {
    let mut f = Fixture::new("tx", &[]);
    f.store.set(set("b", b"0", None)).expect("seed");
    let refused = vec![
        Operation::Set(set("a", b"1", None)),
        Operation::Delete(delete("b", Some("1"))),
    ];
    assert_case(
        f.store.transact(refused, Metadata::default()),
        Err(Error::EtagMismatch),
        "etag-mismatch",
    );
    assert!(f.get("a").is_none(), "the first operation was rolled back");

    // NUL cannot be stored in a text key: the server refuses mid-transaction,
    // and the request is to blame.
    let failing = vec![
        Operation::Set(set("a", b"1", None)),
        Operation::Set(set("bad\0key", b"1", None)),
    ];
    assert_case(
        f.store.transact(failing, Metadata::default()),
        Err(Error::invalid("")),
        "invalid-argument",
    );
    assert!(f.get("a").is_none(), "rolled back after a server error");
    assert!(
        f.store.conn.as_ref().is_some_and(PgConnection::is_idle),
        "kept, outside any transaction"
    );

    let invalid = vec![Operation::Set(set("a", b"1", Some("v2")))];
    assert_case(
        f.store.transact(invalid, Metadata::default()),
        Err(Error::EtagInvalid),
        "etag-invalid",
    );

    let b_etag = f.get("b").and_then(|item| item.etag);
    let applied = vec![
        Operation::Set(set("a", b"1", None)),
        Operation::Set(with_ttl(set("c", b"3", None), 30)),
        Operation::Delete(delete("b", b_etag.as_deref())),
    ];
    f.store
        .transact(applied, Metadata::default())
        .expect("applies");
    assert_eq!(f.get("a").map(|item| item.value), Some(b"1".to_vec()));
    assert!(
        f.get("b").is_none()
            && f.get("c")
                .is_some_and(|item| item.expires_at_unix.is_some())
    );
}

#[test]
fn bulk_reads_keep_request_order() {
    let mut f = Fixture::new("bulk", &[]);
    let awkward = r#"a "quoted", {braced} \ key"#;
    f.store
        .bulk_set(vec![set("x", b"1", None), set(awkward, b"2", None)])
        .expect("bulk set");
    let keys = ["missing", awkward, "x", "x"];
    let items = f
        .store
        .bulk_get(keys.iter().map(|k| get(k)).collect())
        .expect("bulk get");
    let got: Vec<_> = items
        .into_iter()
        .map(|b| (b.key, b.item.map(|i| i.value), b.error))
        .collect();
    let expected = vec![
        ("missing".to_string(), None, None),
        (awkward.to_string(), Some(b"2".to_vec()), None),
        ("x".to_string(), Some(b"1".to_vec()), None),
        ("x".to_string(), Some(b"1".to_vec()), None),
    ];
    assert_eq!(got, expected);

    let etag = f.get("x").and_then(|item| item.etag);
    let sets = vec![
        set("y", b"1", None),
        set("x", b"2", Some("1")),
        set("z", b"1", None),
    ];
    assert_case(
        f.store.bulk_set(sets),
        Err(Error::EtagMismatch),
        "etag-mismatch",
    );
    assert!(
        f.get("y").is_some() && f.get("z").is_none(),
        "stops at the first failure, keeps earlier writes"
    );
    f.store
        .bulk_delete(vec![delete("x", etag.as_deref()), delete("y", None)])
        .expect("bulk delete");
    assert!(f.get("x").is_none() && f.get("y").is_none());
}

#[test]
fn reconnects_after_the_server_drops_the_session() {
    let mut f = Fixture::new("reconnect", &[]);
    f.store.set(set("k", b"1", None)).expect("set");
    let kill = |f: &mut Fixture| {
        let conn = f.store.conn.as_mut().expect("connected");
        let pid = conn
            .execute("SELECT pg_backend_pid()", &[])
            .expect("pid")
            .rows
            .remove(0)
            .remove(0);
        let pid = String::from_utf8(pid.expect("not null")).expect("digits");
        f.sql("SELECT pg_terminate_backend($1::integer)", &[Some(&pid)]);
    };
    kill(&mut f);
    assert!(
        f.get("k").is_some(),
        "a read retries once on a new connection"
    );
    kill(&mut f);
    let write = f.store.set(set("k", b"2", None));
    assert!(matches!(write, Err(Error::Unavailable(_))), "{write:?}");
    assert!(f.store.conn.is_none(), "the dead connection is dropped");
    f.store
        .set(set("k", b"2", None))
        .expect("the next call reconnects");
}

#[test]
fn unreachable_servers_are_unavailable_and_init_stays_lazy() {
    let cases = [
        "host=127.0.0.1 port=1 user=postgres dbname=test",
        "host=127.0.0.1 user=postgres dbname=outrig_no_such_database",
    ];
    for connection_string in cases {
        let mut store = PgStore::init(metadata(&[("connectionString", connection_string)]))
            .expect("init is lazy");
        let result = store.get(get("k"));
        assert!(
            matches!(result, Err(Error::Unavailable(_))),
            "{connection_string}: {result:?}"
        );
    }
    let bad = PgStore::init(metadata(&[("connectionString", "host=h sslmode=require")]));
    assert!(matches!(bad, Err(Error::NotSupported(_))));
}

#[test]
fn queries_filter_sort_and_page_over_json_values() {
    let mut f = Fixture::new("query", &[("cleanupIntervalInSeconds", "0")]);
    let people = [
        (
            "app||ann",
            r#"{"person": {"org": "dev", "age": 9}, "state": "CA"}"#,
        ),
        (
            "app||bob",
            r#"{"person": {"org": "ops", "age": 10}, "state": "WA"}"#,
        ),
        (
            "app||cyd",
            r#"{"person": {"org": "dev", "age": 31.5}, "state": "CA"}"#,
        ),
        (
            "app||dee",
            r#"{"person": {"org": "hr", "age": "40"}, "state": "NY"}"#,
        ),
        ("app||raw", "not json"),
        (
            "other||eve",
            r#"{"person": {"org": "dev", "age": 20}, "state": "CA"}"#,
        ),
    ];
    let sets = people
        .iter()
        .map(|(key, value)| set(key, value.as_bytes(), None))
        .collect();
    f.store.bulk_set(sets).expect("seed");
    f.store
        .set(with_ttl(set("app||old", br#"{"state": "CA"}"#, None), 1))
        .expect("seed");
    std::thread::sleep(Duration::from_millis(1100));

    let mut run = |query: &str, token: Option<&str>| {
        let query = match token {
            Some(token) => query.replace("TOKEN", token),
            None => query.replace(", \"token\": \"TOKEN\"", ""),
        };
        let request = QueryRequest {
            query,
            key_prefix: "app||".into(),
            metadata: vec![],
        };
        let response = f.store.query(request).expect("query runs");
        let keys: Vec<String> = response
            .results
            .iter()
            .map(|r| r.key.trim_start_matches("app||").to_string())
            .collect();
        assert!(response.results.iter().all(|r| r.etag.is_some()));
        (keys.join(","), response.token)
    };
    // Each query and the keys it must return, in order. Sorting follows
    // jsonb: numbers before strings, missing fields last (first when DESC).
    let cases = [
        (r#"{"filter": {"EQ": {"state": "CA"}}}"#, "ann,cyd"),
        (r#"{"filter": {"NEQ": {"person.org": "dev"}}}"#, "bob,dee"),
        (r#"{"filter": {"GT": {"person.age": 9.5}}}"#, "bob,cyd"),
        (r#"{"filter": {"LTE": {"person.age": 10}}}"#, "ann,bob"),
        (
            r#"{"filter": {"IN": {"person.org": ["hr", "ops"]}}}"#,
            "bob,dee",
        ),
        (
            r#"{"filter": {"OR": [{"EQ": {"state": "NY"}}, {"AND": [{"EQ": {"person.org": "dev"}}, {"GTE": {"person.age": 31.5}}]}]}}"#,
            "cyd,dee",
        ),
        (
            r#"{"sort": [{"key": "person.age", "order": "DESC"}]}"#,
            "raw,cyd,bob,ann,dee",
        ),
        (
            r#"{"filter": {}, "sort": [{"key": "state"}, {"key": "person.age", "order": "DESC"}]}"#,
            "cyd,ann,dee,bob,raw",
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(run(query, None).0, expected, "{query}");
    }
    let paged = r#"{"filter": {"EQ": {"state": "CA"}}, "page": {"limit": 1, "token": "TOKEN"}}"#;
    assert_eq!(run(paged, None), ("ann".to_string(), Some("1".to_string())));
    assert_eq!(
        run(paged, Some("1")),
        ("cyd".to_string(), Some("2".to_string()))
    );
    assert_eq!(
        run(paged, Some("2")),
        (String::new(), Some("2".to_string()))
    );

    let raw = QueryRequest {
        query: r#"{"filter": {"EQ": {"x": 1}}, "page": {"limit": 5}}"#.into(),
        key_prefix: "app||raw".into(),
        metadata: vec![],
    };
    assert!(f.store.query(raw).expect("runs").results.is_empty());
    let all = QueryRequest {
        query: "{}".into(),
        key_prefix: "app||raw".into(),
        metadata: vec![],
    };
    let item = f
        .store
        .query(all)
        .expect("runs")
        .results
        .pop()
        .expect("the binary row");
    assert_eq!(item.value, b"not json".to_vec());
    let bad = QueryRequest {
        query: r#"{"filter": {"GT": {"a": "x"}}}"#.into(),
        key_prefix: String::new(),
        metadata: vec![],
    };
    assert!(matches!(f.store.query(bad), Err(Error::InvalidArgument(_))));
}
