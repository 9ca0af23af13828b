//! The app channel against small apps in the test: an axum HTTP app and a
//! tonic `AppCallback` app, each on a free local port.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::api::grpc::proto::common;
use crate::api::grpc::proto::runtime::{
    self, app_callback_health_check_server, app_callback_server,
};
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::routing::{any, get};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tonic::{Response, Status};

const TOKEN: &str = "app-s3cret";

fn config(protocol: AppProtocol, address: SocketAddr) -> AppChannelConfig {
    AppChannelConfig {
        protocol,
        address,
        app_token: Some(TOKEN.into()),
        ready_timeout: DEFAULT_READY_TIMEOUT,
    }
}

fn request(verb: &str) -> AppRequest {
    AppRequest {
        method: "orders/new".into(),
        verb: verb.into(),
        query: "a=1&b=2".into(),
        content_type: "application/json".into(),
        body: br#"{"qty":3}"#.to_vec(),
    }
}

/// An HTTP app echoing each request as JSON, remembering the peer of each
/// connection so pooling can be observed.
async fn http_app() -> (SocketAddr, Arc<Mutex<Vec<SocketAddr>>>) {
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    let echo = move |ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(peer);
            let (parts, body) = request.into_parts();
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            let body = body.collect().await.unwrap().to_bytes();
            axum::Json(json!({
                "verb": parts.method.as_str(),
                "path": parts.uri.path(),
                "query": parts.uri.query(),
                "token": header("dapr-api-token"),
                "contentType": header("content-type"),
                "body": String::from_utf8_lossy(&body),
            }))
        }
    };
    let app = axum::Router::new()
        .route("/healthz", get(|| async { StatusCode::NO_CONTENT }))
        .route("/{*path}", any(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (address, peers)
}

#[tokio::test]
async fn http_apps_get_the_method_verb_query_body_and_token_over_pooled_connections() {
    let (address, peers) = http_app().await;
    let channel = open(config(AppProtocol::Http, address)).await.unwrap();
    for verb in ["PUT", "GET", ""] {
        let answer = channel.invoke(request(verb)).await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type, "application/json");
        let echoed: Value = serde_json::from_slice(&answer.body).unwrap();
        let expected_verb = if verb.is_empty() { "POST" } else { verb };
        assert_eq!(
            echoed,
            json!({
                "verb": expected_verb, "path": "/orders/new", "query": "a=1&b=2",
                "token": TOKEN, "contentType": "application/json", "body": r#"{"qty":3}"#,
            })
        );
    }
    channel.health_check().await.unwrap();
    // Sequential calls reuse one connection: every request came from one peer.
    let peers = peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 3);
    assert!(peers.iter().all(|peer| *peer == peers[0]), "{peers:?}");
}

/// A gRPC app echoing invocations; its health check fails while `sick`.
#[derive(Default)]
struct GrpcApp {
    sick: bool,
}

fn token_of<T>(request: &tonic::Request<T>) -> String {
    request
        .metadata()
        .get("dapr-api-token")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tonic::async_trait]
impl app_callback_server::AppCallback for GrpcApp {
    async fn on_invoke(
        &self,
        request: tonic::Request<common::InvokeRequest>,
    ) -> Result<Response<common::InvokeResponse>, Status> {
        let token = token_of(&request);
        let call = request.into_inner();
        if call.method == "fail" {
            return Err(Status::not_found("no such order"));
        }
        let extension = call.http_extension.unwrap_or_default();
        let echoed = json!({
            "method": call.method,
            "verb": extension.verb().as_str_name(),
            "query": extension.querystring,
            "token": token,
            "contentType": call.content_type,
            "body": String::from_utf8_lossy(&call.data.unwrap_or_default().value),
        });
        Ok(Response::new(common::InvokeResponse {
            data: Some(prost_types::Any {
                type_url: String::new(),
                value: echoed.to_string().into_bytes(),
            }),
            content_type: "application/json".into(),
        }))
    }

