//! `DAPR_API_TOKEN` for gRPC: when the sidecar has a token, every call must
//! present it in the `dapr-api-token` metadata, or fail UNAUTHENTICATED with
//! Dapr's message.

use crate::api::ApiContext;
use crate::api::http::API_TOKEN_HEADER;
use std::sync::Arc;
use tonic::{Request, Status};

/// A tonic interceptor enforcing [`ApiContext::accepts_token`] on every call.
#[derive(Clone)]
pub struct RequireApiToken {
    ctx: Arc<ApiContext>,
}

impl RequireApiToken {
    /// The check for the token `ctx` holds (none: every call passes).
    pub fn new(ctx: Arc<ApiContext>) -> Self {
        RequireApiToken { ctx }
    }
}

impl tonic::service::Interceptor for RequireApiToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request.metadata().get(API_TOKEN_HEADER);
        if !self
            .ctx
            .accepts_token(presented.map(|value| value.as_bytes()))
        {
            let message = if presented.is_none() {
                "authentication error: missing api token"
            } else {
                "authentication error: api token mismatch"
            };
            return Err(Status::unauthenticated(message));
        }
        // Never passed on beyond the sidecar.
        request.metadata_mut().remove(API_TOKEN_HEADER);
        Ok(request)
    }
}
