//! Dapr resource files, parsed once at the edge into typed structs.
//!
//! [`load_dir`] reads every `*.yaml` / `*.yml` file of the resources
//! directory (not recursively, in name order); [`parse_str`] reads one file's
//! text. A file may hold several documents separated by `---`. Documents of
//! `kind: Component` (`apiVersion: dapr.io/v1alpha1`) become
//! [`ComponentResource`]s, documents of `kind: Subscription`
//! (`dapr.io/v1alpha1` or `dapr.io/v2alpha1`) [`SubscriptionResource`]s,
//! and documents of `kind: Resiliency` [`ResiliencyResource`]s; other kinds
//! (`Configuration`, …) are skipped for now, with a debug log.
//!
//! Errors never stop at the first: every problem of every file is collected
//! into [`LoadErrors`], one line each, naming the file and the field
//! (`components/redis.yaml: spec.type: missing`); YAML syntax errors carry
//! the parser's line and column. Fields Outrig does not know are kept in the
//! [`LoadReport`] and warned about, never dropped silently and never an error.
//!
//! Checked here: the name (non-empty, usable in URLs, unique across files
//! among resources of its kind), the type's `<block>.<name>` form,
//! `spec.metadata` items, and the form of `spec.wasm` (a path or `file://`
//! URL, resolved against the YAML file's directory; a 64-hex-digit `sha256`;
//! capability values). Whether the type exists or the `.wasm` file is there
//! is the loader's business, not this module's: such components are
//! reported as failed while the others serve. A subscription's pub/sub name,
//! topic and route(s) are required, its `bulkSubscribe` counts checked and
//! its routing rules compiled.
//!
//! A problem in a `Subscription` document is a problem of its file, like
//! one in a `Component` document: the file contributes nothing until fixed.

mod convert;
mod raw;
mod resiliency;
mod schema;
mod subscription;
#[cfg(test)]
mod tests;

use crate::blocks::pubsub::subscription::SubscriptionSpec;
use crate::blocks::resiliency::RetryPolicy;
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// One `kind: Component` document.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentResource {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if given.
    pub namespace: Option<String>,
    /// `spec.type`, e.g. `state.redis`.
    pub component_type: String,
    /// `spec.version`, e.g. `v1` (empty when absent).
    pub version: String,
    /// `spec.metadata`, in file order.
    pub metadata: Vec<MetadataEntry>,
    /// `scopes`: app ids allowed to use it; empty means all.
    pub scopes: Vec<String>,
    /// `spec.wasm`: Outrig's section for a user's own component.
    pub wasm: Option<WasmSource>,
    /// The file the document came from, for error messages.
    pub source: PathBuf,
}

/// One `spec.metadata` item.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataEntry {
    /// `name`.
    pub name: String,
    /// `value` or `secretKeyRef`.
    pub value: MetadataValue,
}

/// A metadata value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// `value:` (numbers and booleans are kept as their YAML text).
    Plain(String),
    /// `secretKeyRef: {name, key}`, resolved through a secret store.
    SecretRef {
        /// The secret's name.
        name: String,
        /// The key within the secret (defaults to the name).
        key: String,
    },
}

/// `spec.wasm`: where a user's component lives and what it may touch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WasmSource {
    /// The `.wasm` file, resolved against the YAML file's directory (`path:` or a `file://` URL).
    pub path: PathBuf,
    /// Lowercase hex sha256 the file must match.
    pub sha256: Option<String>,
    /// What the component is granted.
    pub capabilities: Capabilities,
}

