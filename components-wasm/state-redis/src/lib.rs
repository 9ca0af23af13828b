//! state-redis: placeholder, being written.
