//! From a [`RawComponent`] to a checked [`ComponentResource`], collecting
//! every problem with the field it concerns rather than stopping at the first.

use super::raw::{RawCapabilities, RawComponent, RawMetadataItem, RawWasm};
use super::{Capabilities, ComponentResource, FileGrant, MetadataEntry, MetadataValue, WasmSource};
use serde_yaml_ng::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A problem with one field: (field path, message).
pub type FieldError = (String, String);

/// The longest component name accepted (Kubernetes' limit for resource names).
const MAX_NAME_LEN: usize = 253;

/// Checks `raw` and builds the component; `source` is the file it came from
/// (relative paths in `spec.wasm` resolve against its directory).
pub fn component(raw: RawComponent, source: &Path) -> Result<ComponentResource, Vec<FieldError>> {
    let mut errors = Vec::new();
    let metadata = raw.metadata.unwrap_or_default();
    let spec = raw.spec.unwrap_or_default();
    let base = source.parent().unwrap_or_else(|| Path::new(""));

    let name = resource_name(&mut errors, metadata.name);
    let component_type = required(&mut errors, "spec.type", spec.component_type);
    if let Some(component_type) = &component_type
        && let Err(message) = check_type(component_type)
    {
        errors.push(("spec.type".into(), message));
    }
    let entries = metadata_entries(&mut errors, spec.metadata.unwrap_or_default());
    let scopes = raw.scopes.unwrap_or_default();
    check_scopes(&mut errors, &scopes);
    let wasm = spec
        .wasm
        .and_then(|wasm| wasm_source(&mut errors, wasm, base));

    match (name, component_type) {
        (Some(name), Some(component_type)) if errors.is_empty() => Ok(ComponentResource {
            name,
            namespace: metadata.namespace.filter(|ns| !ns.is_empty()),
            component_type,
            version: spec.version.unwrap_or_default(),
            metadata: entries,
            scopes,
            wasm,
            source: source.to_path_buf(),
        }),
        _ => Err(errors),
    }
}

/// `metadata.name`, required and checked (an error for a bad one, which is
/// still returned so that later checks can name the resource).
pub(super) fn resource_name(errors: &mut Vec<FieldError>, name: Option<String>) -> Option<String> {
    let name = required(errors, "metadata.name", name);
    if let Some(name) = &name
        && let Err(message) = check_name(name)
    {
        errors.push(("metadata.name".into(), message));
    }
    name
}

/// An error for every blank app id of `scopes`.
pub(super) fn check_scopes(errors: &mut Vec<FieldError>, scopes: &[String]) {
    for (index, scope) in scopes.iter().enumerate() {
        if scope.trim().is_empty() {
            errors.push((format!("scopes[{index}]"), "empty app id".into()));
        }
    }
}

/// `value` if present and not blank, else an error "missing" at `field`.
pub(super) fn required(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
) -> Option<String> {
    match value {
        Some(value) if !value.trim().is_empty() => Some(value),
        _ => {
            errors.push((field.to_owned(), "missing".into()));
            None
        }
    }
}

/// A component name apps can use in URLs: letters, digits, `-`, `_`, `.`,
/// starting and ending with a letter or digit (Kubernetes' rule, but
/// allowing upper case as self-hosted Dapr does).
fn check_name(name: &str) -> Result<(), String> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if name.len() > MAX_NAME_LEN {
        return Err(format!("`{name}` is longer than {MAX_NAME_LEN} characters"));
    }
    let body_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !body_ok || !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err(format!(
            "`{name}` is not a valid name: use letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// `<block>.<name>`, e.g. `state.redis` or `middleware.http.ratelimit`.
fn check_type(component_type: &str) -> Result<(), String> {
    let segments: Vec<&str> = component_type.split('.').collect();
    let segment_ok = |s: &&str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    };
    if segments.len() < 2 || !segments.iter().all(segment_ok) {
        return Err(format!(
            "`{component_type}` is not of the form <block>.<name> (e.g. state.redis)"
        ));
    }
    Ok(())
}

fn metadata_entries(
    errors: &mut Vec<FieldError>,
    items: Vec<RawMetadataItem>,
) -> Vec<MetadataEntry> {
    let mut entries = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.into_iter().enumerate() {
        let field = format!("spec.metadata[{index}]");
        let Some(name) = required(errors, &format!("{field}.name"), item.name) else {
            continue;
        };
        if let Some(first) = seen.insert(name.clone(), index) {
            errors.push((
                format!("{field}.name"),
                format!("duplicate `{name}` (also spec.metadata[{first}])"),
            ));
        }
        let value = match (item.value, item.secret_key_ref) {
            (Some(_), Some(_)) => {
                errors.push((field, "has both value and secretKeyRef; give one".into()));
                continue;
            }
            (_, Some(secret)) => {
                let secret_field = format!("{field}.secretKeyRef.name");
                let Some(secret_name) = required(errors, &secret_field, secret.name) else {
                    continue;
                };
                MetadataValue::SecretRef {
                    key: secret
                        .key
                        .filter(|key| !key.is_empty())
                        .unwrap_or_else(|| secret_name.clone()),
                    name: secret_name,
                }
            }
            (value, None) => MetadataValue::Plain(value.map(scalar_text).unwrap_or_default()),
        };
        entries.push(MetadataEntry { name, value });
    }
    entries
}

/// A metadata value as text: strings as they are, numbers and booleans as
/// written, null as empty, and structured values as JSON (as Dapr does).
pub(super) fn scalar_text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Null => String::new(),
        Value::Tagged(tagged) => scalar_text(tagged.value),
        structured => serde_json::to_string(&structured)
            .or_else(|_| serde_yaml_ng::to_string(&structured))
            .unwrap_or_default(),
    }
}

