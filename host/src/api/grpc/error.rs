//! The one place where failures become gRPC statuses.
//!
//! Block errors arrive through `From<StateError>` and `From<PubSubError>`
//! for `Status`: the status code
//! comes from the error's [`ErrorKind`] ([`code_for`]), the message is the
//! error's (Dapr's wording), and the details carry a `google.rpc.ErrorInfo`
//! with domain `dapr.io`, whose reason is the one Dapr sends for that error
//! (`DAPR_STATE_NOT_FOUND`, …) or, where Dapr sends none, the Dapr error code
//! (`ERR_STATE_SAVE`, …). SDKs read the reason as the error code
//! (`DaprGrpcError.error_code()` in Python).

use crate::blocks::pubsub::PubSubError;
use crate::blocks::state::{ErrorKind, StateError, StateOp};
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` Dapr uses.
pub const ERROR_DOMAIN: &str = "dapr.io";

/// The gRPC code for each kind of failure (the kinds follow gRPC's codes).
pub fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        // Dapr answers an ETag mismatch with ABORTED.
        ErrorKind::Conflict => Code::Aborted,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Internal => Code::Internal,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
    }
}

impl From<StateError> for Status {
    fn from(error: StateError) -> Self {
        let code = match error {
            // Dapr answers INTERNAL here, unlike for transactions (UNIMPLEMENTED).
            StateError::QueryNotSupported { .. } => Code::Internal,
            _ => code_for(error.kind()),
        };
        let reason = dapr_reason(&error).unwrap_or(error.code());
        with_error_info(code, error.to_string(), reason)
    }
}

impl From<PubSubError> for Status {
    fn from(error: PubSubError) -> Self {
        // What Dapr puts in the ErrorInfo's metadata of a failed publish;
        // a bulk publish adds the entries not published (JSON), which
        // Dapr's status leaves out.
        let mut metadata = HashMap::new();
        match &error {
            PubSubError::Publish { topic, source, .. } => {
                metadata.insert("topic".to_owned(), topic.clone());
                metadata.insert("error".to_owned(), source.to_string());
            }
            PubSubError::BulkPublish { topic, failed, .. } => {
                let entries: Vec<serde_json::Value> = failed
                    .iter()
                    .map(|entry| serde_json::json!({"entryId": entry.entry_id, "error": entry.error}))
                    .collect();
                metadata.insert("topic".to_owned(), topic.clone());
                metadata.insert("error".to_owned(), error.to_string());
                metadata.insert(
                    "failedEntries".to_owned(),
                    serde_json::Value::from(entries).to_string(),
                );
            }
            _ => {}
        }
        with_error_info_metadata(
            code_for(error.kind()),
            error.to_string(),
            pubsub_reason(&error),
            metadata,
        )
    }
}

/// A status with a `google.rpc.ErrorInfo` (domain `dapr.io`) in its details.
pub fn with_error_info(code: Code, message: String, reason: &str) -> Status {
    with_error_info_metadata(code, message, reason, HashMap::new())
}

/// A status with a `google.rpc.ErrorInfo` (domain `dapr.io`) carrying
/// `metadata` in its details.
pub fn with_error_info_metadata(
    code: Code,
    message: String,
    reason: &str,
    metadata: HashMap<String, String>,
) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, metadata);
    tracing::debug!(?code, reason, %message, "gRPC request failed");
    Status::with_error_details(code, message, details)
}

/// The `ErrorInfo.reason` Dapr 1.17–1.19 sends for `error`, where it sends one.
fn dapr_reason(error: &StateError) -> Option<&'static str> {
    Some(match error {
        StateError::NotConfigured { .. } => "DAPR_STATE_NOT_CONFIGURED",
        StateError::StoreNotFound { .. } => "DAPR_STATE_NOT_FOUND",
        StateError::InvalidKey { .. } => "DAPR_STATE_ILLEGAL_KEY",
        StateError::TransactionsNotSupported { .. } => "DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED",
        StateError::QueryNotSupported { .. } => "DAPR_STATE_QUERYING_NOT_SUPPORTED",
        StateError::Component {
            op: StateOp::Query, ..
        } => "DAPR_STATE_QUERY_FAILED",
        _ => return None,
    })
}

/// The `ErrorInfo.reason` Dapr 1.19 sends for each publish failure.
fn pubsub_reason(error: &PubSubError) -> &'static str {
    match error {
        PubSubError::NotConfigured { .. } => "DAPR_PUBSUB_NOT_CONFIGURED",
        PubSubError::NameEmpty => "DAPR_PUBSUB_NAME_EMPTY",
        PubSubError::NotFound { .. } => "DAPR_PUBSUB_NOT_FOUND",
        PubSubError::TopicEmpty { .. } => "DAPR_PUBSUB_TOPIC_NAME_EMPTY",
        PubSubError::InvalidMetadata { .. } => "DAPR_PUBSUB_METADATA_DESERIALIZATION",
        PubSubError::CloudEvent { .. } => "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
        PubSubError::BulkUnreadable { .. } => "DAPR_PUBSUB_UNMARSHAL_EVENTS",
        PubSubError::BulkEntryInvalid { .. } => "DAPR_PUBSUB_MARSHAL_EVENTS",
        PubSubError::Publish { .. } | PubSubError::BulkPublish { .. } => {
            "DAPR_PUBSUB_PUBLISH_MESSAGE"
        }
    }
}
