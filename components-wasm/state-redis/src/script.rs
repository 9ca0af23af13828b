//! The one Lua script through which every write goes, and how write
//! operations are laid out as its arguments.
//!
//! Running all writes of a call in one script makes a transaction atomic
//! *including* its ETag checks: the script first checks every operation
//! against the state the earlier operations would leave, and only then applies
//! them, so a failed check leaves Redis untouched. Single writes are
//! transactions of one operation.
//!
//! The data layout is Dapr's: each key is a hash with `data` (the value) and
//! `version` (the ETag, an integer incremented on each write), so data written
//! by Dapr's `state.redis` stays readable and writable here, and vice versa.

use redis_wire::{Cmd, Reply};

/// The write script. `KEYS[i]` is the key of operation `i`; `ARGV` holds
/// five fields per operation: kind (`set`/`del`), ETag (empty
/// when none), first-write (`1`/`0`), value, TTL seconds (`0` = no expiry).
/// Returns 0 when all operations were applied, or `i` when operation `i`
/// failed its check, in which case nothing was written.
pub const APPLY: &str = r#"
local plan = {}
local known = {}
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 5
  local kind, etag, first_write = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local state = known[key]
  if not state then
    local exists = redis.call("EXISTS", key) == 1
    local version = redis.pcall("HGET", key, "version")
    local foreign = type(version) == "table"
    if foreign or not version then version = "" end
    state = { exists = exists, version = version, foreign = foreign }
  end
  if etag ~= "" then
    if not state.exists or state.version ~= etag then return i end
  elseif kind == "set" and first_write == "1" and state.exists then
    return i
  end
  if kind == "set" then
    local next_version = string.format("%d", (tonumber(state.version) or 0) + 1)
    plan[i] = { replace = state.foreign, version = next_version }
    known[key] = { exists = true, version = next_version, foreign = false }
  else
    known[key] = { exists = false, version = "", foreign = false }
  end
end
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 5
  if ARGV[base + 1] == "set" then
    if plan[i].replace then redis.call("DEL", key) end
    redis.call("HSET", key, "data", ARGV[base + 4], "version", plan[i].version)
    local ttl = tonumber(ARGV[base + 5])
    if ttl and ttl > 0 then
      redis.call("EXPIRE", key, ttl)
    else
      redis.call("PERSIST", key)
    end
  else
    redis.call("DEL", key)
  end
end
return 0
"#;

/// One write, already validated: the ETag parsed, the TTL resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOp {
    /// The full key, `<app-id>||<key>`.
    pub key: String,
    /// The version the key must have, if the caller gave an ETag.
    pub etag: Option<u64>,
    /// What to do once the checks pass.
    pub action: Action,
}

/// The effect of a [`WriteOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store `value`, expiring after `ttl` seconds (`None`: never expire).
    Set {
        /// The bytes to store in the `data` field.
        value: Vec<u8>,
        /// Refuse the write if the key exists and no ETag was given.
        first_write: bool,
        /// Seconds until expiry; `None` also clears an earlier TTL.
        ttl: Option<u32>,
    },
    /// Remove the key.
    Delete,
}

/// What the script reported for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every operation was applied.
    Applied,
    /// The operation at this index failed its ETag or first-write check;
    /// nothing was written.
    Refused(usize),
}

/// The `EVALSHA` (or, with `sha` of `None`, `EVAL`) command applying `ops`.
pub fn command(sha: Option<&str>, ops: &[WriteOp]) -> Cmd {
    let mut cmd = match sha {
        Some(sha) => Cmd::new("EVALSHA").arg(sha),
        None => Cmd::new("EVAL").arg(APPLY),
    }
    .arg(ops.len().to_string());
    for op in ops {
        cmd = cmd.arg(&op.key);
    }
    for op in ops {
        let etag = op
            .etag
            .map(|version| version.to_string())
            .unwrap_or_default();
        cmd = match &op.action {
            Action::Set {
                value,
                first_write,
                ttl,
            } => cmd
                .arg("set")
                .arg(etag)
                .arg(if *first_write { "1" } else { "0" })
                .arg(value)
                .arg(ttl.unwrap_or(0).to_string()),
            Action::Delete => cmd.arg("del").arg(etag).arg("0").arg("").arg("0"),
        };
    }
    cmd
}

/// Reads the script's reply. Error replies (other than a missing script,
/// which the caller handles) are returned as their message.
pub fn outcome(reply: &Reply) -> Result<Outcome, String> {
    match reply {
        Reply::Integer(0) => Ok(Outcome::Applied),
        Reply::Integer(i) if *i > 0 => Ok(Outcome::Refused(*i as usize - 1)),
        Reply::Error(message) => Err(message.clone()),
        other => Err(format!("unexpected reply from the write script: {other:?}")),
    }
}

/// Whether the server answered that it does not have the script cached (after
/// `SCRIPT FLUSH` or a restart), so the call must be repeated with `EVAL`.
pub fn is_missing_script(reply: &Reply) -> bool {
    reply
        .as_error()
        .is_some_and(|message| message.starts_with("NOSCRIPT"))
}