fn wasm_source(errors: &mut Vec<FieldError>, raw: RawWasm, base: &Path) -> Option<WasmSource> {
    let path = match (raw.path, raw.url) {
        (Some(_), Some(_)) => {
            errors.push((
                "spec.wasm".into(),
                "give either path or url, not both".into(),
            ));
            None
        }
        (Some(path), None) if !path.trim().is_empty() => Some(base.join(path)),
        (None, Some(url)) => match file_url_path(&url) {
            Ok(path) => Some(base.join(path)),
            Err(message) => {
                errors.push(("spec.wasm.url".into(), message));
                None
            }
        },
        _ => {
            errors.push(("spec.wasm.path".into(), "missing (give path or url)".into()));
            None
        }
    };
    let sha256 = raw.sha256.and_then(|sha| {
        if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(sha.to_ascii_lowercase())
        } else {
            errors.push(("spec.wasm.sha256".into(), "not 64 hex digits".into()));
            None
        }
    });
    let capabilities = capabilities(errors, raw.capabilities.unwrap_or_default(), base);
    Some(WasmSource {
        path: path?,
        sha256,
        capabilities,
    })
}

/// The path of a `file://` URL: `file:///abs`, `file://localhost/abs`, or
/// (leniently) `file://relative/path`, percent-decoded.
fn file_url_path(url: &str) -> Result<PathBuf, String> {
    let Some(rest) = url.strip_prefix("file://") else {
        return Err(format!("`{url}`: only file:// URLs are supported"));
    };
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| format!("`{url}`: the path is not UTF-8 once decoded"))?;
    if decoded.is_empty() {
        return Err(format!("`{url}`: no path"));
    }
    Ok(PathBuf::from(decoded.as_ref()))
}

fn capabilities(errors: &mut Vec<FieldError>, raw: RawCapabilities, base: &Path) -> Capabilities {
    const FIELD: &str = "spec.wasm.capabilities";
    let outbound = raw.outbound.unwrap_or_default();
    for (index, grant) in outbound.iter().enumerate() {
        if let Err(message) = check_outbound(grant) {
            errors.push((format!("{FIELD}.outbound[{index}]"), message));
        }
    }
    let http = raw.http.unwrap_or_default();
    for (index, grant) in http.iter().enumerate() {
        if let Err(message) = crate::runtime::http::parse_http_grant(grant) {
            errors.push((format!("{FIELD}.http[{index}]"), message));
        }
    }
    let env = raw.env.unwrap_or_default();
    for (index, name) in env.iter().enumerate() {
        if name.is_empty() || name.contains(['=', '\0']) {
            errors.push((
                format!("{FIELD}.env[{index}]"),
                format!("`{name}` is not an environment variable name"),
            ));
        }
    }
    let mut files = Vec::new();
    for (index, grant) in raw.files.unwrap_or_default().into_iter().enumerate() {
        let field = format!("{FIELD}.files[{index}]");
        let host = required(errors, &format!("{field}.host"), grant.host);
        let guest = required(errors, &format!("{field}.guest"), grant.guest);
        if let Some(guest) = &guest
            && !guest.starts_with('/')
        {
            errors.push((
                format!("{field}.guest"),
                format!("`{guest}` is not an absolute path"),
            ));
        }
        if let (Some(host), Some(guest)) = (host, guest) {
            files.push(FileGrant {
                host: base.join(host),
                guest,
                // Deny by default: writing must be asked for.
                read_only: grant.read_only.unwrap_or(true),
            });
        }
    }
    let positive = |errors: &mut Vec<FieldError>, name: &str, value: Option<u64>| {
        if value == Some(0) {
            errors.push((format!("{FIELD}.{name}"), "must be at least 1".into()));
        }
        value
    };
    Capabilities {
        outbound,
        block_private_networks: raw.block_private_networks.unwrap_or(false),
        http,
        env,
        files,
        memory_mib: positive(errors, "memoryMiB", raw.memory_mib),
        timeout_ms: positive(errors, "timeoutMs", raw.timeout_ms),
        max_instances: positive(errors, "maxInstances", raw.max_instances.map(u64::from))
            .and_then(|n| u32::try_from(n).ok()),
    }
}

/// `tcp://host:port` or `tcp://host:low-high` (with or without `tcp://`),
/// the forms the runtime grants; the runtime's parser is the one judge.
fn check_outbound(grant: &str) -> Result<(), String> {
    crate::runtime::outbound::parse_outbound(grant).map(drop)
}