/// `spec.wasm.capabilities`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Capabilities {
    /// `outbound`: `tcp://host:port` (or `host:low-high`) addresses it may
    /// connect to.
    pub outbound: Vec<String>,
    /// `blockPrivateNetworks`: leave out outbound addresses in private
    /// ranges, so a name that resolves inward grants nothing.
    pub block_private_networks: bool,
    /// `http`: origins (`https://api.example.com`, `*.example.com`,
    /// `http://127.0.0.1:8080`) its `wasi:http` requests may reach.
    pub http: Vec<String>,
    /// `env`: names of the host's environment variables it may see; it sees
    /// no others.
    pub env: Vec<String>,
    /// `files`: host directories mapped into the guest.
    pub files: Vec<FileGrant>,
    /// `memoryMiB`: the most linear memory an instance may have.
    pub memory_mib: Option<u64>,
    /// `timeoutMs`: the deadline of one call.
    pub timeout_ms: Option<u64>,
    /// `maxInstances`: how many calls may run at once.
    pub max_instances: Option<u32>,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq)]
pub struct FileGrant {
    /// The host directory (resolved against the YAML file's directory).
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

/// One `kind: Subscription` document: a declarative subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionResource {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if given.
    pub namespace: Option<String>,
    /// What it subscribes to and where events go; its `origin` names the
    /// file and the resource.
    pub spec: SubscriptionSpec,
    /// `scopes`: app ids it applies to; empty means all.
    pub scopes: Vec<String>,
    /// The file the document came from, for error messages.
    pub source: PathBuf,
}

/// One `kind: Resiliency` document, as far as Outrig applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResiliencyResource {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if given.
    pub namespace: Option<String>,
    /// `spec.targets.components.<name>.inbound.retry`, resolved: how events
    /// of pub/sub component `<name>` the app asked to retry are retried.
    pub inbound_retries: BTreeMap<String, RetryPolicy>,
    /// `scopes`: app ids it applies to; empty means all.
    pub scopes: Vec<String>,
    /// The file the document came from, for error messages.
    pub source: PathBuf,
}

/// The only `apiVersion` of `Component` documents Dapr defines.
pub const COMPONENT_API_VERSION: &str = "dapr.io/v1alpha1";

/// The `apiVersion` of `Subscription` documents with one `route` (deprecated
/// by Dapr, still accepted).
pub const SUBSCRIPTION_V1_API_VERSION: &str = "dapr.io/v1alpha1";

/// The `apiVersion` of `Subscription` documents with `routes` (rules and a default).
pub const SUBSCRIPTION_V2_API_VERSION: &str = "dapr.io/v2alpha1";

/// Resource kinds Dapr defines that Outrig does not load yet; skipped quietly.
const OTHER_DAPR_KINDS: [&str; 2] = ["Configuration", "HTTPEndpoint"];

/// One problem in a resource file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// The document within the file (1-based), when the file has several.
    pub document: Option<usize>,
    /// The field at fault, e.g. `spec.wasm.sha256`, when one can be named.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(document) = self.document {
            write!(f, " (document {document})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in the resource files, reported together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// A field of a resource document that Outrig does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// The file.
    pub file: PathBuf,
    /// The field's path, e.g. `spec.ignoreErrors`.
    pub field: String,
    /// Its value as written (YAML, shortened).
    pub value: String,
}

/// What loading found: the components, the subscriptions, and the fields
/// it did not use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadReport {
    /// The `Component` documents, in file order then document order.
    pub components: Vec<ComponentResource>,
    /// The `Subscription` documents, in file order then document order.
    pub subscriptions: Vec<SubscriptionResource>,
    /// The `Resiliency` documents, in file order then document order.
    pub resiliencies: Vec<ResiliencyResource>,
    /// Fields no part of Outrig reads (e.g. for `outrig components validate`).
    pub unknown_fields: Vec<UnknownField>,
}

/// Reads every component of `dir`; unknown fields are logged as warnings.
pub fn load_dir(dir: &Path) -> Result<Vec<ComponentResource>, LoadErrors> {
    load_dir_report(dir).map(warn_and_keep_components)
}

/// Reads the components of one file's `text`; `source` names the file in
/// messages and anchors relative paths. Unknown fields are logged as warnings.
pub fn parse_str(text: &str, source: &Path) -> Result<Vec<ComponentResource>, LoadErrors> {
    parse_str_report(text, source).map(warn_and_keep_components)
}

