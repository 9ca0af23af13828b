//! Requests to the Dapr API, counted and timed per API, method and status:
//! [`record_http`] is an axum middleware on the HTTP router, [`record_grpc`]
//! the same on the gRPC routes. Label values come from fixed sets (Dapr's
//! API names, HTTP verbs, the gRPC service's methods, status classes) or,
//! for HTTP routes, from the router's own route templates.

use super::labels::LabelValues;
use super::{Latencies, latencies, metrics};
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Dapr's API areas, as the path segment after the version names them
/// (`/v1.0/state/…`); Outrig's own routes are under `outrig`.
const APIS: [&str; 17] = [
    "state",
    "publish",
    "invoke",
    "bindings",
    "secrets",
    "configuration",
    "lock",
    "unlock",
    "crypto",
    "metadata",
    "healthz",
    "shutdown",
    "actors",
    "workflows",
    "jobs",
    "subscribe",
    "outrig",
];

/// The value of `api` and `method` for anything outside the fixed sets.
const UNKNOWN: &str = "other";

/// The `route` of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Distinct HTTP route templates kept; the router has about twenty.
const MAX_ROUTES: usize = 64;

/// The gRPC service whose methods are labelled by name.
const DAPR_SERVICE: &str = "dapr.proto.runtime.v1.Dapr";

/// Each RPC of [`DAPR_SERVICE`] and its API area (a test checks this
/// against `proto/`).
const GRPC_METHODS: [(&str, &str); 13] = [
    ("GetState", "state"),
    ("GetBulkState", "state"),
    ("SaveState", "state"),
    ("QueryStateAlpha1", "state"),
    ("DeleteState", "state"),
    ("DeleteBulkState", "state"),
    ("ExecuteStateTransaction", "state"),
    ("PublishEvent", "publish"),
    ("BulkPublishEventAlpha1", "publish"),
    ("BulkPublishEvent", "publish"),
    ("GetMetadata", "metadata"),
    ("SetMetadata", "metadata"),
    ("Shutdown", "shutdown"),
];

/// gRPC status codes by number, named as the gRPC specification does.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRoute {
    api: &'static str,
    method: &'static str,
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpOutcome {
    api: &'static str,
    method: &'static str,
    route: Arc<str>,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcMethod {
    api: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcOutcome {
    api: &'static str,
    method: &'static str,
    code: &'static str,
}

/// The requests of one protocol: counted by their outcome's labels `O`,
/// timed by their route's labels `R`.
#[derive(Debug)]
struct Requests<R, O> {
    count: Family<O, Counter>,
    latency: Latencies<R>,
}

impl<R, O> Requests<R, O>
where
    R: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
    O: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    /// Registers `<server>_requests` and `<server>_request_duration_seconds`;
    /// `labels` says what the counter is labelled by.
    fn register(registry: &mut Registry, server: &str, api: &str, labels: &str) -> Self {
        let requests = Requests {
            count: Family::default(),
            latency: latencies(),
        };
        registry.register(
            format!("{server}_requests"),
            format!("Requests to the {api} by {labels}"),
            requests.count.clone(),
        );
        registry.register_with_unit(
            format!("{server}_request_duration"),
            format!("Time from a request to the {api} to its response headers"),
            Unit::Seconds,
            requests.latency.clone(),
        );
        requests
    }

    fn finished(&self, route: &R, outcome: &O, elapsed: Duration) {
        self.latency
            .get_or_create(route)
            .observe(elapsed.as_secs_f64());
        self.count.get_or_create(outcome).inc();
    }
}

/// The API request families.
#[derive(Debug)]
pub struct ApiMetrics {
    http: Requests<HttpRoute, HttpOutcome>,
    grpc: Requests<GrpcMethod, GrpcOutcome>,
    routes: LabelValues,
}

impl ApiMetrics {
    /// Registers the families in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        ApiMetrics {
            http: Requests::register(
                registry,
                "http_server",
                "HTTP API",
                "API, verb, route template and status class",
            ),
            grpc: Requests::register(
                registry,
                "grpc_server",
                "gRPC API",
                "API, method and status code",
            ),
            routes: LabelValues::new(MAX_ROUTES),
        }
    }

    fn http_route(&self, request: &Request) -> HttpRoute {
        let route = match request.extensions().get::<MatchedPath>() {
            Some(matched) => self.routes.get(matched.as_str()),
            None => self.routes.get(UNMATCHED),
        };
        HttpRoute {
            api: http_api(request.uri().path()),
            method: verb(request.method()),
            route,
        }
    }

    fn http_finished(&self, route: HttpRoute, status: StatusCode, elapsed: Duration) {
        let outcome = HttpOutcome {
            api: route.api,
            method: route.method,
            route: Arc::clone(&route.route),
            status: status_class(status),
        };
        self.http.finished(&route, &outcome, elapsed);
    }

    fn grpc_finished(&self, method: GrpcMethod, response: &Response, elapsed: Duration) {
        let outcome = GrpcOutcome {
            api: method.api,
            method: method.method,
            code: grpc_code(response),
        };
        self.grpc.finished(&method, &outcome, elapsed);
    }
}

