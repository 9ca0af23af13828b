//! state-postgresql: placeholder, being written.
