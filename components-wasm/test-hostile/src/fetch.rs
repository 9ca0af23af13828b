//! `||fetch=<url>`: an outbound `GET` through `wasi:http`, following
//! redirects as an ordinary client does, so a test can check which origins
//! the host lets it reach.

use outrig_sdk::state::Item;
use outrig_sdk::{Error, Result};
use std::io::Read;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingResponse, OutgoingRequest, Scheme};

/// Redirects followed before giving up.
const MAX_HOPS: usize = 5;

/// The body at `url` (after redirects), or `unavailable` with the HTTP
/// error code the host gave (`HttpRequestDenied` for an origin not granted).
pub(crate) fn fetch(url: &str) -> Result<Option<Item>> {
    let mut url = url.to_owned();
    for _ in 0..MAX_HOPS {
        let response = get(&url)?;
        let status = response.status();
        let location = header(&response, "location");
        match (status, location) {
            (300..=399, Some(next)) => url = absolute(&url, &next),
            (200..=299, _) => {
                return Ok(Some(Item {
                    value: body(&response)?,
                    etag: None,
                    expires_at_unix: None,
                }));
            }
            (status, _) => return Err(Error::Unavailable(format!("GET {url}: status {status}"))),
        }
    }
    Err(Error::Unavailable(format!(
        "more than {MAX_HOPS} redirects"
    )))
}

fn get(url: &str) -> Result<IncomingResponse> {
    let bad = |why: &str| Error::InvalidArgument(format!("`{url}`: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| bad("scheme refused"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| bad("authority refused"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| bad("path refused"))?;
    let denied = |code: &dyn std::fmt::Debug| Error::Unavailable(format!("GET {url}: {code:?}"));
    let pending = outgoing_handler::handle(request, None).map_err(|code| denied(&code))?;
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(denied(&code)),
        Some(Err(())) | None => Err(Error::Internal(format!("GET {url}: no response"))),
    }
}

fn header(response: &IncomingResponse, name: &str) -> Option<String> {
    let values = response.headers().get(name);
    let first = values.into_iter().next()?;
    String::from_utf8(first).ok()
}

fn body(response: &IncomingResponse) -> Result<Vec<u8>> {
    let body = response
        .consume()
        .map_err(|()| Error::Internal("the body was taken already".into()))?;
    let mut bytes = Vec::new();
    {
        let mut stream = body
            .stream()
            .map_err(|()| Error::Internal("the body stream was taken already".into()))?;
        stream
            .read_to_end(&mut bytes)
            .map_err(|err| Error::Unavailable(format!("reading the body: {err}")))?;
    }
    Ok(bytes)
}

/// `location` made absolute against `base` (`/path` keeps the origin).
fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let origin_end = base
        .find("://")
        .and_then(|start| base[start + 3..].find('/').map(|i| start + 3 + i))
        .unwrap_or(base.len());
    format!("{}{location}", &base[..origin_end])
}

#[cfg(test)]
mod tests {
    use super::absolute;

    #[test]
    fn relative_locations_keep_the_origin() {
        assert_eq!(absolute("http://a:1/x/y", "/z"), "http://a:1/z");
        assert_eq!(absolute("http://a:1", "/z"), "http://a:1/z");
        assert_eq!(absolute("http://a:1/x", "http://b:2/"), "http://b:2/");
    }
}
