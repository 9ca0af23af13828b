//! `test-hostile`: a state store for the host's hostile-component tests,
//! never shipped as a built-in.
//!
//! Ordinary keys behave as in a plain in-memory store (no ETags, no TTL).
//! `get` misbehaves when the key ends in one of the suffixes of
//! [`Misbehaviour`] (`||trap`, `||loop`, `||bomb`, `||socket`, `||recurse`,
//! `||huge`), so a test can ask for each failure the sandbox must contain
//! and then check that the sidecar still serves.

mod misbehaviour;

use misbehaviour::Misbehaviour;
use outrig_sdk::state::*;
use outrig_sdk::{Feature, Metadata, Result};
use std::collections::HashMap;

/// The store: plain values by key.
pub struct Hostile {
    values: HashMap<String, Vec<u8>>,
}

impl StateStore for Hostile {
    fn init(_metadata: Metadata) -> Result<Self> {
        Ok(Hostile {
            values: HashMap::new(),
        })
    }

    fn features() -> Vec<Feature> {
        Vec::new()
    }

    fn get(&mut self, request: GetRequest) -> Result<Option<Item>> {
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
        self.values.insert(request.key, request.value);
        Ok(())
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<()> {
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
