//! state-redb: placeholder, being written.