    async fn list_topic_subscriptions(
        &self,
        _: tonic::Request<()>,
    ) -> Result<Response<runtime::ListTopicSubscriptionsResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn on_topic_event(
        &self,
        _: tonic::Request<runtime::TopicEventRequest>,
    ) -> Result<Response<runtime::TopicEventResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn list_input_bindings(
        &self,
        _: tonic::Request<()>,
    ) -> Result<Response<runtime::ListInputBindingsResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn on_binding_event(
        &self,
        _: tonic::Request<runtime::BindingEventRequest>,
    ) -> Result<Response<runtime::BindingEventResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn on_bulk_topic_event(
        &self,
        _: tonic::Request<runtime::TopicEventBulkRequest>,
    ) -> Result<Response<runtime::TopicEventBulkResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn on_job_event(
        &self,
        _: tonic::Request<runtime::JobEventRequest>,
    ) -> Result<Response<runtime::JobEventResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }
}

#[tonic::async_trait]
impl app_callback_health_check_server::AppCallbackHealthCheck for GrpcApp {
    async fn health_check(
        &self,
        request: tonic::Request<()>,
    ) -> Result<Response<runtime::HealthCheckResponse>, Status> {
        if self.sick || token_of(&request) != TOKEN {
            return Err(Status::unavailable("not ready"));
        }
        Ok(Response::new(runtime::HealthCheckResponse {}))
    }
}

async fn grpc_app(sick: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Arc::new(GrpcApp { sick });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(app_callback_server::AppCallbackServer::from_arc(
                app.clone(),
            ))
            .add_service(
                app_callback_health_check_server::AppCallbackHealthCheckServer::from_arc(app),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    address
}

#[tokio::test]
async fn grpc_apps_get_on_invoke_with_the_http_extension_and_token() {
    let channel = open(config(AppProtocol::Grpc, grpc_app(false).await))
        .await
        .unwrap();
    let answer = channel.invoke(request("PUT")).await.unwrap();
    assert_eq!(
        (answer.status, answer.content_type.as_str()),
        (200, "application/json")
    );
    let echoed: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        echoed,
        json!({
            "method": "orders/new", "verb": "PUT", "query": "a=1&b=2", "token": TOKEN,
            "contentType": "application/json", "body": r#"{"qty":3}"#,
        })
    );
    channel.health_check().await.unwrap();

    let failed = channel
        .invoke(AppRequest {
            method: "fail".into(),
            ..request("POST")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&failed, AppChannelError::Status { code: tonic::Code::NotFound, message } if message == "no such order"),
        "{failed:?}"
    );
    let bad_verb = channel.invoke(request("BREW")).await.unwrap_err();
    assert!(
        matches!(bad_verb, AppChannelError::InvalidRequest(_)),
        "{bad_verb:?}"
    );
}

#[tokio::test]
async fn an_unhealthy_grpc_app_fails_its_health_check() {
    let channel = open(config(AppProtocol::Grpc, grpc_app(true).await))
        .await
        .unwrap();
    let error = channel.health_check().await.unwrap_err();
    assert!(
        matches!(
            error,
            AppChannelError::Status {
                code: tonic::Code::Unavailable,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn open_waits_for_the_app_to_listen() {
    // A port that was free a moment ago; the "app" starts listening on it
    // only after `open` has begun waiting.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let opening = tokio::spawn(open(config(AppProtocol::Http, address)));
    // Not a timing assertion: only makes it likely that the first probes fail.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let accepted = tokio::spawn(async move { listener.accept().await.map(drop) });
    opening.await.unwrap().unwrap();
    accepted.await.unwrap().unwrap();
}

#[tokio::test]
async fn open_gives_up_when_the_app_never_listens() {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = AppChannelConfig {
        ready_timeout: Duration::from_millis(200),
        ..config(AppProtocol::Grpc, address)
    };
    let error = open(config).await.err().unwrap();
    assert!(
        matches!(error, AppChannelError::NotReady { .. }),
        "{error:?}"
    );
}

#[test]
fn protocols_parse_as_the_flag_spells_them() {
    assert_eq!(AppProtocol::parse("http"), Some(AppProtocol::Http));
    assert_eq!(AppProtocol::parse("grpc"), Some(AppProtocol::Grpc));
    assert_eq!(AppProtocol::parse("grpcs"), None);
}
