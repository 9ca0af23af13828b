//! `test-hostile`: a state store for the host's hostile-component tests,
//! never shipped as a built-in.
//!
//! Ordinary keys behave as in a plain in-memory store (no ETags, no TTL).
//! `get` misbehaves when the key ends in one of the suffixes of
//! [`Misbehaviour`] (`||trap`, `||loop`, `||bomb`, `||socket`, `||recurse`,
//! `||huge`, `||escape`, `||logflood`, `||env=NAME`, `||envnames`,
//! `||fetch=URL`), so a test can ask for each failure the sandbox must
//! contain, or each grant it must honour, and then check that the sidecar
//! still serves.
//!
//! The metadata item `trap` makes the whole component broken: `init` traps
//! in `init`, `every-call` in every `get`, `set` and `delete`.

mod escape;
mod fetch;
mod misbehaviour;

use misbehaviour::Misbehaviour;
use outrig_sdk::state::*;
use outrig_sdk::{Feature, Metadata, Result};
use std::collections::HashMap;

/// The store: plain values by key.
pub struct Hostile {
    values: HashMap<String, Vec<u8>>,
    /// Whether every call traps (metadata `trap: every-call`).
    trap_every_call: bool,
}

impl Hostile {
    fn maybe_trap(&self, call: &str) {
        if self.trap_every_call {
            panic!("test-hostile: `{call}` traps on every call (metadata trap: every-call)");
        }
    }
}

impl StateStore for Hostile {
    fn init(metadata: Metadata) -> Result<Self> {
        let trap = metadata.get("trap").unwrap_or_default();
        if trap == "init" {
            panic!("test-hostile: init traps (metadata trap: init)");
        }
        Ok(Hostile {
            values: HashMap::new(),
            trap_every_call: trap == "every-call",
        })
    }

    fn features() -> Vec<Feature> {
        Vec::new()
    }

    fn get(&mut self, request: GetRequest) -> Result<Option<Item>> {
        self.maybe_trap("get");
        if let Some(misbehaviour) = Misbehaviour::for_key(&request.key) {
            return misbehaviour.act(&request.key);
        }
        Ok(self.values.get(&request.key).map(|value| Item {
            value: value.clone(),
            etag: None,
            expires_at_unix: None,
        }))
    }

    fn set(&mut self, request: SetRequest) -> Result<()> {
        self.maybe_trap("set");
        self.values.insert(request.key, request.value);
        Ok(())
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<()> {
        self.maybe_trap("delete");
        self.values.remove(&request.key);
        Ok(())
    }
}

outrig_sdk::export_state_store!(Hostile);

#[cfg(test)]
mod tests {
    use super::*;
    use outrig_sdk::state::Consistency;

    #[test]
    fn ordinary_keys_round_trip() {
        let mut store = Hostile::init(Metadata::default()).expect("init");
        let get = |key: &str| GetRequest {
            key: key.into(),
            consistency: Consistency::Eventual,
            metadata: Vec::new(),
        };
        store
            .set(SetRequest {
                key: "app||k".into(),
                value: b"v".to_vec(),
                etag: None,
                concurrency: Concurrency::LastWrite,
                consistency: Consistency::Eventual,
                ttl_seconds: None,
                metadata: Vec::new(),
            })
            .expect("set");
        let item = store.get(get("app||k")).expect("get");
        assert_eq!(item.map(|i| i.value), Some(b"v".to_vec()));
        assert!(store.get(get("app||other")).expect("get").is_none());
    }
}
