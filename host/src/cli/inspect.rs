//! `outrig components inspect x.wasm`: what a component is (its world, the
//! interfaces it imports and exports) and what the resource YAML that loads
//! it grants, so an operator sees a component's reach before it runs.
//!
//! Compiling goes through the artifact cache in Outrig's home, so inspecting
//! a component the sidecar already ran costs no Cranelift work.

use super::InspectArgs;
use crate::config::resources::{self, ComponentResource};
use crate::config::settings;
use crate::runtime::{ArtifactCache, RuntimeEngine};
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

/// The worlds Outrig knows, by the interface a component of each exports.
const WORLDS: &[(&str, &str)] = &[
    ("outrig:component/state@", "outrig:component/state-store"),
    ("outrig:component/broker@", "outrig:component/pubsub"),
    (
        "wasi:keyvalue/store@",
        "wasi:keyvalue (served as a state store without ETags)",
    ),
];

/// What a component declares about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// The world it implements, if Outrig knows it.
    pub world: Option<&'static str>,
    /// The interfaces (and functions) it imports, sorted.
    pub imports: Vec<String>,
    /// The interfaces (and functions) it exports, sorted.
    pub exports: Vec<String>,
}

/// Prints the description of `args.wasm` and the grants of every component
/// in the resources directory that loads it.
pub async fn inspect(args: InspectArgs) -> anyhow::Result<i32> {
    let bytes = std::fs::read(&args.wasm)
        .with_context(|| format!("cannot read {}", args.wasm.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let engine = RuntimeEngine::new()?;
    let home = args.home.clone().unwrap_or_else(settings::default_home);
    let cache = ArtifactCache::new(Some(home.join("cache")));
    let compile_engine = engine.engine().clone();
    let key = sha256.clone();
    let (component, _) =
        tokio::task::spawn_blocking(move || cache.load(&compile_engine, &key, &bytes))
            .await
            .context("the compilation task failed")?
            .with_context(|| {
                format!(
                    "{} is not a valid WebAssembly component",
                    args.wasm.display()
                )
            })?;
    let description = describe(engine.engine(), &component);
    let dir = args
        .resources_path
        .clone()
        .unwrap_or_else(|| settings::DEFAULT_RESOURCES_PATH.into());
    let loaders = loaded_by(&dir, &args.wasm);
    print!("{}", render(&args.wasm, &sha256, &description, &loaders));
    Ok(0)
}

/// The world, imports and exports of a compiled component.
pub fn describe(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Description {
    let ty = component.component_type();
    let mut imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let mut exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    imports.sort();
    exports.sort();
    let world = WORLDS
        .iter()
        .find(|(interface, _)| exports.iter().any(|e| e.starts_with(interface)))
        .map(|(_, world)| *world);
    Description {
        world,
        imports,
        exports,
    }
}

/// The components in `dir` whose `spec.wasm` is `wasm`; none when the
/// directory cannot be read or does not exist.
fn loaded_by(dir: &Path, wasm: &Path) -> Vec<ComponentResource> {
    let Ok(target) = wasm.canonicalize() else {
        return Vec::new();
    };
    let Ok(scan) = resources::scan_dir(dir) else {
        return Vec::new();
    };
    scan.report
        .components
        .into_iter()
        .filter(|c| {
            c.wasm
                .as_ref()
                .and_then(|w| w.path.canonicalize().ok())
                .is_some_and(|path| path == target)
        })
        .collect()
}

/// The report: identity, world, imports and exports, then per loading
/// component what it is granted, with a note where an import has no grant.
pub fn render(
    wasm: &Path,
    sha256: &str,
    description: &Description,
    loaders: &[ComponentResource],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "component: {}", wasm.display());
    let _ = writeln!(out, "sha256:    {sha256}");
    let _ = writeln!(
        out,
        "world:     {}",
        description.world.unwrap_or("unknown to Outrig")
    );
    let _ = writeln!(out, "exports:");
    for export in &description.exports {
        let _ = writeln!(out, "  {export}");
    }
    let _ = writeln!(out, "imports:");
    for import in &description.imports {
        let _ = writeln!(out, "  {import}");
    }
    if loaders.is_empty() {
        let _ = writeln!(
            out,
            "granted:   no resource file names this .wasm; everything beyond clocks, random and logging is denied"
        );
    }
    let imports = |prefix: &str| description.imports.iter().any(|i| i.starts_with(prefix));
    for loader in loaders {
        let Some(wasm) = &loader.wasm else { continue };
        let caps = &wasm.capabilities;
        let _ = writeln!(
            out,
            "granted by `{}` ({}):",
            loader.name,
            loader.source.display()
        );
        let _ = writeln!(out, "  outbound:     {}", list_or_none(&caps.outbound));
        if caps.block_private_networks {
            let _ = writeln!(out, "                (private networks blocked)");
        }
        let _ = writeln!(out, "  http:         {}", list_or_none(&caps.http));
        let files: Vec<String> = caps
            .files
            .iter()
            .map(|f| {
                let mode = if f.read_only {
                    "read-only"
                } else {
                    "read-write"
                };
                format!("{} as {} ({mode})", f.host.display(), f.guest)
            })
            .collect();
        let _ = writeln!(out, "  files:        {}", list_or_none(&files));
        let _ = writeln!(out, "  memoryMiB:    {}", or_default(caps.memory_mib));
        let _ = writeln!(out, "  timeoutMs:    {}", or_default(caps.timeout_ms));
        let _ = writeln!(out, "  maxInstances: {}", or_default(caps.max_instances));
        let _ = writeln!(out, "  environment:  {}", list_or_none(&caps.env));
        let _ = writeln!(
            out,
            "  sha256 pin:   {}",
            match &wasm.sha256 {
                Some(pin) if pin == sha256 => "matches".to_owned(),
                Some(pin) => format!("MISMATCH (pinned {pin}): the load will be refused"),
                None => "none".to_owned(),
            }
        );
        if imports("wasi:sockets/") && caps.outbound.is_empty() {
            let _ = writeln!(
                out,
                "  note: imports wasi:sockets but no outbound address is granted; every connection will be refused"
            );
        }
        if imports("wasi:http/outgoing-handler") && caps.http.is_empty() {
            let _ = writeln!(
                out,
                "  note: imports wasi:http/outgoing-handler but no origin is granted; every request will be denied"
            );
        }
        if imports("wasi:filesystem/") && caps.files.is_empty() {
            let _ = writeln!(
                out,
                "  note: imports wasi:filesystem but no directory is granted; it sees no files"
            );
        }
    }
    out
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn or_default(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "default".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::builtin::TEST_VERSIONED_PATH;
    use crate::config::resources::{Capabilities, WasmSource};

    #[test]
    fn a_state_store_is_described_with_its_world_and_grants() {
        let wasm = Path::new(TEST_VERSIONED_PATH);
        let engine = RuntimeEngine::new().expect("engine");
        let bytes = std::fs::read(wasm).expect("test-versioned is built");
        let component =
            wasmtime::component::Component::new(engine.engine(), &bytes).expect("compile");
        let description = describe(engine.engine(), &component);
        assert_eq!(description.world, Some("outrig:component/state-store"));
        assert!(
            description
                .exports
                .iter()
                .any(|e| e.starts_with("outrig:component/lifecycle@")),
            "{description:?}"
        );
        assert!(
            description
                .imports
                .iter()
                .any(|i| i.starts_with("wasi:io/streams@")),
            "{description:?}"
        );
        let loader = ComponentResource {
            name: "mine".into(),
            namespace: None,
            component_type: "state.mine".into(),
            version: String::new(),
            metadata: Vec::new(),
            scopes: Vec::new(),
            wasm: Some(WasmSource {
                path: wasm.into(),
                sha256: Some("0".repeat(64)),
                capabilities: Capabilities {
                    outbound: vec!["tcp://db:5432".into()],
                    http: vec!["https://api.example.com".into(), "*.example.org".into()],
                    env: vec!["REGION".into()],
                    memory_mib: Some(32),
                    ..Capabilities::default()
                },
            }),
            source: "res/mine.yaml".into(),
        };
        let text = render(wasm, "ab", &description, &[loader]);
        for expected in [
            "world:     outrig:component/state-store",
            "granted by `mine` (res/mine.yaml):",
            "outbound:     tcp://db:5432",
            "files:        none",
            "http:         https://api.example.com, *.example.org",
            "environment:  REGION",
            "memoryMiB:    32",
            "timeoutMs:    default",
            "MISMATCH",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
        let alone = render(wasm, "ab", &description, &[]);
        assert!(
            alone.contains("no resource file names this .wasm"),
            "{alone}"
        );
    }
}
