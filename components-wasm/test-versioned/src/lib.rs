//! `test-versioned`: a state store for the host's hot-reload tests, never
//! shipped as a built-in.
//!
//! Every `get` answers `{"version": V, "key": K}`, where `V` is the `version`
//! field of its metadata. The same `.wasm` with two YAML files that differ in
//! that field is two versions that answer differently, so a test can tell,
//! for every response served during a swap, which version served it.
//!
//! `failInit: "true"` in the metadata makes `init` refuse, so a test can
//! swap to a version that fails to start.
//!
//! Every `get` also adds 1 to its counter `gets{version=V}` through the
//! host's metrics import, for the metrics tests.

use outrig_sdk::state::*;
use outrig_sdk::{Error, Feature, Metadata, Result};

/// The store: it holds nothing but the version it reports.
pub struct Versioned {
    version: String,
}

impl StateStore for Versioned {
    fn init(metadata: Metadata) -> Result<Self> {
        if metadata.flag("failInit", false)? {
            return Err(Error::invalid("refusing to start: failInit is set"));
        }
        Ok(Versioned {
            version: metadata.require("version")?.to_owned(),
        })
    }

    fn features() -> Vec<Feature> {
        Vec::new()
    }

    fn get(&mut self, request: GetRequest) -> Result<Option<Item>> {
        outrig_sdk::metrics::counter_add("gets", 1, &[("version", &self.version)]);
        let value = serde_json::json!({"version": self.version, "key": request.key});
        Ok(Some(Item {
            value: value.to_string().into_bytes(),
            etag: None,
            expires_at_unix: None,
        }))
    }

    fn set(&mut self, _request: SetRequest) -> Result<()> {
        Ok(())
    }

    fn delete(&mut self, _request: DeleteRequest) -> Result<()> {
        Ok(())
    }
}

outrig_sdk::export_state_store!(Versioned);

#[cfg(test)]
mod tests {
    use super::*;
    use outrig_sdk::state::Consistency;

    fn metadata(pairs: &[(&str, &str)]) -> Metadata {
        Metadata::from(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn reads_name_the_version_and_init_can_be_made_to_fail() {
        let mut store = Versioned::init(metadata(&[("version", "blue")])).expect("init");
        let item = store
            .get(GetRequest {
                key: "app||k".into(),
                consistency: Consistency::Eventual,
                metadata: Vec::new(),
            })
            .expect("get")
            .expect("an item");
        let value: serde_json::Value = serde_json::from_slice(&item.value).expect("json");
        assert_eq!(value["version"], "blue");
        assert!(Versioned::init(metadata(&[("version", "x"), ("failInit", "true")])).is_err());
        assert!(Versioned::init(metadata(&[])).is_err());
    }
}
