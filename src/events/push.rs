//! RFC 8935 push delivery of one SET, through an HTTP client a tenant cannot turn against
//! the network scimbus runs in:
//!
//! - an endpoint is `https`, or `http` only to a loopback host;
//! - loopback, private, link-local, shared (CGNAT) and unique-local addresses are refused
//!   unless `SCIMBUS_SET_PUSH_ALLOW_PRIVATE` is on; unspecified, multicast and broadcast
//!   addresses always;
//! - the address is checked when the client connects: a name is resolved by our resolver,
//!   which keeps only allowed addresses, and the client connects to those very addresses
//!   (a name that resolves elsewhere later — DNS rebinding — changes nothing); an address
//!   written in the URL is checked before every request;
//! - redirects are not followed, no proxy from the environment is used, the connection and
//!   the whole exchange have timeouts, and at most [`MAX_RESPONSE_BYTES`] of an answer are
//!   read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header;
use url::{Host, Url};

/// Most bytes of a receiver's answer read (its RFC 8935 error object).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one delivery may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether scimbus may connect to `ip`.
pub fn allowed(ip: IpAddr, allow_private: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || a == 0 || a >= 240 {
                return false;
            }
            let private = v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                // Shared address space (RFC 6598), often the cloud's own network.
                || (a == 100 && (64..128).contains(&b))
                // IETF protocol assignments (RFC 6890), 6to4 relay anycast, benchmarking.
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 192 && b == 88 && v4.octets()[2] == 99)
                || (a == 198 && (b == 18 || b == 19));
            allow_private || !private
        }
        IpAddr::V6(v6) => {
            if v6.is_unspecified() || v6.is_multicast() {
                return false;
            }
            let first = v6.segments()[0];
            let private = v6.is_loopback()
                // Unique local (fc00::/7), link-local (fe80::/10), site-local (fec0::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                // IPv4-compatible (::/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed
                // IPv4 addresses this check could not see.
                || v6.segments()[..6].iter().all(|s| *s == 0)
                // NAT64, well-known and local-use (64:ff9b::/96, 64:ff9b:1::/48).
                || (first == 0x64 && v6.segments()[1] == 0xff9b)
                || first == 0x2002;
            allow_private || !private
        }
    }
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Host::Ipv4(v4) => v4.is_loopback(),
        Host::Ipv6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Checks a push endpoint as registered: an absolute `https` URL (`http` to a loopback
/// host), no credentials in it, no fragment, and an address written in it allowed. A name
/// is checked when the client connects ([`PushClient`]).
pub fn check_endpoint(endpoint: &str, allow_private: bool) -> Result<Url, String> {
    if endpoint.len() > 2000 {
        return Err("the endpoint is longer than 2000 characters".to_owned());
    }
    let url = Url::parse(endpoint).map_err(|e| format!("the endpoint is not a URL: {e}"))?;
    let host = url
        .host()
        .ok_or_else(|| "the endpoint has no host".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => {
            return Err("the endpoint must use https (http only to a loopback host)".to_owned());
        }
        other => return Err(format!("the endpoint's scheme `{other}` is not https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the endpoint must not carry credentials: give them as `authorization`".to_owned(),
        );
    }
    if url.fragment().is_some() {
        return Err("the endpoint must not have a fragment".to_owned());
    }
    let literal = match host {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    };
    if let Some(ip) = literal.filter(|ip| !allowed(*ip, allow_private)) {
        return Err(refused(ip));
    }
    if literal.is_none() && is_loopback_host(&host) && !allow_private {
        return Err("the endpoint names a loopback host, refused unless \
                    SCIMBUS_SET_PUSH_ALLOW_PRIVATE is on"
            .to_owned());
    }
    Ok(url)
}

fn refused(ip: IpAddr) -> String {
    format!(
        "the address {ip} is refused: loopback, private, link-local and shared addresses \
         only with SCIMBUS_SET_PUSH_ALLOW_PRIVATE=on; unspecified, multicast and broadcast \
         never"
    )
}

/// Resolves names with the system resolver and keeps only the addresses scimbus may
/// connect to; the client connects to what this returns.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allowed(a.ip(), allow_private))
                .collect();
            if kept.is_empty() {
                let ips: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "`{host}` resolves to no address scimbus may connect to ({}): \
                     loopback, private, link-local and shared addresses only with \
                     SCIMBUS_SET_PUSH_ALLOW_PRIVATE=on",
                    ips.join(", ")
                )
                .into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// What a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx (RFC 8935 answers 202).
    Delivered,
    /// 400 `invalid_request`: this SET cannot be processed; sending it again cannot
    /// succeed, so it is parked.
    Rejected { err: String, description: String },
    /// 400 with an error about the transmitter (`invalid_key`, `invalid_issuer`,
    /// `invalid_audience`, `authentication_failed`, `access_denied`), another code or no
    /// RFC 8935 error object, 401 or 403: no SET will be accepted until someone changes
    /// the configuration.
    Refused { status: u16, detail: String },
    /// Anything else (a network error, a timeout, a redirect, 404, 429, 5xx): try again,
    /// not before `retry_after` when the receiver said so.
    Retry {
        detail: String,
        retry_after: Option<Duration>,
    },
}

/// A `Retry-After` value (RFC 9110 §10.2.3) as a wait from `now`: delay seconds, or an
/// HTTP-date (a date already past is no wait); `None` when it is neither.
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// The SSRF-safe client every push uses.
#[derive(Debug, Clone)]
pub struct PushClient {
    client: reqwest::Client,
    allow_private: bool,
}

impl PushClient {
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Below the keep-alive of common servers (uvicorn's and actix's are 5 s).
            .pool_idle_timeout(Duration::from_secs(4))
            .user_agent(concat!("scimbus/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// POSTs one SET to `endpoint` (RFC 8935 §2.1).
    pub async fn deliver(&self, endpoint: &str, authorization: Option<&str>, jws: &str) -> Outcome {
        let url = match check_endpoint(endpoint, self.allow_private) {
            Ok(url) => url,
            Err(detail) => {
                return Outcome::Refused { status: 0, detail };
            }
        };
        // A pooled connection the receiver closed while idle fails the request before it
        // is sent: tried once more on a new connection (a SET sent twice is deduplicated
        // on its `jti` anyway). A timeout is not tried again here.
        let mut tries = 0;
        let mut response = loop {
            tries += 1;
            let mut request = self
                .client
                .post(url.clone())
                .header(header::CONTENT_TYPE, "application/secevent+jwt")
                .header(header::ACCEPT, "application/json")
                .body(jws.to_owned());
            if let Some(value) = authorization {
                // Never indexed by HTTP/2 header compression, redacted from `Debug`.
                match header::HeaderValue::from_str(value) {
                    Ok(mut value) => {
                        value.set_sensitive(true);
                        request = request.header(header::AUTHORIZATION, value);
                    }
                    Err(_) => {
                        return Outcome::Refused {
                            status: 0,
                            detail: "the stored authorization is not a header value".to_owned(),
                        };
                    }
                }
            }
            match request.send().await {
                Ok(response) => break response,
                Err(e) if tries < 2 && !e.is_timeout() && !e.is_connect() => {
                    tracing::debug!(error = %error_chain(&e), "SET push: trying once more");
                }
                Err(e) => {
                    return Outcome::Retry {
                        detail: error_chain(&e),
                        retry_after: None,
                    };
                }
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect::<String>());
        let body = read_bounded(&mut response).await;
        let error: Option<(String, String)> = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let err = v.get("err")?.as_str()?.chars().take(64).collect::<String>();
                let description = v
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect::<String>();
                Some((err, description))
            });
        let code = status.as_u16();
        match (code, error) {
            // About this SET: it will never be accepted.
            (400, Some((err, description))) if err == "invalid_request" => {
                Outcome::Rejected { err, description }
            }
            // About us, or not an RFC 8935 answer at all (a proxy's or a firewall's page, a
            // code we do not know): parking would drop every SET, so the lane holds.
            (400, Some((err, description))) => Outcome::Refused {
                status: code,
                detail: format!("400 {err}: {description}"),
            },
            (400, None) => Outcome::Refused {
                status: code,
                detail: "400 without an RFC 8935 error object: not a SET receiver's answer"
                    .to_owned(),
            },
            (401 | 403, error) => Outcome::Refused {
                status: code,
                detail: match error {
                    Some((err, description)) => format!("{code} {err}: {description}"),
                    None => format!("{code}: the receiver refused our authorization"),
                },
            },
            (300..=399, _) => Outcome::Retry {
                detail: format!(
                    "{code}: redirects are not followed (to {})",
                    location.as_deref().unwrap_or("nowhere")
                ),
                retry_after: None,
            },
            (_, error) => Outcome::Retry {
                detail: match error {
                    Some((err, description)) => format!("{code} {err}: {description}"),
                    None => format!("{code}"),
                },
                retry_after,
            },
        }
    }
}

/// At most [`MAX_RESPONSE_BYTES`] of the answer's body (what is beyond is not read).
async fn read_bounded(response: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    body
}

/// An error with its causes (reqwest's own message hides the resolver's refusal).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!allowed(ip, false), "{ip}");
            assert!(allowed(ip, true), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
            "0.1.2.3",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!allowed(ip, true), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(allowed(ip, false), "{ip}");
        }
    }

    #[test]
    fn endpoints_are_https_without_credentials_or_internal_addresses() {
        for ok in [
            "https://receiver.example.com/events",
            "https://93.184.215.14:8443/set",
        ] {
            assert!(check_endpoint(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://receiver.example.com/events",
            "ftp://receiver.example.com/",
            "https://user:pw@receiver.example.com/",
            "https://receiver.example.com/#frag",
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
            "https://LOCALHOST./",
            "https://a.localhost/",
            "https://0x7f000001/",
            "https://2130706433/",
            "not a url",
            "/relative",
        ] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(check_endpoint("http://127.0.0.1:9/", true).is_ok());
        assert!(check_endpoint("http://localhost:9/", true).is_ok());
        assert!(check_endpoint("http://10.0.0.1:9/", true).is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_an_internal_address_is_refused_at_connection() {
        let resolver = GuardedResolver {
            allow_private: false,
        };
        let name: Name = "localhost".parse().unwrap();
        let error = resolver.resolve(name).await.err().unwrap();
        assert!(error.to_string().contains("no address"), "{error}");
        let allowing = GuardedResolver {
            allow_private: true,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(allowing.resolve(name).await.unwrap().count() > 0);
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        // IMF-fixdate, and the two obsolete forms RFC 9110 still asks recipients to accept.
        for date in [
            "Sun, 06 Nov 1994 08:51:37 GMT",
            "Sunday, 06-Nov-94 08:51:37 GMT",
            "Sun Nov  6 08:51:37 1994",
        ] {
            assert_eq!(
                retry_after(date, now),
                Some(Duration::from_secs(120)),
                "{date}"
            );
        }
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-5", "soon", "1.5", "Sun, 06 Nov 1994"] {
            assert_eq!(retry_after(bad, now), None, "{bad}");
        }
    }
}
