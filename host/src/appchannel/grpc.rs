//! The app channel for gRPC apps: a client of the app's
//! `dapr.proto.runtime.v1.AppCallback` service over one multiplexed HTTP/2
//! connection.

use super::{APP_TOKEN_HEADER, AppChannel, AppChannelError, AppRequest, AppResponse};
use crate::api::grpc::proto::common::{self, http_extension::Verb};
use crate::api::grpc::proto::runtime::app_callback_client::AppCallbackClient;
use crate::api::grpc::proto::runtime::app_callback_health_check_client::AppCallbackHealthCheckClient;
use std::net::SocketAddr;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// Calls a gRPC app.
pub struct GrpcChannel {
    channel: Channel,
    app_token: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl GrpcChannel {
    /// A channel to the app at `address`; it connects on first use and
    /// reconnects when the connection drops.
    pub fn new(address: SocketAddr, app_token: Option<String>) -> Result<Self, AppChannelError> {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|err| AppChannelError::InvalidRequest(err.to_string()))?
            .tcp_nodelay(true);
        let app_token = app_token
            .filter(|token| !token.is_empty())
            .map(|token| {
                token.parse().map_err(|_| {
                    AppChannelError::InvalidRequest("APP_API_TOKEN is not valid metadata".into())
                })
            })
            .transpose()?;
        Ok(GrpcChannel {
            channel: endpoint.connect_lazy(),
            app_token,
        })
    }

    /// `message` as a request carrying the app token.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.app_token {
            request
                .metadata_mut()
                .insert(APP_TOKEN_HEADER, token.clone());
        }
        request
    }
}

impl From<tonic::Status> for AppChannelError {
    fn from(status: tonic::Status) -> Self {
        AppChannelError::Status {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// The HTTP verb as the `HTTPExtension` names it; unknown verbs are refused.
fn verb(name: &str) -> Result<Verb, AppChannelError> {
    let name = if name.is_empty() { "POST" } else { name };
    Verb::from_str_name(&name.to_ascii_uppercase())
        .filter(|verb| *verb != Verb::None)
        .ok_or_else(|| AppChannelError::InvalidRequest(format!("HTTP verb {name:?}")))
}

#[async_trait::async_trait]
impl AppChannel for GrpcChannel {
    async fn invoke(&self, request: AppRequest) -> Result<AppResponse, AppChannelError> {
        let message = common::InvokeRequest {
            method: request.method,
            data: Some(prost_types::Any {
                type_url: String::new(),
                value: request.body,
            }),
            content_type: request.content_type,
            http_extension: Some(common::HttpExtension {
                verb: verb(&request.verb)?.into(),
                querystring: request.query,
            }),
        };
        let answer = AppCallbackClient::new(self.channel.clone())
            .on_invoke(self.request(message))
            .await?
            .into_inner();
        Ok(AppResponse {
            status: 200,
            content_type: answer.content_type,
            body: answer.data.map(|data| data.value).unwrap_or_default(),
        })
    }

    async fn health_check(&self) -> Result<(), AppChannelError> {
        AppCallbackHealthCheckClient::new(self.channel.clone())
            .health_check(self.request(()))
            .await?;
        Ok(())
    }
}
