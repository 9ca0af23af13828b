//! What a state request can fail with, typed so that every wire codec maps it
//! the same way.
//!
//! [`StateError`] carries the Dapr error code (`ERR_STATE_SAVE`, …) and an
//! [`ErrorKind`] saying what sort of failure it is. The HTTP codec turns the
//! kind into a status code, the gRPC codec into a `tonic::Code`; neither needs
//! to look inside the error. The messages follow the wording Dapr uses, so apps
//! matching on them keep working.

use super::super::ComponentError;

/// What sort of failure an error is, independent of the wire protocol.
///
/// The variants follow gRPC's status codes because they are the finer of the
/// two vocabularies; the HTTP codec collapses them onto Dapr's status codes.
/// `ErrorKind` is not state-specific: other building blocks should reuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or names something invalid (HTTP 400).
    InvalidArgument,
    /// The addressed thing does not exist (HTTP 404).
    NotFound,
    /// A concurrency check failed, e.g. an ETag mismatch (HTTP 409).
    Conflict,
    /// The sidecar is not set up for the request, e.g. no state store at all
    /// (Dapr answers 500).
    FailedPrecondition,
    /// The component does not implement the operation (Dapr answers 500).
    Unimplemented,
    /// Every component instance is busy and the wait queue is full.
    ResourceExhausted,
    /// The component's backend cannot be reached (Dapr answers 500).
    Unavailable,
    /// The component did not answer in time (Dapr answers 500).
    DeadlineExceeded,
    /// Anything else that went wrong on the sidecar's side (HTTP 500).
    Internal,
    /// The caller did not present the API token (HTTP 401).
    Unauthenticated,
}

/// Which state operation failed; picks the Dapr error code for component failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateOp {
    /// `GET /v1.0/state/{store}/{key}`.
    Get,
    /// `POST /v1.0/state/{store}/bulk`.
    BulkGet,
    /// `POST /v1.0/state/{store}`.
    Save,
    /// `DELETE /v1.0/state/{store}/{key}`.
    Delete,
    /// gRPC `DeleteBulkState` (HTTP has no bulk delete).
    BulkDelete,
    /// `POST /v1.0/state/{store}/transaction`.
    Transaction,
    /// `POST /v1.0-alpha1/state/{store}/query`.
    Query,
}

impl StateOp {
    /// The Dapr error code reported when the store fails this operation.
    pub fn code(self) -> &'static str {
        match self {
            StateOp::Get => "ERR_STATE_GET",
            StateOp::BulkGet => "ERR_STATE_BULK_GET",
            StateOp::Save => "ERR_STATE_SAVE",
            StateOp::Delete | StateOp::BulkDelete => "ERR_STATE_DELETE",
            StateOp::Transaction => "ERR_STATE_TRANSACTION",
            StateOp::Query => "ERR_STATE_QUERY",
        }
    }
}

/// Dapr's code for a request the sidecar could not make sense of.
pub const ERR_MALFORMED_REQUEST: &str = "ERR_MALFORMED_REQUEST";

/// A failed state request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// No state store is loaded at all.
    #[error("state store {store} is not configured")]
    NotConfigured {
        /// The store the request named.
        store: String,
    },
    /// Some state stores are loaded, but not this one.
    #[error("state store {store} is not found")]
    StoreNotFound {
        /// The store the request named.
        store: String,
    },
    /// A key the app sent cannot be stored (empty, contains `||`, too long).
    #[error("{reason}")]
    InvalidKey {
        /// The reason, naming the key when it is short enough to quote.
        reason: String,
    },
    /// An option or metadata value of the request is invalid for this store
    /// (a bad `ttlInSeconds`, an ETag sent to a store without ETags).
    #[error("{}", op_message(*.op, store, key.as_deref(), reason))]
    InvalidOption {
        /// The operation that was refused.
        op: StateOp,
        /// The store the request named.
        store: String,
        /// The key concerned, where there is one.
        key: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A transaction was sent to a store without the TRANSACTIONAL feature.
    #[error("state store {store} doesn't support transactions")]
    TransactionsNotSupported {
        /// The store the request named.
        store: String,
    },
    /// A query was sent to a store without the QUERY_API feature.
    #[error("state store {store} does not support querying")]
    QueryNotSupported {
        /// The store the request named.
        store: String,
    },
    /// A transaction named an operation other than `upsert` or `delete`.
    #[error("operation type {operation} not supported")]
    UnsupportedOperation {
        /// The operation as the app wrote it.
        operation: String,
    },
    /// The store (or the runtime running it) failed the call.
    #[error("{}", op_message(*.op, store, key.as_deref(), &.source.to_string()))]
    Component {
        /// The operation that failed.
        op: StateOp,
        /// The store the request named.
        store: String,
        /// The key concerned, where there is one.
        key: Option<String>,
        /// What the component or runtime reported.
        source: ComponentError,
    },
}

