//! The app channel for HTTP apps: one pooled hyper client, keep-alive
//! connections reused across calls.

use super::events::{
    self, BulkDelivery, CLOUD_EVENT_BATCH_CONTENT_TYPE, CLOUD_EVENT_CONTENT_TYPE, TopicDelivery,
    Verdict,
};
use super::{APP_TOKEN_HEADER, AppChannel, AppChannelError, AppRequest, AppResponse};
use crate::blocks::pubsub::subscription::{self, SubscriptionSpec};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;

/// The path Dapr probes for app health by default.
pub const HEALTH_PATH: &str = "/healthz";
/// Where an HTTP app lists its programmatic subscriptions.
pub const SUBSCRIBE_PATH: &str = "/dapr/subscribe";
/// W3C trace context headers, copied from an event onto its delivery so the
/// app's handler joins the publisher's trace.
/// The CloudEvent attributes and the headers share their names.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

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
        self.send_with(verb, path_and_query, content_type, &[], body)
            .await
    }

    async fn send_with(
        &self,
        verb: &str,
        path_and_query: &str,
        content_type: &str,
        headers: &[(&str, &str)],
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
        for (name, value) in headers {
            request = request.header(*name, *value);
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

    async fn subscriptions(&self) -> Result<Vec<SubscriptionSpec>, AppChannelError> {
        let answer = self.send("GET", SUBSCRIBE_PATH, "", Vec::new()).await?;
        match answer.status {
            200..=299 if answer.body.iter().all(u8::is_ascii_whitespace) => Ok(Vec::new()),
            200..=299 => subscription::from_app_json(&answer.body).map_err(|err| {
                AppChannelError::InvalidRequest(format!("{SUBSCRIBE_PATH} answered {err}"))
            }),
            404 => Ok(Vec::new()),
            status => Err(AppChannelError::Unreachable(format!(
                "{SUBSCRIBE_PATH} answered {status}"
            ))),
        }
    }

    async fn deliver(&self, delivery: TopicDelivery<'_>) -> Result<Verdict, AppChannelError> {
        let body = serde_json::to_vec(delivery.event)
            .map_err(|err| AppChannelError::InvalidRequest(err.to_string()))?;
        let headers = trace_headers(delivery.event);
        let answer = self
            .send_with(
                "POST",
                &subscription::http_path(delivery.route),
                CLOUD_EVENT_CONTENT_TYPE,
                &headers,
                body,
            )
            .await?;
        Ok(Verdict::from_http(answer.status, &answer.body))
    }

    async fn deliver_bulk(
        &self,
        delivery: BulkDelivery<'_>,
    ) -> Result<Vec<Verdict>, AppChannelError> {
        let entries: Vec<serde_json::Value> = delivery
            .entries
            .iter()
            .map(|entry| {
                serde_json::json!({
                    "entryId": entry.entry_id,
                    "event": entry.event,
                    "contentType": CLOUD_EVENT_CONTENT_TYPE,
                    "metadata": {},
                })
            })
            .collect();
        let body = serde_json::json!({
            "entries": entries,
            "id": uuid::Uuid::new_v4().to_string(),
            "metadata": {},
            "pubsubname": delivery.pubsub,
            "topic": delivery.topic,
            "type": "com.dapr.event.sent",
        });
        let body = serde_json::to_vec(&body)
            .map_err(|err| AppChannelError::InvalidRequest(err.to_string()))?;
        let answer = self
            .send(
                "POST",
                &subscription::http_path(delivery.route),
                CLOUD_EVENT_BATCH_CONTENT_TYPE,
                body,
            )
            .await?;
        let ids: Vec<&str> = delivery
            .entries
            .iter()
            .map(|e| e.entry_id.as_str())
            .collect();
        Ok(events::bulk_verdicts_from_http(
            answer.status,
            &answer.body,
            &ids,
        ))
    }
}

/// The event's trace context, as headers for its delivery.
fn trace_headers(event: &serde_json::Value) -> Vec<(&'static str, &str)> {
    TRACE_HEADERS
        .iter()
        .filter_map(|name| {
            let value = event.get(*name)?.as_str().filter(|v| !v.is_empty())?;
            Some((*name, value))
        })
        .collect()
}
