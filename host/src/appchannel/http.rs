//! The app channel for HTTP apps: one pooled hyper client, keep-alive
//! connections reused across calls.

use super::{APP_TOKEN_HEADER, AppChannel, AppChannelError, AppRequest, AppResponse};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;

/// The path Dapr probes for app health by default.
pub const HEALTH_PATH: &str = "/healthz";

/// Calls an HTTP app.
pub struct HttpChannel {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    app_token: Option<String>,
}

impl HttpChannel {
    /// A channel to the app at `address`; connections are opened on demand and pooled.
    pub fn new(address: SocketAddr, app_token: Option<String>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        HttpChannel {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: format!("http://{address}"),
            app_token: app_token.filter(|token| !token.is_empty()),
        }
    }

    async fn send(
        &self,
        verb: &str,
        path_and_query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<AppResponse, AppChannelError> {
        let method = hyper::Method::from_bytes(verb.as_bytes())
            .map_err(|_| AppChannelError::InvalidRequest(format!("HTTP verb {verb:?}")))?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.base));
        if !content_type.is_empty() {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(token) = &self.app_token {
            request = request.header(APP_TOKEN_HEADER, token);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| AppChannelError::InvalidRequest(err.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| AppChannelError::Unreachable(err.to_string()))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| AppChannelError::Unreachable(err.to_string()))?
            .to_bytes()
            .to_vec();
        Ok(AppResponse {
            status,
            content_type,
            body,
        })
    }
}

#[async_trait::async_trait]
impl AppChannel for HttpChannel {
    async fn invoke(&self, request: AppRequest) -> Result<AppResponse, AppChannelError> {
        let mut path = format!("/{}", request.method.trim_start_matches('/'));
        if !request.query.is_empty() {
            path.push('?');
            path.push_str(&request.query);
        }
        let verb = if request.verb.is_empty() {
            "POST"
        } else {
            &request.verb
        };
        self.send(verb, &path, &request.content_type, request.body)
            .await
    }

    async fn health_check(&self) -> Result<(), AppChannelError> {
        let answer = self.send("GET", HEALTH_PATH, "", Vec::new()).await?;
        if (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(AppChannelError::Unreachable(format!(
                "{HEALTH_PATH} answered {}",
                answer.status
            )))
        }
    }
}
