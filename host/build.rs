//! Builds the built-in components in `components-wasm/` for wasm32-wasip2 with
//! a nested cargo, and emits constants that embed them in the binary, so that
//! `cargo build` alone produces one self-contained `outrig`.
//!
//! Set `OUTRIG_SKIP_GUEST_BUILD=1` to skip the nested build (for tools that run
//! build scripts but never the binary); the embedded components are then empty.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// Components embedded in the binary: (constant name, crate name).
const EMBEDDED: &[(&str, &str)] = &[
    ("STATE_IN_MEMORY", "state-in-memory"),
    ("STATE_REDB", "state-redb"),
    ("STATE_REDIS", "state-redis"),
    ("STATE_POSTGRESQL", "state-postgresql"),
    ("PUBSUB_IN_MEMORY", "pubsub-in-memory"),
    ("PUBSUB_REDIS", "pubsub-redis"),
    ("PUBSUB_NATS", "pubsub-nats"),
    ("PUBSUB_MQTT", "pubsub-mqtt"),
    ("PUBSUB_RABBITMQ", "pubsub-rabbitmq"),
];

/// Test-only components: their paths are exported, their bytes are not embedded.
const TEST_ONLY: &[(&str, &str)] = &[
    ("TEST_HOSTILE", "test-hostile"),
    ("TEST_VERSIONED", "test-versioned"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let guests = root.join("components-wasm");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-env-changed=OUTRIG_SKIP_GUEST_BUILD");
    for watched in [
        guests.join("Cargo.toml"),
        guests.join("Cargo.lock"),
        root.join("wit"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }

    let skip = env::var("OUTRIG_SKIP_GUEST_BUILD").is_ok_and(|v| v == "1");
    let artifacts = if skip {
        None
    } else {
        Some(build_guests(&guests))
    };
    write_constants(&out_dir.join("guests.rs"), artifacts.as_deref());
    compile_protos(&root.join("proto"), &out_dir);
}

fn build_guests(guests: &Path) -> PathBuf {
    ensure_target_installed();
    // A target dir of its own: the nested cargo never waits on the outer build's lock.
    let target_dir = guests.join("target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // Host flags (coverage, sanitizers, target-cpu) must not leak into the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("could not run cargo to build the guest components");
    if !output.status.success() {
        panic!(
            "building components-wasm for {TARGET} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let artifacts = target_dir.join(TARGET).join("release");
    watch_sources(&artifacts);
    artifacts
}

fn ensure_target_installed() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot.is_some_and(|s| s.join("lib/rustlib").join(TARGET).exists());
    if !installed {
        panic!("the {TARGET} target is missing: run `rustup target add {TARGET}`");
    }
}

/// Re-run when any source a guest was built from changes, as listed in the
/// dep-info files cargo writes next to the artifacts.
fn watch_sources(artifacts: &Path) {
    for (_, krate) in EMBEDDED.iter().chain(TEST_ONLY) {
        let dep_info = artifacts.join(format!("{}.d", krate.replace('-', "_")));
        let Ok(text) = std::fs::read_to_string(&dep_info) else {
            continue;
        };
        for line in text.lines() {
            let Some((_, deps)) = line.split_once(": ") else {
                continue;
            };
            for dep in deps.split_whitespace() {
                if !dep.contains("/.cargo/registry/") {
                    println!("cargo:rerun-if-changed={dep}");
                }
            }
        }
    }
}

fn write_constants(path: &Path, artifacts: Option<&Path>) {
    let mut code = String::new();
    let wasm = |krate: &str| artifacts.map(|a| a.join(format!("{}.wasm", krate.replace('-', "_"))));
    for (name, krate) in EMBEDDED {
        let _ = writeln!(code, "/// The built-in `{krate}` component.");
        match wasm(krate) {
            Some(file) => {
                let _ = writeln!(
                    code,
                    "pub const {name}: &[u8] = include_bytes!({:?});",
                    file
                );
            }
            None => {
                let _ = writeln!(code, "pub const {name}: &[u8] = &[];");
            }
        }
    }
    for (name, krate) in TEST_ONLY {
        let file = wasm(krate)
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        let _ = writeln!(code, "/// Path of the test-only `{krate}` component.");
        let _ = writeln!(code, "pub const {name}_PATH: &str = {file:?};");
    }
    std::fs::write(path, code).expect("writing guests.rs");
}

// ---------------------------------------------------------------------------
// gRPC: Dapr's runtime v1 API
// ---------------------------------------------------------------------------

/// The proto files the gRPC API is generated from (their imports follow).
const PROTOS: &[&str] = &[
    "dapr/proto/runtime/v1/dapr.proto",
    "dapr/proto/runtime/v1/appcallback.proto",
];

/// Compiles `proto/` with protox (pure Rust: no `protoc` to install) and
/// generates the tonic servers and clients from it. The encoded descriptor
/// set is written beside the code as `dapr_descriptor.bin`, so tests can check
/// the wire contract against Dapr's own descriptors.
fn compile_protos(proto_dir: &Path, out_dir: &Path) {
    use prost::Message as _;
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    let descriptors = protox::compile(PROTOS, [proto_dir])
        .unwrap_or_else(|err| panic!("compiling {}: {err:?}", proto_dir.display()));
    std::fs::write(
        out_dir.join("dapr_descriptor.bin"),
        descriptors.encode_to_vec(),
    )
    .expect("writing dapr_descriptor.bin");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)
        .unwrap_or_else(|err| {
            panic!(
                "generating the gRPC code from {}: {err}",
                proto_dir.display()
            )
        });
}
