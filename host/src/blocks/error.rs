//! What a component call can fail with, whatever the building block.

/// A failed call into a component: either the component answered with one of
/// the WIT contract's typed errors, or the runtime stopped the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComponentError {
    /// The item does not exist where the operation required it to.
    #[error("not found")]
    NotFound,
    /// The ETag given does not match the stored one.
    #[error("possible etag mismatch. error from state store: the etag does not match")]
    EtagMismatch,
    /// The ETag given is not one this store issues.
    #[error("invalid etag value")]
    EtagInvalid,
    /// The component refused the request as malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The component's backend cannot be reached right now.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The component does not implement this operation or option.
    #[error("operation not supported: {0}")]
    NotSupported(String),
    /// The component reported some other failure.
    #[error("{0}")]
    Internal(String),
    /// The call ran past its deadline and was stopped; the instance was discarded.
    #[error("component `{component}` did not answer within {timeout_ms} ms")]
    Timeout {
        /// The component's name.
        component: String,
        /// The deadline that was exceeded.
        timeout_ms: u64,
    },
    /// The component trapped (panic, memory limit, forbidden operation); the
    /// instance was discarded and the next call gets a fresh one.
    #[error("component `{component}` failed: {reason}")]
    Trapped {
        /// The component's name.
        component: String,
        /// What the trap said.
        reason: String,
    },
    /// Every instance is busy and the wait queue is full, or the wait timed out.
    #[error("component `{component}` is overloaded: {reason}")]
    Overloaded {
        /// The component's name.
        component: String,
        /// Why no instance could be had.
        reason: String,
    },
}
