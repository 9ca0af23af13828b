//! `state.in-memory`: a volatile store, placeholder until the full one lands.
use outrig_sdk::state::*;
use outrig_sdk::{Feature, Metadata, Result};
use std::collections::HashMap;

struct Memory(HashMap<String, Vec<u8>>);

impl StateStore for Memory {
    fn init(_metadata: Metadata) -> Result<Self> {
        Ok(Memory(HashMap::new()))
    }
    fn features() -> Vec<Feature> {
        vec![]
    }
    fn get(&mut self, req: GetRequest) -> Result<Option<Item>> {
        Ok(self.0.get(&req.key).map(|v| Item { value: v.clone(), etag: None, expires_at_unix: None }))
    }
    fn set(&mut self, req: SetRequest) -> Result<()> {
        self.0.insert(req.key, req.value);
        Ok(())
    }
    fn delete(&mut self, req: DeleteRequest) -> Result<()> {
        self.0.remove(&req.key);
        Ok(())
    }
}

outrig_sdk::export_state_store!(Memory);
