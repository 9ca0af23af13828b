//! Loading a Dapr `Component` resource: resolve its metadata, find its wasm
//! (built-in or `spec.wasm`), verify, compile (through the artifact cache),
//! grant capabilities, start its instance pool and `init` it.
//!
//! Every failure names the resource file and the field at fault.

use super::builtin::{self, Metadata};
use super::pubsub::WasmBroker;
use super::state::WasmStateStore;
use crate::blocks::catalog::{CatalogEntry, ComponentInfo, LoadStatus};
use crate::blocks::pubsub::Broker;
use crate::blocks::state::StateStore;
use crate::config::resources::{ComponentResource, MetadataValue};
use crate::runtime::RuntimeEngine;
use crate::runtime::cache::ArtifactCache;
use crate::runtime::grants::{CapabilityGrant, PreopenGrant};
use crate::runtime::http::HttpAllowlist;
use crate::runtime::instance::InstanceState;
use crate::runtime::outbound;
use crate::runtime::pool::{InstancePool, PoolSettings, PooledWorld};
use anyhow::{Context, anyhow, bail};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};

/// Defaults for what a component may use when its YAML does not say.
const DEFAULT_MEMORY_MIB: u64 = 128;
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MAX_INSTANCES: usize = 4;
/// Callers that may queue per component before calls are refused as overloaded.
const MAX_WAITING: usize = 4096;

/// Where a load happens: which app, where data and relative paths live.
#[derive(Debug, Clone)]
pub struct LoadContext {
    /// The app id.
    pub app_id: String,
    /// The component being loaded (set per component).
    pub component_name: String,
    /// Directory the resource file lives in, for relative paths.
    pub base_dir: PathBuf,
    /// Root of durable data for embedded stores (`~/.outrig/data/<app-id>`).
    pub data_dir: PathBuf,
}

impl LoadContext {
    /// `path` resolved against the resource file's directory.
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        LoadContext {
            app_id: "test".into(),
            component_name: "c".into(),
            base_dir: std::env::temp_dir(),
            data_dir: std::env::temp_dir(),
        }
    }
}

/// The building blocks a component can implement, by the first part of its
/// `spec.type`.
enum Block {
    State,
    PubSub,
}

/// A loaded component behind its building block's trait.
enum Served {
    State(Arc<dyn StateStore>),
    PubSub(Arc<dyn Broker>),
}

/// Everything needed to turn resources into running components: the engine,
/// the artifact cache and the linker (every world imports the same host
/// interfaces, so one linker serves them all).
pub struct ComponentHost {
    engine: RuntimeEngine,
    cache: ArtifactCache,
    linker: Linker<InstanceState>,
    /// Compiled components by sha256, so components sharing a `.wasm` (two
    /// in-memory stores, a reload that keeps the bytes) share one copy of
    /// the machine code instead of deserializing it again.
    pub(super) compiled: Mutex<HashMap<String, Component>>,
}

/// How many distinct compiled components are kept for sharing; past this the
/// table is emptied (entries still in use stay alive through their pools).
const MAX_SHARED_COMPILED: usize = 64;

