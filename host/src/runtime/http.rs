//! Outbound HTTP grants: the origins a component's
//! `wasi:http/outgoing-handler` requests may reach, and the hook that
//! enforces them.
//!
//! A grant is an origin: `https://api.example.com`, `http://127.0.0.1:8080`,
//! or a host alone (`*.example.com`: either scheme). The host is a name, a
//! name with `*` as its whole leftmost label (any one label under the
//! domain), or an IP address (`[::1]` in brackets when a port follows).
//! Without a port, the scheme's default port (80, 443) is the one granted.
//!
//! Every request is checked before any lookup or connection. `wasi:http`
//! never follows redirects itself: a guest that follows one sends a new
//! request, which is checked anew, so a redirect to a host not granted is
//! refused like any other request. A refused request fails inside the guest
//! with `HTTP-request-denied`, and the host logs a warning naming the
//! component and the target.

use super::outbound::{HostPattern, check_wildcard};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// A scheme a grant may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpScheme {
    /// `http://`.
    Http,
    /// `https://`.
    Https,
}

impl HttpScheme {
    fn default_port(self) -> u16 {
        match self {
            HttpScheme::Http => 80,
            HttpScheme::Https => 443,
        }
    }

    fn of(scheme: &str) -> Option<Self> {
        match scheme.to_ascii_lowercase().as_str() {
            "http" => Some(HttpScheme::Http),
            "https" => Some(HttpScheme::Https),
            _ => None,
        }
    }
}

/// A granted host: an address, or a name (exact or `*.domain`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum GrantedHost {
    Ip(IpAddr),
    Name(HostPattern),
}

impl GrantedHost {
    fn parse(host: &str) -> Self {
        match host.parse::<IpAddr>() {
            Ok(ip) => GrantedHost::Ip(ip),
            Err(_) => GrantedHost::Name(HostPattern::parse(host)),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            // Addresses compare as addresses, so `::1` matches `0:0::1`.
            GrantedHost::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            GrantedHost::Name(pattern) => host.parse::<IpAddr>().is_err() && pattern.matches(host),
        }
    }
}

/// One HTTP grant, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    /// The scheme granted; `None`: either.
    scheme: Option<HttpScheme>,
    host: GrantedHost,
    /// The port granted; `None`: the request's scheme's default port.
    port: Option<u16>,
}

impl HttpGrant {
    fn permits(&self, scheme: HttpScheme, host: &str, port: u16) -> bool {
        self.scheme.is_none_or(|granted| granted == scheme)
            && self.port.unwrap_or(scheme.default_port()) == port
            && self.host.matches(host)
    }
}

