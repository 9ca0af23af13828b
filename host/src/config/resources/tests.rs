//! Table-driven tests of the resource parser over inline YAML.
#![allow(clippy::unwrap_used)]

use super::*;

/// A `Component` document with `spec` given as indented YAML lines.
fn doc(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

fn parse(text: &str) -> Result<LoadReport, LoadErrors> {
    parse_str_report(text, Path::new("components/file.yaml"))
}

/// The field named by each error line for `text`, in order.
fn error_fields(text: &str) -> Vec<String> {
    error_lines(text)
        .iter()
        .map(|line| line.split(": ").nth(1).unwrap_or_default().to_owned())
        .collect()
}

/// The error lines for `text`, or a panic if it parses.
fn error_lines(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(report) => panic!("parsed, expected errors: {report:?}"),
        Err(errors) => errors.to_string().lines().map(str::to_owned).collect(),
    }
}

#[test]
fn a_full_component_is_read_into_the_typed_structs() {
    let text = doc(
        "statestore",
        r#"  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: port
    value: 6379
  - name: enableTLS
    value: false
  - name: ratio
    value: 0.5
  - name: empty
  - name: password
    secretKeyRef:
      name: redis-secret
      key: pw
  - name: token
    secretKeyRef:
      name: token-secret
  wasm:
    path: ../wasm/redis.wasm
    sha256: ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789
    capabilities:
      outbound: ["tcp://redis:6379", "localhost:6380"]
      http: ["https://api.example.com", "*.example.org:8443"]
      env: [REGION, LOG_FORMAT]
      files:
      - host: data
        guest: /data
        readOnly: false
      - host: /etc/certs
        guest: /certs
      memoryMiB: 64
      timeoutMs: 2000
      maxInstances: 8
scopes:
- app1
- app2
"#,
    )
    .replace(
        "metadata:\n  name: statestore",
        "metadata:\n  name: statestore\n  namespace: prod",
    );
    let report = parse(&text).unwrap();
    assert!(
        report.unknown_fields.is_empty(),
        "{:?}",
        report.unknown_fields
    );
    let plain = |name: &str, value: &str| MetadataEntry {
        name: name.into(),
        value: MetadataValue::Plain(value.into()),
    };
    let secret = |name: &str, secret: &str, key: &str| MetadataEntry {
        name: name.into(),
        value: MetadataValue::SecretRef {
            name: secret.into(),
            key: key.into(),
        },
    };
    let expected = ComponentResource {
        name: "statestore".into(),
        namespace: Some("prod".into()),
        component_type: "state.redis".into(),
        version: "v1".into(),
        metadata: vec![
            plain("redisHost", "localhost:6379"),
            plain("port", "6379"),
            plain("enableTLS", "false"),
            plain("ratio", "0.5"),
            plain("empty", ""),
            secret("password", "redis-secret", "pw"),
            secret("token", "token-secret", "token-secret"),
        ],
        scopes: vec!["app1".into(), "app2".into()],
        wasm: Some(WasmSource {
            path: PathBuf::from("components/../wasm/redis.wasm"),
            sha256: Some("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into()),
            capabilities: Capabilities {
                outbound: vec!["tcp://redis:6379".into(), "localhost:6380".into()],
                block_private_networks: false,
                http: vec![
                    "https://api.example.com".into(),
                    "*.example.org:8443".into(),
                ],
                env: vec!["REGION".into(), "LOG_FORMAT".into()],
                files: vec![
                    FileGrant {
                        host: PathBuf::from("components/data"),
                        guest: "/data".into(),
                        read_only: false,
                    },
                    FileGrant {
                        host: PathBuf::from("/etc/certs"),
                        guest: "/certs".into(),
                        read_only: true,
                    },
                ],
                memory_mib: Some(64),
                timeout_ms: Some(2000),
                max_instances: Some(8),
            },
        }),
        source: PathBuf::from("components/file.yaml"),
    };
    assert_eq!(report.components, vec![expected]);
}

#[test]
fn wasm_locations_resolve_against_the_yaml_directory() {
    let cases = [
        ("path: store.wasm", "components/store.wasm"),
        ("path: /opt/store.wasm", "/opt/store.wasm"),
        ("url: file:///opt/my%20store.wasm", "/opt/my store.wasm"),
        ("url: file://localhost/opt/store.wasm", "/opt/store.wasm"),
        ("url: file://wasm/store.wasm", "components/wasm/store.wasm"),
    ];
    for (location, expected) in cases {
        let text = doc(
            "s",
            &format!("  type: state.mine\n  wasm:\n    {location}\n"),
        );
        let report = parse(&text).unwrap_or_else(|e| panic!("{location}: {e}"));
        let wasm = report.components[0].wasm.clone().unwrap();
        assert_eq!(wasm.path, PathBuf::from(expected), "{location}");
        assert_eq!(wasm.capabilities, Capabilities::default());
    }
}

#[test]
fn every_error_names_the_file_and_the_field() {
    let file = "components/file.yaml";
    let cases: Vec<(String, &str)> = vec![
        (doc("s", "  version: v1\n"), "spec.type: missing"),
        (doc("s", "  type: redis\n"), "spec.type: `redis` is not of the form <block>.<name>"),
        (doc("s", "  type: state.\n"), "spec.type: `state.` is not of the form"),
        (doc("s", "  type: [state.redis]\n"), "spec.type: invalid type: sequence, expected a string at line 6"),
        (doc("\"\"", "  type: state.redis\n"), "metadata.name: missing"),
        (doc("bad/name", "  type: state.redis\n"), "metadata.name: `bad/name` is not a valid name"),
        (doc("-dash", "  type: state.redis\n"), "metadata.name: `-dash` is not a valid name"),
        (doc("a||b", "  type: state.redis\n"), "metadata.name: `a||b` is not a valid name"),
        (
            "kind: Component\nmetadata:\n  name: s\nspec:\n  type: state.redis\n".into(),
            "apiVersion: missing",
        ),
        (
            doc("s", "  type: state.redis\n").replace("dapr.io/v1alpha1", "dapr.io/v2"),
            "apiVersion: `dapr.io/v2` is not dapr.io/v1alpha1",
        ),
        ("apiVersion: dapr.io/v1alpha1\nmetadata:\n  name: s\n".into(), "kind: missing"),
        (doc("s", "  type: state.redis\n  metadata:\n  - value: x\n"), "spec.metadata[0].name: missing"),
        (
            doc("s", "  type: state.redis\n  metadata:\n  - name: a\n    value: x\n  - name: a\n    value: y\n"),
            "spec.metadata[1].name: duplicate `a` (also spec.metadata[0])",
        ),
        (
            doc("s", "  type: state.redis\n  metadata:\n  - name: a\n    value: x\n    secretKeyRef: {name: s}\n"),
            "spec.metadata[0]: has both value and secretKeyRef",
        ),
        (
            doc("s", "  type: state.redis\n  metadata:\n  - name: a\n    secretKeyRef: {key: k}\n"),
            "spec.metadata[0].secretKeyRef.name: missing",
        ),
        (doc("s", "  type: state.x\n  wasm:\n    sha256: abc\n"), "spec.wasm.path: missing"),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    sha256: abc\n"),
            "spec.wasm.sha256: not 64 hex digits",
        ),
        (
            doc("s", &format!("  type: state.x\n  wasm:\n    path: a.wasm\n    sha256: {}\n", "g".repeat(64))),
            "spec.wasm.sha256: not 64 hex digits",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    url: https://example.com/a.wasm\n"),
            "spec.wasm.url: `https://example.com/a.wasm`: only file:// URLs are supported",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    url: file:///a.wasm\n    path: a.wasm\n"),
            "spec.wasm: give either path or url, not both",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      outbound: [redis]\n"),
            "spec.wasm.capabilities.outbound[0]: `redis`: expected tcp://host:port",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      outbound: [\"http://redis:80\"]\n"),
            "spec.wasm.capabilities.outbound[0]: `http://redis:80`: expected tcp://host:port",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      http: [\"https://api.example.com/v1\"]\n"),
            "spec.wasm.capabilities.http[0]: `https://api.example.com/v1`: expected an origin such as https://api.example.com:443, without a path",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      http: [\"tcp://db:5432\"]\n"),
            "spec.wasm.capabilities.http[0]: `tcp://db:5432`: expected an origin such as https://api.example.com:443",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      env: [\"A=B\"]\n"),
            "spec.wasm.capabilities.env[0]: `A=B` is not an environment variable name",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      files: [{host: d, guest: data}]\n"),
            "spec.wasm.capabilities.files[0].guest: `data` is not an absolute path",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      files: [{guest: /data}]\n"),
            "spec.wasm.capabilities.files[0].host: missing",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      memoryMiB: 0\n"),
            "spec.wasm.capabilities.memoryMiB: must be at least 1",
        ),
        (
            doc("s", "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      timeoutMs: -5\n"),
            "spec.wasm.capabilities.timeoutMs: invalid type: integer `-5`, expected u64 at line 10",
        ),
        (doc("s", "  type: state.redis\nscopes: [\"\"]\n"), "scopes[0]: empty app id"),
        (
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: [unclosed\nspec: {type: state.in-memory\n".into(),
            "line 5 column",
        ),
    ];
    for (text, expected) in cases {
        let lines = error_lines(&text);
        let wanted = format!("{file}: {expected}");
        assert!(
            lines.iter().any(|line| line.starts_with(&wanted)
                || (line.starts_with(file) && line.contains(expected))),
            "wanted `{wanted}` in {lines:#?}\nfor:\n{text}"
        );
    }
}

#[test]
fn all_errors_of_a_document_are_reported_together() {
    let text = doc(
        "bad/name",
        "  metadata:\n  - value: x\n  wasm:\n    sha256: nope\n",
    );
    assert_eq!(
        error_fields(&text),
        vec![
            "metadata.name",
            "spec.type",
            "spec.metadata[0].name",
            "spec.wasm.path",
            "spec.wasm.sha256"
        ]
    );
}

#[test]
fn several_documents_other_kinds_and_empty_documents() {
    let text = [
        doc("a", "  type: state.redis\n"),
        "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: sub\nspec:\n  topic: t\n  routes: {default: /t}\n  pubsubname: p\n".into(),
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: r\nspec:\n  policies: {}\n".into(),
        doc("b", "  type: pubsub.nats\n"),
        String::new(),
    ]
    .join("\n---\n");
    let report = parse(&text).unwrap();
    let names: Vec<&str> = report.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
    let subscriptions: Vec<&str> = report
        .subscriptions
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(subscriptions, vec!["sub"]);

    // With several documents, errors say which one.
    let broken = format!(
        "{}\n---\n{}",
        doc("a", "  type: state.redis\n"),
        doc("b", "  version: v1\n")
    );
    assert_eq!(
        error_lines(&broken),
        vec!["components/file.yaml (document 2): spec.type: missing"]
    );
}

#[test]
fn unknown_fields_are_kept_and_reported_not_fatal() {
    let text = doc(
        "s",
        "  type: state.redis\n  ignoreErrors: true\n  metadata:\n  - name: a\n    value: x\n    secretKeyRf: {name: oops}\n  wasm:\n    path: a.wasm\n    capabilities:\n      memoryMB: 5\n",
    )
    .replace("kind: Component\n", "kind: Component\nauth:\n  secretStore: vault\n");
    let report = parse(&text).unwrap();
    let fields: Vec<(&str, &str)> = report
        .unknown_fields
        .iter()
        .map(|u| (u.field.as_str(), u.value.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("auth", "secretStore: vault"),
            ("spec.ignoreErrors", "true"),
            ("spec.metadata[0].secretKeyRf", "name: oops"),
            ("spec.wasm.capabilities.memoryMB", "5"),
        ]
    );
    assert!(
        report
            .unknown_fields
            .iter()
            .all(|u| u.file == Path::new("components/file.yaml"))
    );
    assert_eq!(report.components.len(), 1);
}

#[test]
fn load_dir_reads_yaml_files_and_reports_every_file_together() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("a.yaml", &doc("one", "  type: state.redis\n"));
    write("b.yml", &doc("two", "  type: state.redb\n"));
    write("notes.txt", "not yaml at all: [");
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    std::fs::write(
        dir.path().join("nested/c.yaml"),
        doc("three", "  type: state.x\n"),
    )
    .unwrap();
    let names: Vec<String> = load_dir(dir.path())
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["one", "two"]);

    write("c.yaml", &doc("one", "  type: state.redis\n"));
    write("d.yaml", &doc("four", "  version: v1\n"));
    write("e.yaml", "kind: Component\nmetadata: {name: [\n");
    let errors = load_dir(dir.path()).unwrap_err();
    let text = errors.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].ends_with("d.yaml: spec.type: missing"), "{text}");
    assert!(lines[1].contains("e.yaml: "), "{text}");
    assert!(
        lines[2]
            .ends_with("c.yaml: metadata.name: duplicate component name `one` (first defined in ")
            || lines[2].contains(
                "c.yaml: metadata.name: duplicate component name `one` (first defined in"
            ),
        "{text}"
    );
    assert!(lines[2].contains("a.yaml"), "{text}");
}