/// Counts and times one HTTP API request. Added with `Router::layer`, so
/// it runs after routing and sees the matched route template.
pub async fn record_http(request: Request, next: Next) -> Response {
    let api = metrics().api();
    let route = api.http_route(&request);
    let started = Instant::now();
    let response = next.run(request).await;
    api.http_finished(route, response.status(), started.elapsed());
    response
}

/// Counts and times one gRPC call. A unary call's status is in its
/// response headers when it failed (a "trailers-only" response); without
/// one there, a 200 response is `OK`.
pub async fn record_grpc(request: Request, next: Next) -> Response {
    let api = metrics().api();
    let method = grpc_method(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    api.grpc_finished(method, &response, started.elapsed());
    response
}

/// The Dapr API a path belongs to: `/v1.0/state/s/k` is `state`.
fn http_api(path: &str) -> &'static str {
    let mut segments = path.trim_start_matches('/').split('/');
    let versioned = segments.next().is_some_and(|v| v.starts_with("v1."));
    let area = segments.next().unwrap_or_default();
    match APIS.iter().find(|api| **api == area) {
        Some(api) if versioned => api,
        _ => UNKNOWN,
    }
}

fn verb(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The API and method of a gRPC path, `/dapr.proto.runtime.v1.Dapr/GetState`.
fn grpc_method(path: &str) -> GrpcMethod {
    let known = path
        .strip_prefix('/')
        .and_then(|path| path.split_once('/'))
        .filter(|(service, _)| *service == DAPR_SERVICE)
        .and_then(|(_, name)| GRPC_METHODS.iter().find(|(method, _)| *method == name));
    match known {
        Some((method, api)) => GrpcMethod { api, method },
        None => GrpcMethod {
            api: UNKNOWN,
            method: UNKNOWN,
        },
    }
}

fn grpc_code(response: &Response) -> &'static str {
    match response.headers().get("grpc-status") {
        Some(code) => code
            .to_str()
            .ok()
            .and_then(|code| code.parse::<usize>().ok())
            .and_then(|code| GRPC_CODES.get(code))
            .copied()
            .unwrap_or("UNKNOWN"),
        None if response.status() == StatusCode::OK => "OK",
        None => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::grpc::proto::FILE_DESCRIPTOR_SET;
    use prost::Message;

    #[test]
    fn paths_name_their_api_from_a_fixed_set() {
        let cases = [
            ("/v1.0/state/store/key", "state"),
            ("/v1.0-alpha1/state/store/query", "state"),
            ("/v1.0-alpha1/publish/bulk/pubsub/topic", "publish"),
            ("/v1.0/invoke/app/method/x", "invoke"),
            ("/v1.0/outrig/reload", "outrig"),
            ("/v1.0/made-up/x", UNKNOWN),
            ("/state/store", UNKNOWN),
            ("/", UNKNOWN),
        ];
        for (path, api) in cases {
            assert_eq!(http_api(path), api, "{path}");
        }
    }

    #[test]
    fn grpc_paths_name_their_method_only_for_the_dapr_service() {
        let get = grpc_method("/dapr.proto.runtime.v1.Dapr/GetState");
        assert_eq!((get.api, get.method), ("state", "GetState"));
        for path in [
            "/dapr.proto.runtime.v1.Dapr/InventedMethod",
            "/other.Service/GetState",
            "GetState",
        ] {
            let unknown = grpc_method(path);
            assert_eq!((unknown.api, unknown.method), (UNKNOWN, UNKNOWN), "{path}");
        }
    }

    #[test]
    fn every_rpc_of_the_dapr_service_has_an_api() {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor");
        let rpcs: Vec<String> = set
            .file
            .iter()
            .filter(|file| file.package() == "dapr.proto.runtime.v1")
            .flat_map(|file| &file.service)
            .filter(|service| service.name() == "Dapr")
            .flat_map(|service| &service.method)
            .map(|method| method.name().to_owned())
            .collect();
        assert!(!rpcs.is_empty(), "the Dapr service is in proto/");
        for rpc in &rpcs {
            assert!(
                GRPC_METHODS.iter().any(|(method, _)| method == rpc),
                "{rpc} is not in GRPC_METHODS"
            );
        }
        assert_eq!(
            rpcs.len(),
            GRPC_METHODS.len(),
            "GRPC_METHODS lists RPCs proto/ lacks"
        );
    }

    #[test]
    fn grpc_codes_come_from_the_status_header() {
        let with = |status: StatusCode, code: Option<&str>| {
            let mut response = Response::new(axum::body::Body::empty());
            *response.status_mut() = status;
            if let Some(code) = code {
                response
                    .headers_mut()
                    .insert("grpc-status", code.parse().expect("header"));
            }
            grpc_code(&response)
        };
        assert_eq!(with(StatusCode::OK, None), "OK");
        assert_eq!(with(StatusCode::OK, Some("5")), "NOT_FOUND");
        assert_eq!(with(StatusCode::OK, Some("16")), "UNAUTHENTICATED");
        assert_eq!(with(StatusCode::OK, Some("99")), "UNKNOWN");
        assert_eq!(with(StatusCode::NOT_FOUND, None), "UNKNOWN");
    }
}
