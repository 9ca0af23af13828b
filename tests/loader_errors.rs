//! Components that cannot load are listed as failed in `/v1.0/metadata`, with
//! a message naming their file and the field at fault, while the others
//! serve; a resource file that is not valid YAML stops `outrig run` with a
//! message naming the file.

mod common;

use anyhow::ensure;
use common::{AppId, Launch, Resources, component_yaml};
use serde_json::json;
use std::path::Path;

/// A core WebAssembly module: valid wasm, but not a component.
const CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";
/// The smallest valid component: it exports nothing, so no world matches.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

/// One component that must fail to load.
struct Broken {
    /// Its name, and the stem of its YAML file.
    name: &'static str,
    /// Words the error must contain besides the file name: the field at fault.
    mentions: &'static [&'static str],
}

const BROKEN: &[Broken] = &[
    Broken {
        name: "unknown-type",
        mentions: &["spec.type", "state.nope"],
    },
    Broken {
        name: "wrong-sha",
        mentions: &["spec.wasm.sha256"],
    },
    Broken {
        name: "missing-wasm",
        mentions: &["spec.wasm.path"],
    },
    Broken {
        name: "core-module",
        mentions: &["spec.wasm", "component"],
    },
    Broken {
        name: "not-wasm",
        mentions: &["spec.wasm"],
    },
    Broken {
        name: "wrong-world",
        mentions: &["spec.type", "state-store"],
    },
    Broken {
        name: "wrong-block",
        mentions: &["spec.type", "pubsub"],
    },
    Broken {
        name: "secret-ref",
        mentions: &["spec.metadata", "secretKeyRef"],
    },
];

/// Writes every [`BROKEN`] component (and the wasm files they point at) into `resources`.
fn write_broken(resources: &Resources, scratch: &Path) {
    let hostile = Path::new(outrig::components::builtin::TEST_HOSTILE_PATH);
    let core = scratch.join("core.wasm");
    let not_wasm = scratch.join("not.wasm");
    let empty = scratch.join("empty.wasm");
    for (path, bytes) in [
        (&core, CORE_MODULE),
        (&not_wasm, b"hello, world".as_slice()),
        (&empty, EMPTY_COMPONENT),
    ] {
        std::fs::write(path, bytes)
            .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
    }
    let zeros = "0".repeat(64);
    resources
        .builtin("unknown-type", "state.nope", &[])
        .wasm("wrong-sha", "state.hostile", hostile, Some(&zeros), &[])
        .wasm("missing-wasm", "state.hostile", &scratch.join("absent.wasm"), None, &[])
        .wasm("core-module", "state.core", &core, None, &[])
        .wasm("not-wasm", "state.text", &not_wasm, None, &[])
        .wasm("wrong-world", "state.empty", &empty, None, &[])
        .wasm("wrong-block", "pubsub.hostile", hostile, None, &[])
        .file(
            "secret-ref.yaml",
            &component_yaml(
                "secret-ref",
                "  type: state.in-memory\n  version: v1\n  metadata:\n  - name: password\n    secretKeyRef:\n      name: db-secret\n      key: password\n",
            ),
        )
        .builtin("good", "state.in-memory", &[]);
}

#[tokio::test]
async fn broken_components_are_listed_as_failed_and_the_rest_serve() -> anyhow::Result<()> {
    let app = AppId::new("loader");
    let resources = Resources::new();
    let scratch = tempfile::tempdir()?;
    write_broken(&resources, scratch.path());
    let sc = Launch::new(&app)
        .resources(resources.path())
        .start()
        .await?;

    let mut failures = Vec::new();
    for broken in BROKEN {
        let component = sc.component_metadata(broken.name).await?;
        let error = component["error"].as_str().unwrap_or_default();
        let file = format!("{}.yaml", broken.name);
        if component["status"] != "failed" {
            failures.push(format!(
                "[{}] status is not `failed`: {component}",
                broken.name
            ));
        } else if let Some(missing) = std::iter::once(file.as_str())
            .chain(broken.mentions.iter().copied())
            .find(|word| !error.contains(word))
        {
            failures.push(format!(
                "[{}] the error does not mention `{missing}`: {component}",
                broken.name
            ));
        }
    }
    let good = sc.component_metadata("good").await?;
    if good["status"] == "failed" {
        failures.push(format!("[good] failed beside the broken ones: {good}"));
    }
    sc.put("good", "k", json!("v")).await?;
    ensure!(
        sc.value("good", "k").await? == Some(json!("v")),
        "the good store lost its value"
    );
    // A failed component is not a store one can use.
    let reply = sc.get_state("unknown-type", "k").await?;
    ensure!(
        reply.status >= 400,
        "{}",
        reply.describe("expected an error")
    );
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[tokio::test]
async fn invalid_yaml_stops_the_sidecar_naming_the_file() -> anyhow::Result<()> {
    let app = AppId::new("loader-yaml");
    let resources = Resources::new();
    resources.builtin("good", "state.in-memory", &[]).file(
        "broken-file.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: [unclosed\nspec: {type: state.in-memory\n",
    );
    let (status, output) = Launch::new(&app)
        .resources(resources.path())
        .run_to_exit()
        .await?;
    ensure!(
        !status.success(),
        "outrig started despite invalid YAML ({status}):\n{output}"
    );
    ensure!(
        output.contains("broken-file.yaml"),
        "the error does not name broken-file.yaml:\n{output}"
    );
    Ok(())
}
