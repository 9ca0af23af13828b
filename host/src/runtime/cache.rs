//! The compiled-artifact cache: a warm start does no Cranelift work.
//!
//! Entries are keyed by the component's sha256 and the engine's compatibility
//! fingerprint, and carry a sha256 of their own bytes so a truncated or
//! corrupted file is detected and recompiled, never loaded.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

const DIGEST_LEN: usize = 32;

/// Where compiled components are kept between runs.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
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
        ArtifactCache { dir }
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
            return Ok((component, CacheOutcome::Hit));
        }
        let component = Component::new(engine, wasm)?;
        if let Err(err) = write_entry(&path, &component) {
            tracing::warn!(path = %path.display(), error = %err, "could not write the compiled-artifact cache");
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
