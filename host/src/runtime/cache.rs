//! The compiled-artifact cache: a warm start does no Cranelift work.
//!
//! Entries are keyed by the component's sha256 and the engine's compatibility
//! fingerprint, and carry a sha256 of their own bytes so a truncated or
//! corrupted file is detected and recompiled, never loaded.
//!
//! The cache is bounded (512 MiB unless [`ArtifactCache::with_max_bytes`]
//! says otherwise): after each write, the entries least recently used (by
//! modification time, which a hit refreshes) are removed until the rest
//! fit. Hot reload writes an entry per new version, so without a bound the
//! cache would grow with every deploy.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::Component;

const DIGEST_LEN: usize = 32;
/// The extension of cache entries; nothing else in the directory is evicted.
const ENTRY_EXTENSION: &str = "cwasm";

/// The most bytes of compiled artifacts kept by default.
pub const DEFAULT_MAX_BYTES: u64 = 512 << 20;

/// Where compiled components are kept between runs.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    max_bytes: u64,
}

/// Whether a load was served from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from disk.
    Hit,
    /// Compiled now (and written to disk when a cache directory is set).
    Compiled,
}

impl ArtifactCache {
    /// A cache in `dir` (created on first write); `None` disables caching.
    pub fn new(dir: Option<PathBuf>) -> Self {
        ArtifactCache {
            dir,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// The same cache, keeping at most `max_bytes` of entries (the newest
    /// entry is kept even if it alone is larger).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The compiled form of `wasm`, whose sha256 is `sha256` (lowercase hex),
    /// read from the cache or compiled and stored. Blocking: call it from a
    /// blocking task.
    pub fn load(
        &self,
        engine: &Engine,
        sha256: &str,
        wasm: &[u8],
    ) -> anyhow::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry_path(engine, sha256) else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Compiled));
        };
        if let Some(component) = read_entry(engine, &path) {
            mark_used(&path);
            return Ok((component, CacheOutcome::Hit));
        }
        let component = Component::new(engine, wasm)?;
        match write_entry(&path, &component) {
            Ok(()) => evict_beyond(&path, self.max_bytes),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "could not write the compiled-artifact cache")
            }
        }
        Ok((component, CacheOutcome::Compiled))
    }

    fn entry_path(&self, engine: &Engine, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{}.cwasm", engine_fingerprint(engine))))
    }
}

/// A short hex fingerprint of everything that makes compiled code
/// incompatible: wasmtime version, target, and compilation settings.
pub fn engine_fingerprint(engine: &Engine) -> String {
    struct DigestHasher(Sha256);
    impl Hasher for DigestHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = DigestHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

fn read_entry(engine: &Engine, path: &Path) -> Option<Component> {
    let bytes = std::fs::read(path).ok()?;
    let (digest, payload) = bytes.split_at_checked(DIGEST_LEN)?;
    if Sha256::digest(payload).as_slice() != digest {
        tracing::warn!(path = %path.display(), "compiled-artifact cache entry is corrupt; recompiling");
        return None;
    }
    // SAFETY: `Component::deserialize` trusts its input to be wasmtime's own
    // output for a compatible engine. The payload was written by `write_entry`
    // from `Component::serialize`, its sha256 matches the digest stored beside
    // it (so it is not truncated or altered by accident), and the file name
    // carries the engine's compatibility fingerprint; wasmtime additionally
    // checks its version header and refuses incompatible artifacts.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, payload) };
    match component {
        Ok(component) => Some(component),
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "compiled-artifact cache entry refused; recompiling");
            None
        }
    }
}

fn write_entry(path: &Path, component: &Component) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let payload = component.serialize()?;
    let mut bytes = Vec::with_capacity(DIGEST_LEN + payload.len());
    bytes.extend_from_slice(&Sha256::digest(&payload));
    bytes.extend_from_slice(&payload);
    // Write then rename, so a concurrent reader never sees a partial file.
    let tmp = tempfile_path(path);
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Refreshes an entry's modification time, so eviction spares what is used.
fn mark_used(path: &Path) {
    let touched = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(err) = touched {
        tracing::debug!(path = %path.display(), error = %err, "could not mark a cache entry as used");
    }
}

