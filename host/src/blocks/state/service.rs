//! The state block: to be written.
