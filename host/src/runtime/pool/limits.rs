//! An instance's memory grant: wasmtime's [`StoreLimits`], remembering
//! whether the guest asked for more than it was granted, so the trap that
//! follows is reported as a memory limit hit rather than as any trap.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// The limiter of one instance's store.
pub struct MemoryGrant {
    limits: StoreLimits,
    granted_bytes: usize,
    exceeded: bool,
}

impl MemoryGrant {
    /// At most `granted_bytes` of linear memory per memory.
    pub fn new(granted_bytes: usize) -> Self {
        let limits = StoreLimitsBuilder::new()
            .memory_size(granted_bytes)
            // A guest that asks for more memory than granted traps with a clear
            // message instead of seeing an allocation failure it may mishandle.
            .trap_on_grow_failure(true)
            .build();
        MemoryGrant {
            limits,
            granted_bytes,
            exceeded: false,
        }
    }

    /// Whether the guest asked for more memory than granted.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl ResourceLimiter for MemoryGrant {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.granted_bytes {
            self.exceeded = true;
        }
        self.limits.memory_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_past_the_grant_traps_and_is_remembered() {
        let mut grant = MemoryGrant::new(1 << 20);
        assert!(matches!(grant.memory_growing(0, 1 << 19, None), Ok(true)));
        assert!(!grant.exceeded());
        assert!(grant.memory_growing(1 << 19, 2 << 20, None).is_err());
        assert!(grant.exceeded());
    }

    #[test]
    fn the_guests_own_maximum_is_not_a_grant_hit() {
        let mut grant = MemoryGrant::new(1 << 20);
        assert!(grant.memory_growing(0, 1 << 19, Some(1 << 18)).is_err());
        assert!(!grant.exceeded());
    }
}