/// [`load_dir`], returning the unknown fields instead of logging them.
pub fn load_dir_report(dir: &Path) -> Result<LoadReport, LoadErrors> {
    let scan = scan_dir(dir)?;
    if scan.errors.0.is_empty() {
        Ok(scan.report)
    } else {
        Err(scan.errors)
    }
}

/// What [`scan_dir`] found: the resources of every file that parsed, and
/// the problems of every file that did not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirScan {
    /// Components, subscriptions (and unknown fields) of the files without
    /// errors; a resource named like an earlier one of its kind is left out.
    pub report: LoadReport,
    /// Every problem; each names its file. A file with a problem contributes
    /// no resource.
    pub errors: LoadErrors,
}

/// Reads the resources directory file by file without stopping at a bad
/// one, so a hot reload can apply the good files and keep serving what a
/// broken file described before. Fails only when the directory itself
/// cannot be read.
pub fn scan_dir(dir: &Path) -> Result<DirScan, LoadErrors> {
    let files = resource_files(dir).map_err(|message| {
        LoadErrors(vec![LoadError {
            file: dir.to_path_buf(),
            document: None,
            field: None,
            message,
        }])
    })?;
    let mut scan = DirScan::default();
    for file in files {
        let parsed = std::fs::read_to_string(&file)
            .map_err(|error| {
                LoadErrors(vec![LoadError {
                    file: file.clone(),
                    document: None,
                    field: None,
                    message: format!("cannot read: {error}"),
                }])
            })
            .and_then(|text| parse_str_report(&text, &file));
        match parsed {
            Ok(mut found) => {
                scan.report.components.append(&mut found.components);
                scan.report.subscriptions.append(&mut found.subscriptions);
                scan.report.resiliencies.append(&mut found.resiliencies);
                scan.report.unknown_fields.append(&mut found.unknown_fields);
            }
            Err(LoadErrors(mut found)) => scan.errors.0.append(&mut found),
        }
    }
    let components = std::mem::take(&mut scan.report.components);
    scan.report.components = without_duplicates(components, &mut scan.errors);
    let subscriptions = std::mem::take(&mut scan.report.subscriptions);
    scan.report.subscriptions = without_duplicates(subscriptions, &mut scan.errors);
    let resiliencies = std::mem::take(&mut scan.report.resiliencies);
    scan.report.resiliencies = without_duplicates(resiliencies, &mut scan.errors);
    Ok(scan)
}

/// `resources` less those named like an earlier one, each reported in `errors`.
fn without_duplicates<R: Named>(resources: Vec<R>, errors: &mut LoadErrors) -> Vec<R> {
    let (dropped, found): (Vec<usize>, Vec<LoadError>) = duplicates(&resources).into_iter().unzip();
    errors.0.extend(found);
    resources
        .into_iter()
        .enumerate()
        .filter(|(index, _)| !dropped.contains(index))
        .map(|(_, resource)| resource)
        .collect()
}