#[test]
fn a_missing_directory_is_one_clear_error() {
    let errors = load_dir(Path::new("/definitely/not/here")).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert!(
        errors
            .to_string()
            .starts_with("/definitely/not/here: cannot read the directory"),
        "{errors}"
    );
}

#[test]
fn outbound_port_ranges_and_private_network_blocking_are_read() {
    let text = doc(
        "s",
        "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      outbound: [\"tcp://db:5432-5434\"]\n      blockPrivateNetworks: true\n",
    );
    let report = parse(&text).unwrap();
    assert!(
        report.unknown_fields.is_empty(),
        "{:?}",
        report.unknown_fields
    );
    let caps = &report.components[0].wasm.as_ref().unwrap().capabilities;
    assert_eq!(caps.outbound, ["tcp://db:5432-5434"]);
    assert!(caps.block_private_networks);
    let lines = error_lines(&doc(
        "s",
        "  type: state.x\n  wasm:\n    path: a.wasm\n    capabilities:\n      outbound: [\"tcp://a.*.db:1\", \"db:9-1\"]\n",
    ));
    assert!(
        lines[0].contains("outbound[0]") && lines[0].contains("leftmost label"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("outbound[1]") && lines[1].contains("range"),
        "{lines:?}"
    );
}

/// A `Subscription` document of `version` (`v1alpha1` or `v2alpha1`) with
/// `spec` given as indented YAML lines.
fn subscription_doc(version: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: dapr.io/{version}\nkind: Subscription\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

#[test]
fn a_v2_subscription_is_read_with_its_rules_default_and_scopes() {
    use crate::blocks::pubsub::subscription::{
        BulkSubscribe, RouteRule, Routes, SubscriptionKind, SubscriptionSpec,
    };
    let text = subscription_doc(
        "v2alpha1",
        "inventory-sub",
        r#"  pubsubname: pubsub
  topic: inventory
  routes:
    rules:
    - match: event.type == "widget"
      path: /widgets
    - match: event.type == "gadget"
      path: gadgets
    default: /products
  metadata:
    rawPayload: true
    maxRetries: 3
  deadLetterTopic: poison
  bulkSubscribe:
    enabled: true
    maxMessagesCount: 50
scopes:
- orders
- billing
"#,
    )
    .replace(
        "  name: inventory-sub",
        "  name: inventory-sub\n  namespace: prod",
    );
    let report = parse(&text).unwrap();
    assert!(
        report.unknown_fields.is_empty(),
        "{:?}",
        report.unknown_fields
    );
    assert!(report.components.is_empty());
    assert_eq!(
        report.subscriptions,
        vec![SubscriptionResource {
            name: "inventory-sub".into(),
            namespace: Some("prod".into()),
            spec: SubscriptionSpec {
                pubsub_name: "pubsub".into(),
                topic: "inventory".into(),
                routes: Routes {
                    rules: vec![
                        RouteRule {
                            condition: r#"event.type == "widget""#.into(),
                            path: "/widgets".into(),
                        },
                        RouteRule {
                            condition: r#"event.type == "gadget""#.into(),
                            path: "gadgets".into(),
                        },
                    ],
                    default: Some("/products".into()),
                },
                metadata: [
                    ("maxRetries".to_owned(), "3".to_owned()),
                    ("rawPayload".to_owned(), "true".to_owned()),
                ]
                .into(),
                dead_letter_topic: Some("poison".into()),
                bulk: Some(BulkSubscribe {
                    max_messages: 50,
                    max_await_ms: 1000,
                }),
                origin: "components/file.yaml: Subscription inventory-sub".into(),
                kind: SubscriptionKind::Declarative,
            },
            scopes: vec!["orders".into(), "billing".into()],
            source: PathBuf::from("components/file.yaml"),
        }]
    );
    assert!(report.subscriptions[0].spec.raw_payload());
}

#[test]
fn a_v1_subscription_routes_everything_to_its_route() {
    let text = subscription_doc(
        "v1alpha1",
        "orders-sub",
        "  pubsubname: pubsub\n  topic: orders\n  route: /checkout\n  bulkSubscribe:\n    enabled: false\n    maxMessagesCount: 10\n",
    );
    let report = parse(&text).unwrap();
    let spec = &report.subscriptions[0].spec;
    assert_eq!(spec.routes.rules, vec![]);
    assert_eq!(spec.routes.default.as_deref(), Some("/checkout"));
    assert_eq!(spec.bulk, None);
    assert_eq!(spec.dead_letter_topic, None);
    assert!(report.subscriptions[0].scopes.is_empty());
    assert_eq!(spec.origin, "components/file.yaml: Subscription orders-sub");
}

#[test]
fn every_subscription_error_names_the_file_and_the_field() {
    let v1 = |spec: &str| subscription_doc("v1alpha1", "s", spec);
    let v2 = |spec: &str| subscription_doc("v2alpha1", "s", spec);
    let cases: Vec<(String, &str)> = vec![
        (v1("  topic: t\n  route: /t\n"), "spec.pubsubname: missing"),
        (v1("  pubsubname: p\n  route: /t\n"), "spec.topic: missing"),
        (
            v1("  pubsubname: p\n  topic: \"\"\n  route: /t\n"),
            "spec.topic: missing",
        ),
        (v1("  pubsubname: p\n  topic: t\n"), "spec.route: missing"),
        (v2("  pubsubname: p\n  topic: t\n"), "spec.routes: missing"),
        (
            v2("  pubsubname: p\n  topic: t\n  routes: {}\n"),
            "spec.routes: no rules and no default",
        ),
        // v1's `route` does not count in v2alpha1 (it is warned as unknown).
        (
            v2("  pubsubname: p\n  topic: t\n  route: /t\n"),
            "spec.routes: missing",
        ),
        (
            v2(
                "  pubsubname: p\n  topic: t\n  routes:\n    rules:\n    - match: event.type == 'a'\n",
            ),
            "spec.routes.rules[0].path: missing",
        ),
        (
            v2(
                "  pubsubname: p\n  topic: t\n  routes:\n    default: /d\n    rules:\n    - match: event.type ==\n      path: /a\n",
            ),
            "spec.routes.rules[0].match: `event.type ==`: 1:14:",
        ),
        (
            v2(
                "  pubsubname: p\n  topic: t\n  routes:\n    rules:\n    - {match: \"evnt.type == 'a'\", path: /a}\n",
            ),
            "spec.routes.rules[0].match: `evnt.type == 'a'`: unknown variable `evnt`",
        ),
        (
            v2("  pubsubname: p\n  topic: t\n  routes:\n    rules: {match: x}\n"),
            "spec.routes.rules: invalid type: map, expected a sequence at line",
        ),
        (
            v1("  pubsubname: p\n  topic: t\n  route: /t\n  metadata:\n    nested: {a: 1}\n"),
            "spec.metadata.nested: expected a string, number or boolean",
        ),
        (
            v1(
                "  pubsubname: p\n  topic: t\n  route: /t\n  metadata:\n  - name: a\n    value: b\n",
            ),
            "spec.metadata: invalid type: sequence, expected a map at line",
        ),
        (
            v1(
                "  pubsubname: p\n  topic: t\n  route: /t\n  bulkSubscribe:\n    enabled: true\n    maxMessagesCount: -1\n",
            ),
            "spec.bulkSubscribe.maxMessagesCount: -1 is out of range",
        ),
        (
            v1(
                "  pubsubname: p\n  topic: t\n  route: /t\n  bulkSubscribe:\n    enabled: true\n    maxAwaitDurationMs: 3000000000\n",
            ),
            "spec.bulkSubscribe.maxAwaitDurationMs: 3000000000 is out of range",
        ),
        (
            v1("  pubsubname: p\n  topic: t\n  route: /t\n  bulkSubscribe:\n    enabled: yes\n"),
            "spec.bulkSubscribe.enabled: invalid type: string \"yes\", expected a boolean",
        ),
        (
            v1(
                "  pubsubname: p\n  topic: t\n  route: /t\n  bulkSubscribe:\n    maxMessagesCount: many\n",
            ),
            "spec.bulkSubscribe.maxMessagesCount: invalid type: string \"many\", expected i64",
        ),
        (
            // The list form of an old Dapr docs example.
            v1("  pubsubname: p\n  topic: t\n  route: /t\n  bulkSubscribe:\n  - enabled: true\n"),
            "spec.bulkSubscribe: invalid type: sequence, expected struct RawBulkSubscribe",
        ),
        (
            v1("  pubsubname: p\n  topic: t\n  route: /t\nscopes: [\"\"]\n"),
            "scopes[0]: empty app id",
        ),
        (
            subscription_doc(
                "v1alpha1",
                "bad/name",
                "  pubsubname: p\n  topic: t\n  route: /t\n",
            ),
            "metadata.name: `bad/name` is not a valid name",
        ),
        (
            v1("  pubsubname: p\n  topic: t\n  route: /t\n")
                .replace("dapr.io/v1alpha1", "dapr.io/v3"),
            "apiVersion: `dapr.io/v3` is not dapr.io/v2alpha1 or dapr.io/v1alpha1",
        ),
    ];
    let file = "components/file.yaml";
    for (text, expected) in cases {
        let lines = error_lines(&text);
        let wanted = format!("{file}: {expected}");
        assert!(
            lines.iter().any(|line| line.starts_with(&wanted)),
            "wanted `{wanted}` in {lines:#?}\nfor:\n{text}"
        );
    }
}

#[test]
fn all_errors_of_a_subscription_are_reported_together() {
    let text = subscription_doc(
        "v2alpha1",
        "",
        "  routes:\n    rules:\n    - match: \"1 +\"\n  bulkSubscribe: {enabled: true, maxMessagesCount: -5}\nscopes: [\" \"]\n",
    );
    assert_eq!(
        error_fields(&text),
        vec![
            "metadata.name",
            "spec.pubsubname",
            "spec.topic",
            "spec.routes.rules[0].match",
            "spec.routes.rules[0].path",
            "spec.routes",
            "spec.bulkSubscribe.maxMessagesCount",
            "scopes[0]",
        ]
    );
}

#[test]
fn unknown_subscription_fields_are_kept_and_reported_by_version() {
    let v2 = subscription_doc(
        "v2alpha1",
        "s",
        "  pubsubname: p\n  topic: t\n  route: /old\n  routes:\n    default: /d\n    rules:\n    - match: \"true\"\n      path: /a\n      priority: 1\n  bulkSubscribe: {enabled: true, maxMessages: 5}\n  metadata: {anything: goes}\n",
    );
    let report = parse(&v2).unwrap();
    let fields: Vec<(&str, &str)> = report
        .unknown_fields
        .iter()
        .map(|u| (u.field.as_str(), u.value.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("spec.routes.rules[0].priority", "1"),
            ("spec.bulkSubscribe.maxMessages", "5"),
            ("spec.route", "/old"),
        ]
    );
    let v1 = subscription_doc(
        "v1alpha1",
        "s",
        "  pubsubname: p\n  topic: t\n  route: /t\n  routes: {default: /d}\n",
    );
    let report = parse(&v1).unwrap();
    let fields: Vec<&str> = report
        .unknown_fields
        .iter()
        .map(|u| u.field.as_str())
        .collect();
    assert_eq!(fields, vec!["spec.routes"]);
    // v1alpha1 ignores `routes`, as Dapr does.
    assert_eq!(
        report.subscriptions[0].spec.routes.default.as_deref(),
        Some("/t")
    );
}

#[test]
fn subscription_names_are_unique_across_files_but_may_match_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let sub = |name: &str, topic: &str| {
        subscription_doc(
            "v1alpha1",
            name,
            &format!("  pubsubname: pubsub\n  topic: {topic}\n  route: /{topic}\n"),
        )
    };
    write(
        "a.yaml",
        &format!(
            "{}\n---\n{}",
            doc("orders", "  type: pubsub.in-memory\n"),
            sub("orders", "a")
        ),
    );
    write("b.yaml", &sub("orders", "b"));
    let scan = scan_dir(dir.path()).unwrap();
    let topics: Vec<&str> = scan
        .report
        .subscriptions
        .iter()
        .map(|s| s.spec.topic.as_str())
        .collect();
    assert_eq!(topics, vec!["a"]);
    assert_eq!(scan.report.components.len(), 1);
    let text = scan.errors.to_string();
    assert!(
        text.contains(
            "b.yaml: metadata.name: duplicate subscription name `orders` (first defined in "
        ) && text.contains("a.yaml)"),
        "{text}"
    );
    assert_eq!(scan.errors.0.len(), 1, "{text}");
}

#[test]
fn a_broken_subscription_fails_its_file_like_a_broken_component() {
    let text = format!(
        "{}\n---\n{}",
        doc("store", "  type: state.in-memory\n"),
        subscription_doc("v1alpha1", "s", "  pubsubname: p\n  topic: t\n")
    );
    assert_eq!(
        error_lines(&text),
        vec!["components/file.yaml (document 2): spec.route: missing"]
    );
}

/// A `Resiliency` document with `spec` given as indented YAML lines.
fn resiliency_doc(spec: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: policy\nspec:\n{spec}scopes:\n  - checkout\n"
    )
}

