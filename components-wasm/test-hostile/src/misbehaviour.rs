//! The ways `get` can be asked to misbehave, each standing for one attack
//! or bug the host's sandbox must contain.

use crate::escape::escape;
use crate::fetch::fetch;
use outrig_sdk::state::Item;
use outrig_sdk::{Error, Result};
use std::hint::black_box;
use std::io::{ErrorKind, Write as _};
use std::net::TcpStream;

/// One misbehaviour, chosen by the key's last `||` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Misbehaviour<'k> {
    /// `||trap`: panics, which is a trap under `panic = "abort"`.
    Trap,
    /// `||loop`: spins forever without calling the host, so only epoch
    /// interruption can stop it.
    Loop,
    /// `||bomb`: allocates 1 MiB blocks without bound, touching every page,
    /// until the memory limit stops it.
    Bomb,
    /// `||socket`: connects to 127.0.0.1:6379, which it was not granted.
    Socket,
    /// `||recurse`: recurses without bound until the stack overflows.
    Recurse,
    /// `||huge`: returns a 64 MiB value.
    Huge,
    /// `||escape`: tries to leave its granted directory (see [`escape`]).
    Escape,
    /// `||logflood`: logs [`FLOOD_LINES`] lines through the host as fast as
    /// it can, and as many to stdout and stderr, then answers `"flooded"`.
    LogFlood,
    /// `||env=NAME`: answers the value of the environment variable `NAME`
    /// as a JSON string, or nothing when it sees no such variable.
    Env(&'k str),
    /// `||envnames`: answers the names of every environment variable it
    /// sees, as a sorted JSON array.
    EnvNames,
    /// `||fetch=URL`: answers the body of an HTTP `GET` of `URL` (see
    /// [`fetch`]).
    Fetch(&'k str),
}

/// Where `||socket` tries to connect: Redis's port, a plausible target.
const FORBIDDEN_ADDRESS: &str = "127.0.0.1:6379";
/// The size of the `||huge` value.
const HUGE_VALUE_BYTES: usize = 64 << 20;
/// Lines `||logflood` writes to each of the host log, stdout and stderr.
pub(crate) const FLOOD_LINES: usize = 20_000;

impl<'k> Misbehaviour<'k> {
    /// The misbehaviour `key` asks for, if any. Keys arrive as
    /// `<app-id>||<key>`, so only the suffix is matched.
    pub(crate) fn for_key(key: &'k str) -> Option<Misbehaviour<'k>> {
        let (_, last) = key.rsplit_once("||")?;
        if let Some(name) = last.strip_prefix("env=") {
            return Some(Misbehaviour::Env(name));
        }
        if let Some(url) = last.strip_prefix("fetch=") {
            return Some(Misbehaviour::Fetch(url));
        }
        match last {
            "trap" => Some(Misbehaviour::Trap),
            "loop" => Some(Misbehaviour::Loop),
            "bomb" => Some(Misbehaviour::Bomb),
            "socket" => Some(Misbehaviour::Socket),
            "recurse" => Some(Misbehaviour::Recurse),
            "huge" => Some(Misbehaviour::Huge),
            "escape" => Some(Misbehaviour::Escape),
            "logflood" => Some(Misbehaviour::LogFlood),
            "envnames" => Some(Misbehaviour::EnvNames),
            _ => None,
        }
    }

    /// Does it. `Trap`, `Loop`, `Bomb` and `Recurse` never answer normally.
    pub(crate) fn act(self, key: &str) -> Result<Option<Item>> {
        match self {
            Misbehaviour::Trap => panic!("test-hostile: trap requested by key `{key}`"),
            Misbehaviour::Loop => spin(),
            Misbehaviour::Bomb => hoard(),
            Misbehaviour::Socket => connect_forbidden(),
            Misbehaviour::Recurse => {
                let depth = recurse(0);
                Err(Error::Internal(format!(
                    "recursion ended after {depth} frames"
                )))
            }
            Misbehaviour::Huge => Ok(Some(item(vec![b'x'; HUGE_VALUE_BYTES]))),
            Misbehaviour::Escape => escape(),
            Misbehaviour::LogFlood => {
                flood();
                Ok(Some(item(b"\"flooded\"".to_vec())))
            }
            Misbehaviour::Env(name) => Ok(std::env::var(name)
                .ok()
                .map(|value| item(json(&serde_json::Value::from(value))))),
            Misbehaviour::EnvNames => {
                let mut names: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
                names.sort();
                Ok(Some(item(json(&serde_json::Value::from(names)))))
            }
            Misbehaviour::Fetch(url) => fetch(url),
        }
    }
}

fn item(value: Vec<u8>) -> Item {
    Item {
        value,
        etag: None,
        expires_at_unix: None,
    }
}

fn json(value: &serde_json::Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// Writes [`FLOOD_LINES`] lines to the host log, stdout and stderr; write
/// errors are ignored (stdio may be closed), so it always returns.
fn flood() {
    let padding = "x".repeat(200);
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    for line in 0..FLOOD_LINES {
        outrig_sdk::log::info(format!("test-hostile flood line {line} {padding}"));
        let _ = writeln!(stdout, "test-hostile stdout flood {line}");
        let _ = writeln!(stderr, "test-hostile stderr flood {line}");
    }
}

fn spin() -> ! {
    let mut turns = 0u64;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}

fn hoard() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        // Write every page, so the memory is really used, not just reserved.
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        blocks.push(black_box(block));
    }
}

/// A sandbox that works answers permission denied, reported as
/// `unavailable`; anything else is `internal`, so a test can tell a hole in
/// the sandbox from a denial.
fn connect_forbidden() -> Result<Option<Item>> {
    match TcpStream::connect(FORBIDDEN_ADDRESS) {
        Err(err) if err.kind() == ErrorKind::PermissionDenied => {
            Err(Error::Unavailable(err.to_string()))
        }
        Err(err) => Err(Error::Internal(format!(
            "connecting to {FORBIDDEN_ADDRESS} failed, but not with permission denied: {err} ({:?})",
            err.kind()
        ))),
        Ok(_) => Err(Error::Internal(format!(
            "connected to {FORBIDDEN_ADDRESS} although no socket was granted"
        ))),
    }
}

/// Each frame holds 1 KiB the optimiser cannot drop; the condition is
/// always true but opaque, so the recursion is neither removed nor turned
/// into a loop.
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 128]);
    if black_box(true) {
        recurse(frame[0] + 1).wrapping_add(frame[127])
    } else {
        depth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_choose_by_their_last_segment() {
        let cases = [
            ("app||trap", Some(Misbehaviour::Trap)),
            ("app||loop", Some(Misbehaviour::Loop)),
            ("app||bomb", Some(Misbehaviour::Bomb)),
            ("app||socket", Some(Misbehaviour::Socket)),
            ("app||recurse", Some(Misbehaviour::Recurse)),
            ("app||huge", Some(Misbehaviour::Huge)),
            ("app||escape", Some(Misbehaviour::Escape)),
            ("app||logflood", Some(Misbehaviour::LogFlood)),
            ("app||envnames", Some(Misbehaviour::EnvNames)),
            ("app||env=HOME", Some(Misbehaviour::Env("HOME"))),
            ("app||fetch=http://h:1/a||b", None),
            (
                "app||fetch=http://h:1/a",
                Some(Misbehaviour::Fetch("http://h:1/a")),
            ),
            ("app||x||trap", Some(Misbehaviour::Trap)),
            ("trap", None),
            ("app||mytrap", None),
            ("app||trap||x", None),
            ("app||TRAP", None),
            ("app||", None),
        ];
        for (key, want) in cases {
            assert_eq!(Misbehaviour::for_key(key), want, "{key}");
        }
    }

    #[test]
    fn huge_returns_64_mib() {
        let item = Misbehaviour::Huge.act("app||huge").ok().flatten();
        assert_eq!(item.map(|i| i.value.len()), Some(64 << 20));
    }
}
