//! Log lines that the host writes, tagged with the component's name.
//!
//! Prefer these to `println!`: stdout of a component is not part of the
//! sidecar's log stream and is discarded by default.

use crate::bindings::state_store::outrig::component::host::{self, LogLevel};

/// Logs at debug level.
pub fn debug(message: impl AsRef<str>) {
    host::log(LogLevel::Debug, message.as_ref());
}

/// Logs at info level.
pub fn info(message: impl AsRef<str>) {
    host::log(LogLevel::Info, message.as_ref());
}

/// Logs at warn level.
pub fn warn(message: impl AsRef<str>) {
    host::log(LogLevel::Warn, message.as_ref());
}

/// Logs at error level.
pub fn error(message: impl AsRef<str>) {
    host::log(LogLevel::Error, message.as_ref());
}