/// Removes the least recently used entries beside `newest` until all of
/// them fit in `max_bytes`; `newest` itself is never removed. Failures
/// (another process removing the same entry) only leave the cache larger.
fn evict_beyond(newest: &Path, max_bytes: u64) {
    let Some(dir) = newest.parent() else {
        return;
    };
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = listing
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().and_then(|e| e.to_str()) == Some(ENTRY_EXTENSION))
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            Some((used, meta.len(), entry.path()))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= max_bytes {
            break;
        }
        if path == newest {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total = total.saturating_sub(len);
                tracing::debug!(path = %path.display(), "evicted from the compiled-artifact cache");
            }
            Err(err) => {
                tracing::debug!(path = %path.display(), error = %err, "could not evict a cache entry")
            }
        }
    }
}

fn tempfile_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).expect("engine")
    }

    #[test]
    fn second_load_hits_and_corruption_recompiles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let cache = ArtifactCache::new(Some(dir.path().to_path_buf()));
        let wasm = empty_component();
        let sha = hex::encode(Sha256::digest(&wasm));
        let (_, first) = cache.load(&engine, &sha, &wasm).expect("compile");
        assert_eq!(first, CacheOutcome::Compiled);
        let (_, second) = cache.load(&engine, &sha, &wasm).expect("hit");
        assert_eq!(second, CacheOutcome::Hit);

        let entry = cache.entry_path(&engine, &sha).expect("path");
        let bytes = std::fs::read(&entry).expect("read");
        // Truncation and a flipped byte are both detected and recompiled.
        for damaged in [
            bytes[..bytes.len() / 2].to_vec(),
            flip_last(&bytes),
            Vec::new(),
        ] {
            std::fs::write(&entry, damaged).expect("write");
            let (_, outcome) = cache.load(&engine, &sha, &wasm).expect("recompile");
            assert_eq!(outcome, CacheOutcome::Compiled);
        }
    }

    #[test]
    fn the_least_recently_used_entries_go_once_the_cache_is_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let unbounded = ArtifactCache::new(Some(dir.path().to_path_buf()));
        // Three distinct components: the empty one with a custom section each.
        let wasm: Vec<Vec<u8>> = (0u8..3).map(tagged_component).collect();
        let sha: Vec<String> = wasm
            .iter()
            .map(|w| hex::encode(Sha256::digest(w)))
            .collect();
        let path = |n: usize| unbounded.entry_path(&engine, &sha[n]).expect("path");
        for n in 0..2 {
            unbounded.load(&engine, &sha[n], &wasm[n]).expect("compile");
        }
        let size = std::fs::metadata(path(0)).expect("entry").len();
        // Entry 1 is older than entry 0, as if 0 had just been used.
        let ago = |secs| SystemTime::now() - std::time::Duration::from_secs(secs);
        let set_used = |n: usize, at: SystemTime| {
            let file = std::fs::File::options()
                .write(true)
                .open(path(n))
                .expect("open");
            file.set_modified(at).expect("set mtime");
        };
        set_used(0, ago(60));
        set_used(1, ago(120));
        let bounded = unbounded.clone().with_max_bytes(size * 5 / 2);
        bounded.load(&engine, &sha[2], &wasm[2]).expect("compile");
        assert!(path(0).exists(), "the more recently used entry stays");
        assert!(!path(1).exists(), "the least recently used entry goes");
        assert!(path(2).exists(), "the new entry stays");
        // A hit refreshes an entry: now 2 is older than 0 and goes next.
        set_used(2, ago(60));
        set_used(0, ago(120));
        let (_, hit) = bounded.load(&engine, &sha[0], &wasm[0]).expect("hit");
        assert_eq!(hit, CacheOutcome::Hit);
        bounded.load(&engine, &sha[1], &wasm[1]).expect("compile");
        assert!(path(0).exists() && path(1).exists() && !path(2).exists());
        // The newest entry stays even when it alone exceeds the bound.
        let tiny = bounded.clone().with_max_bytes(1);
        tiny.load(&engine, &sha[2], &wasm[2]).expect("compile");
        assert!(path(2).exists() && !path(0).exists() && !path(1).exists());
    }

    /// The empty component with a custom section holding `tag`.
    fn tagged_component(tag: u8) -> Vec<u8> {
        let mut wasm = empty_component();
        // Section 0 (custom), 3 bytes: name length 1, name "t", payload tag.
        wasm.extend_from_slice(&[0x00, 0x03, 0x01, b't', tag]);
        wasm
    }

    fn flip_last(bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        if let Some(last) = out.last_mut() {
            *last ^= 0xff;
        }
        out
    }

    /// The smallest valid component: the binary header and no sections.
    fn empty_component() -> Vec<u8> {
        vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]
    }
}