impl StateError {
    /// The Dapr error code, e.g. `ERR_STATE_STORE_NOT_FOUND`.
    pub fn code(&self) -> &'static str {
        match self {
            StateError::NotConfigured { .. } => "ERR_STATE_STORE_NOT_CONFIGURED",
            StateError::StoreNotFound { .. } => "ERR_STATE_STORE_NOT_FOUND",
            StateError::InvalidKey { .. } => ERR_MALFORMED_REQUEST,
            StateError::TransactionsNotSupported { .. } | StateError::QueryNotSupported { .. } => {
                "ERR_STATE_STORE_NOT_SUPPORTED"
            }
            StateError::UnsupportedOperation { .. } => "ERR_NOT_SUPPORTED_STATE_OPERATION",
            StateError::InvalidOption { op, .. } | StateError::Component { op, .. } => op.code(),
        }
    }

    /// What sort of failure this is; codecs map it to their status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StateError::NotConfigured { .. } => ErrorKind::FailedPrecondition,
            StateError::StoreNotFound { .. }
            | StateError::InvalidKey { .. }
            | StateError::InvalidOption { .. }
            | StateError::UnsupportedOperation { .. } => ErrorKind::InvalidArgument,
            StateError::TransactionsNotSupported { .. } | StateError::QueryNotSupported { .. } => {
                ErrorKind::Unimplemented
            }
            StateError::Component { source, .. } => component_kind(source),
        }
    }
}

/// How a component failure is classified.
fn component_kind(error: &ComponentError) -> ErrorKind {
    match error {
        ComponentError::EtagMismatch => ErrorKind::Conflict,
        ComponentError::EtagInvalid | ComponentError::InvalidArgument(_) => {
            ErrorKind::InvalidArgument
        }
        ComponentError::NotFound => ErrorKind::NotFound,
        ComponentError::NotSupported(_) => ErrorKind::Unimplemented,
        ComponentError::Unavailable(_) => ErrorKind::Unavailable,
        ComponentError::Timeout { .. } => ErrorKind::DeadlineExceeded,
        ComponentError::Overloaded { .. } => ErrorKind::ResourceExhausted,
        ComponentError::Trapped { .. } | ComponentError::Internal(_) => ErrorKind::Internal,
    }
}

/// The message Dapr gives when `op` fails on `store` because of `detail`.
fn op_message(op: StateOp, store: &str, key: Option<&str>, detail: &str) -> String {
    let key = key.unwrap_or_default();
    match op {
        StateOp::Get => format!("fail to get {key} from state store {store}: {detail}"),
        StateOp::BulkGet => format!("failed to bulk get state from state store {store}: {detail}"),
        StateOp::Save => format!("failed saving state in state store {store}: {detail}"),
        StateOp::Delete => format!("failed deleting state with key {key}: {detail}"),
        StateOp::BulkDelete => format!("failed deleting state in state store {store}: {detail}"),
        StateOp::Transaction => format!("error while executing state transaction: {detail}"),
        StateOp::Query => format!("state store {store} query failed: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_kinds_and_messages_follow_dapr() {
        let component = |op, source| StateError::Component {
            op,
            store: "s".into(),
            key: Some("k".into()),
            source,
        };
        let cases: Vec<(StateError, &str, ErrorKind, &str)> = vec![
            (
                StateError::NotConfigured { store: "s".into() },
                "ERR_STATE_STORE_NOT_CONFIGURED",
                ErrorKind::FailedPrecondition,
                "state store s is not configured",
            ),
            (
                StateError::StoreNotFound { store: "s".into() },
                "ERR_STATE_STORE_NOT_FOUND",
                ErrorKind::InvalidArgument,
                "state store s is not found",
            ),
            (
                component(StateOp::Save, ComponentError::EtagMismatch),
                "ERR_STATE_SAVE",
                ErrorKind::Conflict,
                "failed saving state in state store s: possible etag mismatch. error from state store: the etag does not match",
            ),
            (
                component(StateOp::Delete, ComponentError::EtagInvalid),
                "ERR_STATE_DELETE",
                ErrorKind::InvalidArgument,
                "failed deleting state with key k: invalid etag value",
            ),
            (
                component(
                    StateOp::Get,
                    ComponentError::Timeout {
                        component: "redis".into(),
                        timeout_ms: 5,
                    },
                ),
                "ERR_STATE_GET",
                ErrorKind::DeadlineExceeded,
                "fail to get k from state store s: component `redis` did not answer within 5 ms",
            ),
            (
                component(
                    StateOp::Transaction,
                    ComponentError::Overloaded {
                        component: "redis".into(),
                        reason: "queue full".into(),
                    },
                ),
                "ERR_STATE_TRANSACTION",
                ErrorKind::ResourceExhausted,
                "error while executing state transaction: component `redis` is overloaded: queue full",
            ),
            (
                StateError::TransactionsNotSupported { store: "s".into() },
                "ERR_STATE_STORE_NOT_SUPPORTED",
                ErrorKind::Unimplemented,
                "state store s doesn't support transactions",
            ),
            (
                StateError::UnsupportedOperation {
                    operation: "merge".into(),
                },
                "ERR_NOT_SUPPORTED_STATE_OPERATION",
                ErrorKind::InvalidArgument,
                "operation type merge not supported",
            ),
        ];
        for (error, code, kind, message) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.kind(), kind, "{error:?}");
            assert_eq!(error.to_string(), message, "{error:?}");
        }
    }
}