/// [`parse_str`], returning the unknown fields instead of logging them.
pub fn parse_str_report(text: &str, source: &Path) -> Result<LoadReport, LoadErrors> {
    let error = |document, field: Option<&str>, message: String| LoadError {
        file: source.to_path_buf(),
        document,
        field: field.map(str::to_owned),
        message,
    };
    // Pass 1: the documents as YAML values (syntax errors surface here).
    let mut values = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        match Value::deserialize(document) {
            Ok(value) => values.push(value),
            Err(yaml) => return Err(LoadErrors(vec![error(None, None, yaml.to_string())])),
        }
    }
    // Pass 2: the same documents into typed structs of their kind (type
    // errors carry the field and line).
    let documents: Vec<_> = serde_yaml_ng::Deserializer::from_str(text).collect();
    let numbered = values.len() > 1;
    let mut report = LoadReport::default();
    let mut errors = Vec::new();
    for (index, (value, typed)) in values.iter().zip(documents).enumerate() {
        let document = numbered.then_some(index + 1);
        let field_errors = |found: Vec<(String, String)>| {
            found
                .into_iter()
                .map(move |(field, message)| error(document, Some(&field), message))
        };
        let unknown = match document_kind(value) {
            Kind::Empty => continue,
            Kind::Other(kind) => {
                if OTHER_DAPR_KINDS.contains(&kind.as_str()) {
                    tracing::debug!(file = %source.display(), kind, "skipped: not loaded yet");
                } else {
                    tracing::warn!(file = %source.display(), kind, "skipped: not a Dapr resource kind");
                }
                continue;
            }
            Kind::Invalid(field, message) => {
                errors.push(error(document, Some(field), message));
                continue;
            }
            Kind::Component => {
                if let Err(message) = check_api_version(value) {
                    errors.push(error(document, Some("apiVersion"), message));
                }
                match raw::RawComponent::deserialize(typed) {
                    Ok(raw) => match convert::component(raw, source) {
                        Ok(component) => report.components.push(component),
                        Err(found) => errors.extend(field_errors(found)),
                    },
                    Err(yaml) => {
                        errors.push(error(document, None, yaml.to_string()));
                        continue;
                    }
                }
                schema::unknown_component_fields(value)
            }
            Kind::Subscription => {
                let v2 = match subscription_version(value) {
                    Ok(v2) => v2,
                    Err(message) => {
                        errors.push(error(document, Some("apiVersion"), message));
                        // Checked as the version its fields suggest.
                        value
                            .get("spec")
                            .and_then(|spec| spec.get("routes"))
                            .is_some()
                    }
                };
                match raw::RawSubscription::deserialize(typed) {
                    Ok(raw) => match subscription::subscription(raw, v2, source) {
                        Ok(found) => report.subscriptions.push(found),
                        Err(found) => errors.extend(field_errors(found)),
                    },
                    Err(yaml) => {
                        errors.push(error(document, None, yaml.to_string()));
                        continue;
                    }
                }
                schema::unknown_subscription_fields(value, v2)
            }
            Kind::Resiliency => {
                match raw::RawResiliency::deserialize(typed) {
                    Ok(raw) => match resiliency::resiliency(raw, source) {
                        Ok(found) => report.resiliencies.push(found),
                        Err(found) => errors.extend(field_errors(found)),
                    },
                    Err(yaml) => {
                        errors.push(error(document, None, yaml.to_string()));
                        continue;
                    }
                }
                schema::unknown_resiliency_fields(value)
            }
        };
        report
            .unknown_fields
            .extend(unknown.into_iter().map(|(field, value)| UnknownField {
                file: source.to_path_buf(),
                field,
                value,
            }));
    }
    errors.extend(duplicate_names(&report.components));
    errors.extend(duplicate_names(&report.subscriptions));
    errors.extend(duplicate_names(&report.resiliencies));
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Logs the unknown fields and hands back the components (also for a hot
/// reload, so a new file's unknown fields are warned about too).
pub fn warn_and_keep_components(report: LoadReport) -> Vec<ComponentResource> {
    for unknown in &report.unknown_fields {
        tracing::warn!(
            file = %unknown.file.display(),
            field = %unknown.field,
            value = %unknown.value,
            "unknown field in resource: kept, not used"
        );
    }
    report.components
}

/// The `*.yaml` / `*.yml` files directly in `dir`, sorted by name.
fn resource_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|error| format!("cannot read the directory: {error}"))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| format!("cannot read the directory: {error}"))?
            .path();
        let is_yaml = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// What a document is.