impl ComponentHost {
    /// A host over `engine`, caching compiled artifacts in `cache`.
    pub fn new(engine: RuntimeEngine, cache: ArtifactCache) -> anyhow::Result<Self> {
        let mut linker = Linker::new(engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // Every component may import wasi:http; what it may reach is its grant
        // (see `runtime::http`), and one that does not import it is unaffected.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::runtime::lookup::add_to_linker(&mut linker)?;
        crate::bindings::state_store::StateStore::add_to_linker::<_, HasSelf<_>>(
            &mut linker,
            |state| state,
        )?;
        Ok(ComponentHost {
            engine,
            cache,
            linker,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// Loads one component. Never fails: a component that cannot load is
    /// returned as a catalog entry with [`LoadStatus::Failed`] and the reason,
    /// so it is visible in `/v1.0/metadata` while the rest keep serving.
    pub async fn load(&self, resource: &ComponentResource, ctx: &LoadContext) -> CatalogEntry {
        let source = resource.source.display().to_string();
        let mut info = ComponentInfo {
            name: resource.name.clone(),
            component_type: resource.component_type.clone(),
            version: resource.version.clone(),
            features: Vec::new(),
            status: LoadStatus::Loaded,
            sha256: None,
            source: source.clone(),
            grants: Vec::new(),
        };
        let mut ctx = ctx.clone();
        ctx.component_name = resource.name.clone();
        match self.try_load(resource, &ctx, &mut info).await {
            Ok(served) => {
                tracing::info!(
                    component = %info.name,
                    r#type = %info.component_type,
                    version = %info.version,
                    sha256 = info.sha256.as_deref().unwrap_or(""),
                    features = ?info.features,
                    grants = %info.grants.join(", "),
                    "component loaded"
                );
                let (state, pubsub) = match served {
                    Served::State(store) => (Some(store), None),
                    Served::PubSub(broker) => (None, Some(broker)),
                };
                CatalogEntry {
                    info,
                    state,
                    pubsub,
                }
            }
            Err(err) => {
                let message =
                    one_line(&format!("{source}: component `{}`: {err:#}", resource.name));
                tracing::error!("{message}");
                info.status = LoadStatus::Failed(message);
                CatalogEntry::failed(info)
            }
        }
    }

    async fn try_load(
        &self,
        resource: &ComponentResource,
        ctx: &LoadContext,
        info: &mut ComponentInfo,
    ) -> anyhow::Result<Served> {
        let block = resource
            .component_type
            .split_once('.')
            .map(|(block, _)| block)
            .unwrap_or_default();
        let kind = match block {
            "state" => Block::State,
            "pubsub" => Block::PubSub,
            _ => bail!(
                "spec.type: building block `{block}` is not supported yet (type `{}`)",
                resource.component_type
            ),
        };
        let mut metadata = resolve_metadata(resource)?;
        let Sourced {
            wasm,
            grant,
            sizing,
            shown,
        } = self.source(resource, ctx, &mut metadata).await?;
        info.grants = shown;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        info.sha256 = Some(sha256.clone());

        let component = self.compile(resource, sha256, wasm).await?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the component imports something Outrig does not provide")?;
        let settings = PoolSettings {
            max_instances: sizing.max_instances,
            max_waiting: MAX_WAITING,
        };
        let start = PoolStart {
            resource,
            instance_pre,
            grant,
            metadata,
            settings,
        };
        Ok(match kind {
            Block::State => {
                let pool = self
                    .start_pool::<crate::bindings::state_store::StateStore>(start, "state-store")
                    .await?;
                let store = WasmStateStore::new(pool)
                    .await
                    .map_err(|err| anyhow!("{err}"))?;
                info.features = StateStore::features(&store);
                Served::State(Arc::new(store))
            }
            Block::PubSub => {
                let pool = self
                    .start_pool::<crate::bindings::pubsub::Pubsub>(start, "pubsub")
                    .await?;
                Served::PubSub(Arc::new(WasmBroker::new(
                    pool,
                    sizing.sticky_pulls,
                    sizing.volatile_messages,
                )))
            }
        })
    }

    /// Type-checks the component against world `W` and starts its pool.
    async fn start_pool<W: PooledWorld>(
        &self,
        start: PoolStart<'_>,
        world: &str,
    ) -> anyhow::Result<InstancePool<W>> {
        let resource = start.resource;
        let pre = W::prepare(start.instance_pre).map_err(|err| {
            anyhow!(
                "spec.type: `{}` needs the `{world}` world, but the component does not implement it: {err:#}",
                resource.component_type
            )
        })?;
        InstancePool::start(
            &resource.name,
            self.engine.engine(),
            pre,
            start.grant,
            start.metadata,
            start.settings,
        )
        .await
        .map_err(|err| anyhow!("{err}"))
    }

    /// The compiled form of `wasm`: shared if this process has it already,
    /// else from the artifact cache or Cranelift, off the async threads.
    async fn compile(
        &self,
        resource: &ComponentResource,
        sha256: String,
        wasm: Vec<u8>,
    ) -> anyhow::Result<Component> {
        if let Some(component) = self.shared_compiled(&sha256) {
            return Ok(component);
        }
        let engine = self.engine.engine().clone();
        let cache = self.cache.clone();
        let key = sha256.clone();
        let (component, _) = tokio::task::spawn_blocking(move || cache.load(&engine, &key, &wasm))
            .await
            .context("compilation task failed")?
            .with_context(|| match &resource.wasm {
                Some(wasm) => format!(
                    "spec.wasm.path: {} is not a valid WebAssembly component",
                    wasm.path.display()
                ),
                None => "the built-in component is not a valid WebAssembly component".into(),
            })?;
        if let Ok(mut compiled) = self.compiled.lock() {
            if compiled.len() >= MAX_SHARED_COMPILED {
                compiled.clear();
            }
            compiled.insert(sha256, component.clone());
        }
        Ok(component)
    }

    fn shared_compiled(&self, sha256: &str) -> Option<Component> {
        self.compiled.lock().ok()?.get(sha256).cloned()
    }

    /// The component's bytes, its grant and how its instances are pooled.
    async fn source(
        &self,
        resource: &ComponentResource,
        ctx: &LoadContext,
        metadata: &mut Vec<(String, String)>,
    ) -> anyhow::Result<Sourced> {
        if let Some(wasm) = &resource.wasm {
            let bytes = std::fs::read(&wasm.path)
                .with_context(|| format!("spec.wasm.path: cannot read {}", wasm.path.display()))?;
            if let Some(expected) = &wasm.sha256 {
                let actual = hex::encode(Sha256::digest(&bytes));
                if !actual.eq_ignore_ascii_case(expected) {
                    bail!(
                        "spec.wasm.sha256: {} has sha256 {actual}, but {expected} is required",
                        wasm.path.display()
                    );
                }
            }
            let caps = &wasm.capabilities;
            let outbound = outbound::resolve_outbound(&caps.outbound, caps.block_private_networks)
                .await
                .context("spec.wasm.capabilities.outbound")?;
            let preopens = caps
                .files
                .iter()
                .map(|f| PreopenGrant {
                    host: f.host.clone(),
                    guest: f.guest.clone(),
                    read_only: f.read_only,
                })
                .collect();
            let http = HttpAllowlist::parse(&caps.http)
                .map_err(|err| anyhow!("spec.wasm.capabilities.http: {err}"))?;
            let grant = CapabilityGrant {
                outbound: Arc::new(outbound),
                http: Arc::new(http),
                env: granted_env(&resource.name, &caps.env),
                preopens,
                memory_bytes: mib(caps.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB)),
                call_timeout: Duration::from_millis(caps.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
            };
            let max = caps
                .max_instances
                .map_or(DEFAULT_MAX_INSTANCES, |n| n.max(1) as usize);
            let sizing = Sizing {
                max_instances: max,
                sticky_pulls: false,
                volatile_messages: false,
            };
            let shown = shown_grants(&caps.outbound, &caps.http, &grant, &sizing);
            return Ok(Sourced {
                wasm: bytes,
                grant,
                sizing,
                shown,
            });
        }
        let Some(builtin) = builtin::lookup(&resource.component_type) else {
            bail!(
                "spec.type: unknown component type `{}`; built-in types are {}, or give your own component in spec.wasm.path",
                resource.component_type,
                builtin::type_names().join(", ")
            );
        };
        if builtin.wasm.is_empty() {
            bail!(
                "the built-in components were not compiled into this binary (OUTRIG_SKIP_GUEST_BUILD)"
            );
        }
        let derived = (builtin.derive)(&Metadata(metadata), ctx)?;
        metadata.extend(derived.extra_metadata);
        let outbound = outbound::resolve_outbound(&derived.outbound, false)
            .await
            .context("spec.metadata")?;
        let grant = CapabilityGrant {
            outbound: Arc::new(outbound),
            http: Arc::default(),
            env: Vec::new(),
            preopens: derived.preopens,
            memory_bytes: mib(DEFAULT_MEMORY_MIB),
            call_timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        };
        let sizing = Sizing {
            max_instances: builtin.max_instances,
            sticky_pulls: builtin.sticky_pulls,
            volatile_messages: builtin.volatile_messages,
        };
        let shown = shown_grants(&derived.outbound, &[], &grant, &sizing);
        Ok(Sourced {
            wasm: builtin.wasm.to_vec(),
            grant,
            sizing,
            shown,
        })
    }
}

/// The host's values of the environment variables `names` grants to
/// `component`. A granted name the host does not set (or sets to text that
/// is not UTF-8) is left out, with a note in the log.
fn granted_env(component: &str, names: &[String]) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| match std::env::var(name) {
            Ok(value) => Some((name.clone(), value)),
            Err(err) => {
                tracing::info!(component, variable = %name, "a granted environment variable is not passed: {err}");
                None
            }
        })
        .collect()
}

/// A component's code and what it is allowed.
struct Sourced {
    wasm: Vec<u8>,
    grant: CapabilityGrant,
    sizing: Sizing,
    /// The grants as the log and the metadata show them.
    shown: Vec<String>,
}

/// `grant` (from the `outbound` and `http` grants as written) and `sizing`,
/// one entry per grant: what an operator reads to know what a component may
/// touch. Environment variables are shown by name, never by value.
fn shown_grants(
    outbound: &[String],
    http: &[String],
    grant: &CapabilityGrant,
    sizing: &Sizing,
) -> Vec<String> {
    let mut shown: Vec<String> = outbound.iter().chain(http).cloned().collect();
    for preopen in &grant.preopens {
        let access = if preopen.read_only { "ro" } else { "rw" };
        shown.push(format!(
            "dir {} as {} ({access})",
            preopen.host.display(),
            preopen.guest
        ));
    }
    shown.extend(grant.env.iter().map(|(name, _)| format!("env {name}")));
    shown.push(format!("memory {} MiB", grant.memory_bytes >> 20));
    shown.push(format!("timeout {} ms", grant.call_timeout.as_millis()));
    shown.push(format!("instances {}", sizing.max_instances));
    shown
}

/// How a component's instances are pooled.
struct Sizing {
    /// The most instances at once.
    max_instances: usize,
    /// Whether a subscription's pulls keep to one instance (see
    /// [`builtin::Builtin::sticky_pulls`]).
    sticky_pulls: bool,
    /// Whether its messages live only in its instance (see
    /// [`builtin::Builtin::volatile_messages`]).
    volatile_messages: bool,
}

/// What starting a component's pool takes, whatever its world.
struct PoolStart<'a> {
    resource: &'a ComponentResource,
    instance_pre: wasmtime::component::InstancePre<InstanceState>,
    grant: CapabilityGrant,
    metadata: Vec<(String, String)>,
    settings: PoolSettings,
}

/// Collapses runs of whitespace (wasmtime's parse errors span lines) so a load
/// error stays one log line and one readable metadata field.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn mib(n: u64) -> usize {
    usize::try_from(n.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
}

/// Plain metadata values; `secretKeyRef` fails clearly until secret stores exist.
fn resolve_metadata(resource: &ComponentResource) -> anyhow::Result<Vec<(String, String)>> {
    resource
        .metadata
        .iter()
        .enumerate()
        .map(|(index, entry)| match &entry.value {
            MetadataValue::Plain(value) => Ok((entry.name.clone(), value.clone())),
            MetadataValue::SecretRef { name, .. } => Err(anyhow!(
                "spec.metadata[{index}] ({}): secretKeyRef `{name}` cannot be resolved: secret stores not configured",
                entry.name
            )),
        })
        .collect()
}
