//! The app channel for gRPC apps: a client of the app's
//! `dapr.proto.runtime.v1.AppCallback` service over one multiplexed HTTP/2
//! connection.

use super::events::{self, BulkDelivery, CLOUD_EVENT_CONTENT_TYPE, TopicDelivery, Verdict};
use super::{APP_TOKEN_HEADER, AppChannel, AppChannelError, AppRequest, AppResponse};
use crate::api::grpc::proto::common::{self, http_extension::Verb};
use crate::api::grpc::proto::runtime::app_callback_alpha_client::AppCallbackAlphaClient;
use crate::api::grpc::proto::runtime::app_callback_client::AppCallbackClient;
use crate::api::grpc::proto::runtime::app_callback_health_check_client::AppCallbackHealthCheckClient;
use crate::api::grpc::proto::runtime::{
    TopicEventBulkRequest, TopicEventBulkRequestEntry, TopicEventCeRequest, TopicEventRequest,
    TopicRoutes, TopicSubscription, topic_event_bulk_request_entry,
};
use crate::blocks::pubsub::subscription::{
    BulkSubscribe, RouteRule, Routes, SubscriptionKind, SubscriptionSpec,
};
use base64::Engine as _;
use serde_json::Value;
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

    async fn subscriptions(&self) -> Result<Vec<SubscriptionSpec>, AppChannelError> {
        let answer = AppCallbackClient::new(self.channel.clone())
            .list_topic_subscriptions(self.request(()))
            .await;
        match answer {
            Ok(list) => Ok(list
                .into_inner()
                .subscriptions
                .into_iter()
                .map(subscription_spec)
                .collect()),
            Err(status) if status.code() == tonic::Code::Unimplemented => Ok(Vec::new()),
            Err(status) => Err(status.into()),
        }
    }

    async fn deliver(&self, delivery: TopicDelivery<'_>) -> Result<Verdict, AppChannelError> {
        let event = CloudEventParts::of(delivery.event);
        let message = TopicEventRequest {
            id: event.id,
            source: event.source,
            r#type: event.ty,
            spec_version: event.spec_version,
            data_content_type: event.data_content_type,
            data: event.data,
            topic: delivery.topic.to_owned(),
            pubsub_name: delivery.pubsub.to_owned(),
            path: delivery.route.to_owned(),
            extensions: Some(event.extensions),
        };
        let answer = AppCallbackClient::new(self.channel.clone())
            .on_topic_event(self.request(message))
            .await;
        match answer {
            Ok(answer) => Ok(Verdict::from_grpc(answer.into_inner().status)),
            Err(status) => Ok(status_verdict(&status)),
        }
    }

    async fn deliver_bulk(
        &self,
        delivery: BulkDelivery<'_>,
    ) -> Result<Vec<Verdict>, AppChannelError> {
        let entries = delivery
            .entries
            .iter()
            .map(|entry| {
                let event = CloudEventParts::of(entry.event);
                TopicEventBulkRequestEntry {
                    entry_id: entry.entry_id.clone(),
                    content_type: CLOUD_EVENT_CONTENT_TYPE.to_owned(),
                    metadata: Default::default(),
                    event: Some(topic_event_bulk_request_entry::Event::CloudEvent(
                        TopicEventCeRequest {
                            id: event.id,
                            source: event.source,
                            r#type: event.ty,
                            spec_version: event.spec_version,
                            data_content_type: event.data_content_type,
                            data: event.data,
                            extensions: Some(event.extensions),
                        },
                    )),
                }
            })
            .collect();
        let message = TopicEventBulkRequest {
            id: uuid::Uuid::new_v4().to_string(),
            entries,
            metadata: Default::default(),
            topic: delivery.topic.to_owned(),
            pubsub_name: delivery.pubsub.to_owned(),
            r#type: "com.dapr.event.sent".to_owned(),
            path: delivery.route.to_owned(),
        };
        let ids: Vec<&str> = delivery
            .entries
            .iter()
            .map(|e| e.entry_id.as_str())
            .collect();
        let mut answer = AppCallbackClient::new(self.channel.clone())
            .on_bulk_topic_event(self.request(message.clone()))
            .await;
        if matches!(&answer, Err(status) if status.code() == tonic::Code::Unimplemented) {
            answer = AppCallbackAlphaClient::new(self.channel.clone())
                .on_bulk_topic_event_alpha1(self.request(message))
                .await;
        }
        match answer {
            Ok(answer) => {
                let statuses: Vec<(String, i32)> = answer
                    .into_inner()
                    .statuses
                    .into_iter()
                    .map(|s| (s.entry_id, s.status))
                    .collect();
                Ok(events::match_statuses(&ids, &statuses, |s| {
                    Verdict::from_grpc(*s)
                }))
            }
            Err(status) => Ok(vec![status_verdict(&status); ids.len()]),
        }
    }
}