/// Parses one grant: `[http://|https://]host[:port]`, with at most a `/`
/// after it. The message says what is expected.
pub fn parse_http_grant(grant: &str) -> Result<HttpGrant, String> {
    let expected = || format!("`{grant}`: expected an origin such as https://api.example.com:443");
    let (scheme, rest) = match grant.split_once("://") {
        Some((scheme, rest)) => (Some(HttpScheme::of(scheme).ok_or_else(expected)?), rest),
        None => (None, grant),
    };
    let origin = rest.strip_suffix('/').unwrap_or(rest);
    if origin.is_empty() || origin.contains(['/', '?', '#', '@']) {
        return Err(format!("{}, without a path", expected()));
    }
    let (host, port) = split_host_port(origin).ok_or_else(expected)?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(expected());
    }
    check_wildcard(grant, host, "https://*.example.com")?;
    let port = match port {
        None => None,
        Some(text) => Some(
            text.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{grant}`: `{text}` is not a port"))?,
        ),
    };
    Ok(HttpGrant {
        scheme,
        host: GrantedHost::parse(host),
        port,
    })
}

/// `host` and its port, if any: `[v6]:port`, `[v6]`, `name:port`, `name`.
/// A bare IPv6 address (colons, no brackets) is a host without a port.
fn split_host_port(origin: &str) -> Option<(&str, Option<&str>)> {
    if let Some(bracketed) = origin.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']')?;
        return match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        };
    }
    if origin.parse::<IpAddr>().is_ok() {
        return Some((origin, None));
    }
    Some(match origin.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (origin, None),
    })
}

/// The origins one component may send HTTP requests to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAllowlist {
    grants: Vec<HttpGrant>,
}

impl HttpAllowlist {
    /// Parses every grant; the first bad one is the error.
    pub fn parse(grants: &[String]) -> Result<Self, String> {
        let grants = grants
            .iter()
            .map(|grant| parse_http_grant(grant))
            .collect::<Result<_, _>>()?;
        Ok(HttpAllowlist { grants })
    }

    /// Whether a request to `uri` is granted: its scheme, host and port
    /// (explicit or the scheme's default).
    pub fn permits(&self, uri: &http::Uri) -> bool {
        let Some(scheme) = uri.scheme_str().and_then(HttpScheme::of) else {
            return false;
        };
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        self.grants
            .iter()
            .any(|grant| grant.permits(scheme, host, port))
    }
}

/// The `wasi:http` hooks of one instance: requests outside the component's
/// HTTP grants are refused; granted ones are sent with wasmtime-wasi-http's
/// client, their timeouts bounded by the component's call deadline.
pub struct OutboundHttp {
    component: Arc<str>,
    allowed: Arc<HttpAllowlist>,
    call_timeout: Duration,
}

impl OutboundHttp {
    /// The hooks of an instance of `component`, granted `allowed`.
    pub fn new(component: Arc<str>, allowed: Arc<HttpAllowlist>, call_timeout: Duration) -> Self {
        OutboundHttp {
            component,
            allowed,
            call_timeout,
        }
    }

    /// The guest's timeouts, none longer than a call may last, so a request
    /// left running by an abandoned call ends soon after it.
    fn bounded(&self, options: Option<RequestOptions>) -> RequestOptions {
        let bound = |asked: Option<Duration>| {
            Some(asked.map_or(self.call_timeout, |a| a.min(self.call_timeout)))
        };
        let options = options.unwrap_or_default();
        RequestOptions {
            connect_timeout: bound(options.connect_timeout),
            first_byte_timeout: bound(options.first_byte_timeout),
            between_bytes_timeout: bound(options.between_bytes_timeout),
        }
    }
}

/// What [`WasiHttpHooks::send_request`] returns.
type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        if !self.allowed.permits(request.uri()) {
            tracing::warn!(
                component = %self.component,
                method = %request.method(),
                target = %request.uri(),
                "denied an HTTP request to an origin that was not granted"
            );
            return Box::new(std::future::ready(Err(HttpError::HttpRequestDenied)));
        }
        let options = self.bounded(options);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(grants: &[&str]) -> HttpAllowlist {
        let grants: Vec<String> = grants.iter().map(|g| (*g).to_owned()).collect();
        HttpAllowlist::parse(&grants).expect("grants")
    }

    #[test]
    fn requests_pass_only_to_granted_origins() {
        let allowed = allowlist(&[
            "https://api.example.com",
            "http://127.0.0.1:8080",
            "*.cdn.example.com",
            "http://[::1]:9000/",
        ]);
        let cases = [
            ("https://api.example.com/v1/x?y=1", true),
            ("https://API.example.com:443/", true),
            ("https://api.example.com:8443/", false),
            ("http://api.example.com/", false),
            ("https://other.example.com/", false),
            ("http://127.0.0.1:8080/ok", true),
            ("http://127.0.0.1:8081/ok", false),
            ("http://127.0.0.1/ok", false),
            ("https://127.0.0.1:8080/ok", false),
            ("http://localhost:8080/ok", false),
            ("http://a.cdn.example.com/x", true),
            ("https://a.cdn.example.com/x", true),
            ("https://a.cdn.example.com:8443/x", false),
            ("https://cdn.example.com/x", false),
            ("https://a.b.cdn.example.com/x", false),
            ("http://[::1]:9000/", true),
            ("http://[0:0::1]:9000/", true),
            ("http://[::1]:9001/", false),
        ];
        for (uri, expected) in cases {
            let uri: http::Uri = uri.parse().expect("uri");
            assert_eq!(allowed.permits(&uri), expected, "{uri}");
        }
        assert!(!HttpAllowlist::default().permits(&"http://127.0.0.1:8080/".parse().expect("uri")));
    }

    #[test]
    fn grants_are_origins_and_bad_ones_say_why() {
        for good in [
            "https://api.example.com",
            "HTTP://Example.com:81/",
            "*.example.com",
            "example.com:8080",
            "[::1]:80",
            "::1",
            "10.0.0.1",
        ] {
            assert!(parse_http_grant(good).is_ok(), "{good}");
        }
        let bad = [
            ("ftp://example.com", "expected an origin"),
            ("https://", "without a path"),
            ("https://example.com/path", "without a path"),
            ("https://user@example.com", "without a path"),
            ("https://example.com:0", "is not a port"),
            ("https://example.com:http", "is not a port"),
            ("https://a.*.example.com", "leftmost label"),
            ("https://[::1", "expected an origin"),
            ("https://[::1]x", "expected an origin"),
            ("https://:80", "expected an origin"),
        ];
        for (grant, word) in bad {
            let err = parse_http_grant(grant).expect_err(grant);
            assert!(err.contains(word), "{grant}: {err}");
        }
    }

    #[test]
    fn timeouts_are_bounded_by_the_call_deadline() {
        let hooks = OutboundHttp::new(Arc::from("c"), Arc::default(), Duration::from_secs(2));
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(1)),
            first_byte_timeout: Some(Duration::from_secs(60)),
            between_bytes_timeout: None,
        };
        let got = hooks.bounded(Some(asked));
        assert_eq!(got.connect_timeout, Some(Duration::from_secs(1)));
        assert_eq!(got.first_byte_timeout, Some(Duration::from_secs(2)));
        assert_eq!(got.between_bytes_timeout, Some(Duration::from_secs(2)));
    }
}
