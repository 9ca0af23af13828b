//! test-hostile: placeholder, being written.