/// A gRPC app's failure as a verdict: `UNIMPLEMENTED` means it will never
/// take the event (Dapr drops it); anything else may pass, so retry.
fn status_verdict(status: &tonic::Status) -> Verdict {
    if status.code() == tonic::Code::Unimplemented {
        Verdict::Drop
    } else {
        tracing::debug!(code = ?status.code(), message = status.message(), "the app failed an event");
        Verdict::Retry
    }
}

/// A programmatic subscription of a gRPC app.
fn subscription_spec(sub: TopicSubscription) -> SubscriptionSpec {
    SubscriptionSpec {
        pubsub_name: sub.pubsub_name,
        topic: sub.topic,
        routes: grpc_routes(sub.routes.unwrap_or_default()),
        metadata: sub.metadata.into_iter().collect(),
        dead_letter_topic: Some(sub.dead_letter_topic).filter(|t| !t.is_empty()),
        bulk: sub.bulk_subscribe.filter(|b| b.enabled).map(|b| {
            let defaults = BulkSubscribe::default();
            BulkSubscribe {
                max_messages: u32::try_from(b.max_messages_count)
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or(defaults.max_messages),
                max_await_ms: u32::try_from(b.max_await_duration_ms)
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or(defaults.max_await_ms),
            }
        }),
        origin: "app".to_owned(),
        kind: SubscriptionKind::Programmatic,
    }
}

/// A gRPC app's routes as Dapr reads them: the rules, then the default if
/// one is given; and with neither, every event goes to the empty path.
/// That last case is how the SDKs subscribe a handler without rules (the
/// Python SDK's `@app.subscribe(pubsub, topic)`): the app finds the handler
/// by topic when `OnTopicEvent` names no path.
fn grpc_routes(routes: TopicRoutes) -> Routes {
    let rules: Vec<RouteRule> = routes
        .rules
        .into_iter()
        .map(|rule| RouteRule {
            condition: rule.r#match,
            path: rule.path,
        })
        .collect();
    let default = match routes.default {
        path if !path.is_empty() => Some(path),
        _ if rules.is_empty() => Some(String::new()),
        _ => None,
    };
    Routes { rules, default }
}

/// A CloudEvent split the way `TopicEventRequest` carries it: the core
/// attributes as fields, the data as bytes, everything else as extensions.
struct CloudEventParts {
    id: String,
    source: String,
    ty: String,
    spec_version: String,
    data_content_type: String,
    data: Vec<u8>,
    extensions: prost_types::Struct,
}

impl CloudEventParts {
    fn of(event: &Value) -> Self {
        let text = |name: &str| {
            event
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let data = match (event.get("data"), event.get("data_base64")) {
            (Some(Value::String(text)), _) => text.clone().into_bytes(),
            (Some(Value::Null) | None, Some(Value::String(encoded))) => {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_default()
            }
            (Some(Value::Null) | None, _) => Vec::new(),
            (Some(json), _) => serde_json::to_vec(json).unwrap_or_default(),
        };
        const CORE: [&str; 7] = [
            "id",
            "source",
            "type",
            "specversion",
            "datacontenttype",
            "data",
            "data_base64",
        ];
        let fields = event
            .as_object()
            .map(|attributes| {
                attributes
                    .iter()
                    .filter(|(name, _)| !CORE.contains(&name.as_str()))
                    .map(|(name, value)| (name.clone(), proto_value(value)))
                    .collect()
            })
            .unwrap_or_default();
        CloudEventParts {
            id: text("id"),
            source: text("source"),
            ty: text("type"),
            spec_version: text("specversion"),
            data_content_type: text("datacontenttype"),
            data,
            extensions: prost_types::Struct { fields },
        }
    }
}

/// A JSON value as a protobuf `Value`.
fn proto_value(value: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(proto_value).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields
                .iter()
                .map(|(k, v)| (k.clone(), proto_value(v)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::grpc::proto::runtime::TopicRule;

    fn rule(condition: &str, path: &str) -> TopicRule {
        TopicRule {
            r#match: condition.into(),
            path: path.into(),
        }
    }

    fn route_rule(condition: &str, path: &str) -> RouteRule {
        RouteRule {
            condition: condition.into(),
            path: path.into(),
        }
    }

    #[test]
    fn routes_follow_dapr_for_grpc_apps() {
        // Neither rules nor a default: everything to the empty path.
        assert_eq!(
            grpc_routes(TopicRoutes::default()),
            Routes {
                rules: Vec::new(),
                default: Some(String::new()),
            }
        );
        // A default only.
        let default_only = TopicRoutes {
            rules: Vec::new(),
            default: "/orders".into(),
        };
        assert_eq!(
            grpc_routes(default_only).default.as_deref(),
            Some("/orders")
        );
        // Rules without a default: an event no rule matches goes nowhere.
        let rules_only = TopicRoutes {
            rules: vec![rule("event.type == \"vip\"", "vip")],
            default: String::new(),
        };
        assert_eq!(
            grpc_routes(rules_only),
            Routes {
                rules: vec![route_rule("event.type == \"vip\"", "vip")],
                default: None,
            }
        );
    }
}