enum Kind {
    /// An empty document (e.g. after a trailing `---`).
    Empty,
    /// `kind: Component`.
    Component,
    /// `kind: Subscription`.
    Subscription,
    /// `kind: Resiliency`.
    Resiliency,
    /// Another kind, skipped.
    Other(String),
    /// Not a resource at all: (field, message).
    Invalid(&'static str, String),
}

fn document_kind(value: &Value) -> Kind {
    let Value::Mapping(mapping) = value else {
        return match value {
            Value::Null => Kind::Empty,
            _ => Kind::Invalid("kind", "the document is not a mapping".into()),
        };
    };
    match mapping.get("kind") {
        Some(Value::String(kind)) if kind == "Component" => Kind::Component,
        Some(Value::String(kind)) if kind == "Subscription" => Kind::Subscription,
        Some(Value::String(kind)) if kind == "Resiliency" => Kind::Resiliency,
        Some(Value::String(kind)) => Kind::Other(kind.clone()),
        Some(_) => Kind::Invalid("kind", "not a string".into()),
        None => Kind::Invalid("kind", "missing".into()),
    }
}

fn check_api_version(value: &Value) -> Result<(), String> {
    match value.get("apiVersion") {
        Some(Value::String(version)) if version == COMPONENT_API_VERSION => Ok(()),
        Some(Value::String(version)) => Err(format!(
            "`{version}` is not {COMPONENT_API_VERSION}, the version of Component resources"
        )),
        Some(_) => Err("not a string".into()),
        None => Err("missing".into()),
    }
}

/// `true` for `dapr.io/v2alpha1`, `false` for `dapr.io/v1alpha1`.
fn subscription_version(value: &Value) -> Result<bool, String> {
    match value.get("apiVersion") {
        Some(Value::String(version)) if version == SUBSCRIPTION_V2_API_VERSION => Ok(true),
        Some(Value::String(version)) if version == SUBSCRIPTION_V1_API_VERSION => Ok(false),
        Some(Value::String(version)) => Err(format!(
            "`{version}` is not {SUBSCRIPTION_V2_API_VERSION} or {SUBSCRIPTION_V1_API_VERSION}, the versions of Subscription resources"
        )),
        Some(_) => Err("not a string".into()),
        None => Err("missing".into()),
    }
}

/// A resource with a name unique among those of its kind.
trait Named {
    /// What the kind is called in messages.
    const KIND: &'static str;
    fn name(&self) -> &str;
    fn source(&self) -> &Path;
}

impl Named for ComponentResource {
    const KIND: &'static str = "component";
    fn name(&self) -> &str {
        &self.name
    }
    fn source(&self) -> &Path {
        &self.source
    }
}

impl Named for ResiliencyResource {
    const KIND: &'static str = "resiliency";
    fn name(&self) -> &str {
        &self.name
    }
    fn source(&self) -> &Path {
        &self.source
    }
}

impl Named for SubscriptionResource {
    const KIND: &'static str = "subscription";
    fn name(&self) -> &str {
        &self.name
    }
    fn source(&self) -> &Path {
        &self.source
    }
}

/// An error for every resource named like an earlier one of its kind.
fn duplicate_names<R: Named>(resources: &[R]) -> Vec<LoadError> {
    duplicates(resources)
        .into_iter()
        .map(|(_, error)| error)
        .collect()
}

/// Every resource named like an earlier one: (its index, the error).
fn duplicates<R: Named>(resources: &[R]) -> Vec<(usize, LoadError)> {
    let mut first: HashMap<&str, &Path> = HashMap::new();
    let mut errors = Vec::new();
    for (index, resource) in resources.iter().enumerate() {
        match first.get(resource.name()) {
            Some(earlier) => errors.push((
                index,
                LoadError {
                    file: resource.source().to_path_buf(),
                    document: None,
                    field: Some("metadata.name".into()),
                    message: format!(
                        "duplicate {} name `{}` (first defined in {})",
                        R::KIND,
                        resource.name(),
                        earlier.display()
                    ),
                },
            )),
            None => {
                first.insert(resource.name(), resource.source());
            }
        }
    }
    errors
}