#[test]
fn a_resiliency_gives_each_component_its_inbound_retry_policy() {
    use crate::blocks::resiliency::{RetryBackoff, RetryPolicy};
    use std::time::Duration;
    let text = resiliency_doc(
        r#"  policies:
    timeouts:
      general: 5s
    retries:
      quick:
        policy: constant
        duration: 50ms
        maxRetries: 3
      patient:
        policy: exponential
        maxInterval: 1m30s
    circuitBreakers:
      cb:
        maxRequests: 1
  targets:
    apps:
      other:
        retry: quick
    components:
      orders-pubsub:
        inbound:
          retry: quick
        outbound:
          retry: patient
      events:
        inbound:
          retry: patient
"#,
    );
    let report = parse(&text).unwrap();
    assert!(
        report.unknown_fields.is_empty(),
        "{:?}",
        report.unknown_fields
    );
    let resource = &report.resiliencies[0];
    assert_eq!(resource.name, "policy");
    assert_eq!(resource.scopes, ["checkout"]);
    assert_eq!(
        resource.inbound_retries.get("orders-pubsub"),
        Some(&RetryPolicy {
            backoff: RetryBackoff::Constant(Duration::from_millis(50)),
            max_retries: Some(3),
        })
    );
    assert_eq!(
        resource.inbound_retries.get("events"),
        Some(&RetryPolicy {
            backoff: RetryBackoff::Exponential(Duration::from_secs(90)),
            max_retries: None,
        })
    );
}

#[test]
fn resiliency_errors_name_their_fields() {
    let text = resiliency_doc(
        r#"  policies:
    retries:
      odd:
        policy: linear
      slow:
        duration: soon
        maxRetries: -5
  targets:
    components:
      pubsub:
        inbound:
          retry: missing
"#,
    );
    assert_eq!(
        error_fields(&text),
        [
            "spec.policies.retries.odd.policy",
            "spec.policies.retries.slow.duration",
            "spec.policies.retries.slow.maxRetries",
            "spec.targets.components.pubsub.inbound.retry",
        ]
    );
}
