//! The `Dapr` service: each RPC is one line handing its message to the codec
//! of its API area (`state`, `pubsub`, `metadata`). RPCs of building blocks Outrig does
//! not have are not in `proto/`, so tonic answers them UNIMPLEMENTED.

use super::proto::runtime::{self, dapr_server::Dapr};
use super::{metadata, pubsub, state};
use crate::api::ApiContext;
use crate::blocks::pubsub::PubSubBlock;
use crate::blocks::state::StateBlock;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// What every RPC shares.
pub struct DaprApi {
    ctx: Arc<ApiContext>,
    state: StateBlock,
    pubsub: PubSubBlock,
}

impl DaprApi {
    /// The service over `ctx`'s components.
    pub fn new(ctx: Arc<ApiContext>) -> Self {
        DaprApi {
            state: StateBlock::new(&ctx.app_id, ctx.catalog.clone()),
            pubsub: PubSubBlock::new(
                &ctx.app_id,
                ctx.catalog.clone(),
                ctx.publish_signals.clone(),
            ),
            ctx,
        }
    }
}

/// A block result as an RPC answer; errors map in `error`.
fn answer<T>(result: Result<T, impl Into<Status>>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Into::into)
}

#[tonic::async_trait]
impl Dapr for DaprApi {
    async fn get_state(
        &self,
        request: Request<runtime::GetStateRequest>,
    ) -> Result<Response<runtime::GetStateResponse>, Status> {
        answer(state::get(&self.state, request.into_inner()).await)
    }

    async fn get_bulk_state(
        &self,
        request: Request<runtime::GetBulkStateRequest>,
    ) -> Result<Response<runtime::GetBulkStateResponse>, Status> {
        answer(state::get_bulk(&self.state, request.into_inner()).await)
    }

    async fn save_state(
        &self,
        request: Request<runtime::SaveStateRequest>,
    ) -> Result<Response<()>, Status> {
        answer(state::save(&self.state, request.into_inner()).await)
    }

    async fn query_state_alpha1(
        &self,
        request: Request<runtime::QueryStateRequest>,
    ) -> Result<Response<runtime::QueryStateResponse>, Status> {
        answer(state::query(&self.state, request.into_inner()).await)
    }

    async fn delete_state(
        &self,
        request: Request<runtime::DeleteStateRequest>,
    ) -> Result<Response<()>, Status> {
        answer(state::delete(&self.state, request.into_inner()).await)
    }

    async fn delete_bulk_state(
        &self,
        request: Request<runtime::DeleteBulkStateRequest>,
    ) -> Result<Response<()>, Status> {
        answer(state::delete_bulk(&self.state, request.into_inner()).await)
    }

    async fn execute_state_transaction(
        &self,
        request: Request<runtime::ExecuteStateTransactionRequest>,
    ) -> Result<Response<()>, Status> {
        answer(state::transact(&self.state, request.into_inner()).await)
    }

    async fn publish_event(
        &self,
        request: Request<runtime::PublishEventRequest>,
    ) -> Result<Response<()>, Status> {
        let trace = pubsub::trace_headers(request.metadata());
        answer(pubsub::publish(&self.pubsub, request.into_inner(), trace).await)
    }

    async fn bulk_publish_event_alpha1(
        &self,
        request: Request<runtime::BulkPublishRequest>,
    ) -> Result<Response<runtime::BulkPublishResponse>, Status> {
        let trace = pubsub::trace_headers(request.metadata());
        answer(pubsub::bulk_publish(&self.pubsub, request.into_inner(), trace).await)
    }

    async fn bulk_publish_event(
        &self,
        request: Request<runtime::BulkPublishRequest>,
    ) -> Result<Response<runtime::BulkPublishResponse>, Status> {
        let trace = pubsub::trace_headers(request.metadata());
        answer(pubsub::bulk_publish(&self.pubsub, request.into_inner(), trace).await)
    }

    async fn get_metadata(
        &self,
        _request: Request<runtime::GetMetadataRequest>,
    ) -> Result<Response<runtime::GetMetadataResponse>, Status> {
        Ok(Response::new(metadata::get(&self.ctx)))
    }

    async fn set_metadata(
        &self,
        request: Request<runtime::SetMetadataRequest>,
    ) -> Result<Response<()>, Status> {
        metadata::set(&self.ctx, request.into_inner());
        Ok(Response::new(()))
    }

    async fn shutdown(
        &self,
        _request: Request<runtime::ShutdownRequest>,
    ) -> Result<Response<()>, Status> {
        metadata::shutdown(&self.ctx);
        Ok(Response::new(()))
    }
}
