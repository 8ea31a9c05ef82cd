//! Outbound HTTP for nodes: a client whose every connection (including each redirect hop) is
//! checked against a [`NetworkPolicy`] after DNS resolution.
//!
//! # Network policy (SSRF protection)
//!
//! Workflows are written by users and their URLs are often templates over run data, so a node
//! must not be usable to reach the runner's own network: by default the client refuses every
//! address that is not a public unicast address (see [`refused_range`]): loopback, unspecified,
//! private (RFC 1918), carrier-grade NAT, link-local (including the cloud metadata endpoint
//! `169.254.169.254`), unique-local, multicast, broadcast, benchmarking, documentation and
//! reserved ranges, and IPv6 forms that embed one of those (IPv4-mapped `::ffff:a.b.c.d`, NAT64
//! `64:ff9b::/96`, 6to4 `2002::/16`) or tunnel to an unknown one (Teredo, IPv4-compatible).
//! [`NetworkPolicy::allow`] lists networks (CIDR) permitted anyway, for local development; the
//! deployments fill it from `CONCERTMASTER_ALLOW_NETWORKS` / `--allow-network`.
//!
//! The check happens on the addresses actually connected to, after DNS resolution, so a name
//! that resolves to a private address (or is re-bound to one) is refused too: a resolver
//! wrapping `getaddrinfo` ([`tokio::net::lookup_host`]) drops refused addresses and fails
//! with `ConcertMaster.Http.BlockedAddress` when none is left. Hosts written as IP literals
//! never reach a resolver, so [`HttpClient::check_url`] checks them before each request.
//!
//! # Redirects
//!
//! The client follows up to [`MAX_REDIRECTS`] redirects itself (reqwest's are disabled) so
//! that every hop is checked like the first URL: the scheme must be `http` or `https`, an IP
//! literal host must pass the policy, a host name goes through the filtering resolver.
//! `303` turns any method but `HEAD` into a body-less `GET`; `301`/`302` turn `POST` into
//! `GET` (as browsers do); `307`/`308` keep the method and body. Once a redirect leaves the
//! original origin (scheme, host, port), [`HttpRequest::credentials`] and the `Authorization`,
//! `Cookie` and `Proxy-Authorization` headers are no longer sent. A `3xx` without a usable
//! `Location` is returned as the response; more than [`MAX_REDIRECTS`] redirects fail with
//! `ConcertMaster.InvalidInput`.
//!
//! # Other rules
//!
//! - URLs with credentials (`https://user:pass@host/`) are refused (`InvalidConfig`): they
//!   would end up in logs and run history; nodes have an `auth` setting that takes a secret.
//! - No proxy is used, whatever the environment says (a proxy would resolve names itself,
//!   bypassing the policy).
//! - TLS is rustls (ring provider) with the platform's certificate verifier (the system's root
//!   certificates, loaded when the first request is sent).
//! - [`HttpRequest::timeout`] bounds the whole exchange: every hop and the body.
//! - The response body is read in chunks and refused (`ConcertMaster.Http.ResponseTooLarge`)
//!   as soon as it exceeds [`HttpRequest::max_response_bytes`].
//! - Error messages name the target as `scheme://host:port` and never include the path, the
//!   query or header values.
//!
//! Error mapping: refused addresses → `BlockedAddress`; DNS failures, refused or reset
//! connections, TLS and protocol failures → `Retryable`; the time limit → `Timeout`. HTTP
//! statuses are not errors here: callers map them (see [`crate::action`]).

use crate::NodeError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, redirect};
use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;
use url::{Host, Url};

/// How many redirects a request follows before failing.
pub const MAX_REDIRECTS: usize = 5;

/// How long establishing one connection may take (bounded further by the request's timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the allow-list is configured, quoted in `BlockedAddress` messages.
pub const ALLOW_SETTING: &str = "CONCERTMASTER_ALLOW_NETWORKS / --allow-network";

/// Which addresses outbound requests may reach: public unicast addresses, plus the networks in
/// `allow`. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Networks (CIDR, e.g. `127.0.0.1/32`, `10.0.0.0/8`, `::1/128`; a bare address means the
    /// single address) allowed even though they are loopback/private/link-local — for local
    /// development.
    pub allow: Vec<String>,
}

impl NetworkPolicy {
    /// A policy that also allows loopback (`127.0.0.0/8`, `::1/128`): for tests and local
    /// development against services on the same machine.
    pub fn allow_loopback() -> NetworkPolicy {
        NetworkPolicy {
            allow: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }

    /// The parsed allow-list; a bad entry is `ConcertMaster.InvalidConfig` naming it.
    pub fn allowed_networks(&self) -> Result<Vec<Cidr>, NodeError> {
        self.allow
            .iter()
            .map(|s| {
                s.parse::<Cidr>().map_err(|e| {
                    NodeError::InvalidConfig(format!(
                        "allowed network `{s}` ({ALLOW_SETTING}) is not a CIDR: {e}"
                    ))
                })
            })
            .collect()
    }

    /// Whether `ip` may be connected to: `Err` holds the refused range (`"loopback
    /// (127.0.0.0/8)"`). Invalid allow-list entries are ignored here ([`HttpClient::new`]
    /// rejects them).
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let allow: Vec<Cidr> = self.allow.iter().filter_map(|s| s.parse().ok()).collect();
        check_with(&allow, ip)
    }
}

/// The policy decision over a parsed allow-list.
fn check_with(allow: &[Cidr], ip: IpAddr) -> Result<(), String> {
    match refused_range(ip) {
        None => Ok(()),
        Some(_) if allow.iter().any(|c| c.contains(ip)) => Ok(()),
        Some(reason) => Err(reason),
    }
}

/// The special-purpose range `ip` belongs to, if the default policy refuses it (`None`: a
/// public unicast address). IPv6 addresses embedding an IPv4 address (mapped, NAT64, 6to4)
/// are judged by the embedded address.
pub fn refused_range(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4).map(str::to_owned),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

const V4_REFUSED: [([u8; 4], u8, &str); 16] = [
    (
        [0, 0, 0, 0],
        8,
        "unspecified / \"this network\" (0.0.0.0/8)",
    ),
    ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
    ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    (
        [169, 254, 0, 0],
        16,
        "link-local / cloud metadata (169.254.0.0/16)",
    ),
    ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
    (
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
    ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    ([255, 255, 255, 255], 32, "broadcast (255.255.255.255)"),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    V4_REFUSED
        .iter()
        .find(|(net, len, _)| Cidr::masked(IpAddr::V4(Ipv4Addr::from(*net)), *len).contains_v4(ip))
        .map(|(_, _, name)| *name)
}

const V6_REFUSED: [(u128, u8, &str); 10] = [
    (0, 8, "reserved (::/8, incl. IPv4-compatible addresses)"),
    (
        0x0064_ff9b_0001 << 80,
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (0x0100 << 112, 64, "discard-only (100::/64)"),
    (
        0x2001 << 112,
        23,
        "IETF protocol assignments / Teredo (2001::/23)",
    ),
    (0x2001_0db8 << 96, 32, "documentation (2001:db8::/32)"),
    (0x3fff << 112, 20, "documentation (3fff::/20)"),
    (0xfc00 << 112, 7, "unique-local (fc00::/7)"),
    (0xfe80 << 112, 10, "link-local (fe80::/10)"),
    (0xfec0 << 112, 10, "site-local (fec0::/10)"),
    (0xff00 << 112, 8, "multicast (ff00::/8)"),
];

fn v6_range(ip: Ipv6Addr) -> Option<String> {
    if ip.is_unspecified() {
        return Some("unspecified (::)".into());
    }
    if ip.is_loopback() {
        return Some("loopback (::1)".into());
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4).map(|r| format!("IPv4-mapped {r}"));
    }
    let n = u128::from(ip);
    // NAT64 (64:ff9b::/96): the last 32 bits are the IPv4 destination.
    if n >> 32 == 0x0064_ff9b << 64 {
        return v4_range(Ipv4Addr::from(n as u32)).map(|r| format!("NAT64 of {r}"));
    }
    // 6to4 (2002::/16): bits 16..48 are the IPv4 relay.
    if n >> 112 == 0x2002 {
        return v4_range(Ipv4Addr::from((n >> 80) as u32)).map(|r| format!("6to4 of {r}"));
    }
    V6_REFUSED
        .iter()
        .find(|(net, len, _)| {
            Cidr::masked(IpAddr::V6(Ipv6Addr::from(*net)), *len).contains(ip.into())
        })
        .map(|(_, _, name)| (*name).to_owned())
}

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a `/32` or
/// `/128`). Host bits are ignored (`10.1.2.3/8` is `10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network of `addr` with `prefix` bits (at most 32 for IPv4, 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Cidr, String> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("prefix length {prefix} is larger than {max}"));
        }
        Ok(Cidr::masked(addr, prefix))
    }

    fn masked(addr: IpAddr, prefix: u8) -> Cidr {
        let network = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix))),
        };
        Cidr { network, prefix }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the network. An IPv4 network also contains the IPv4-mapped IPv6
    /// forms of its addresses (`::ffff:127.0.0.1` is in `127.0.0.0/8`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(a)) => self.contains_v4(a),
            (IpAddr::V4(_), IpAddr::V6(a)) => {
                a.to_ipv4_mapped().is_some_and(|a| self.contains_v4(a))
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.prefix) == u128::from(n),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }

    fn contains_v4(&self, a: Ipv4Addr) -> bool {
        match self.network {
            IpAddr::V4(n) => u32::from(a) & mask32(self.prefix) == u32::from(n),
            IpAddr::V6(_) => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| format!("`{p}` is not a prefix length"))?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `scheme://host:port` of a URL (the port always written): how errors name a target, and the
/// circuit breakers' key.
pub fn target_of(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// A request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum HttpBody {
    /// No body.
    #[default]
    Empty,
    /// A JSON document (`Content-Type: application/json` unless a header says otherwise).
    Json(serde_json::Value),
    /// URL-encoded form fields (`application/x-www-form-urlencoded`).
    Form(Vec<(String, String)>),
    /// Text (`text/plain; charset=utf-8`).
    Text(String),
}

impl HttpBody {
    /// The encoded bytes and default content type.
    fn encode(&self) -> Result<Option<(Vec<u8>, &'static str)>, NodeError> {
        Ok(match self {
            HttpBody::Empty => None,
            HttpBody::Json(v) => Some((
                serde_json::to_vec(v).map_err(|e| {
                    NodeError::InvalidConfig(format!("encoding the JSON body: {e}"))
                })?,
                "application/json",
            )),
            HttpBody::Form(fields) => Some((
                serde_urlencoded::to_string(fields)
                    .map_err(|e| NodeError::InvalidConfig(format!("encoding the form body: {e}")))?
                    .into_bytes(),
                "application/x-www-form-urlencoded",
            )),
            HttpBody::Text(t) => Some((t.clone().into_bytes(), "text/plain; charset=utf-8")),
        })
    }
}

/// One outbound request.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The URL (query included).
    pub url: Url,
    /// Request headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Headers carrying credentials: sent like `headers` (replacing a header of the same
    /// name), marked sensitive, named in errors without their value, and dropped once a
    /// redirect leaves the original origin.
    pub credentials: Vec<(String, String)>,
    /// The body.
    pub body: HttpBody,
    /// Limit for the whole exchange (all redirect hops and the response body).
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
}

impl HttpRequest {
    /// A body-less request with a 30 s timeout and a 128 KiB response limit.
    pub fn new(method: Method, url: Url) -> HttpRequest {
        HttpRequest {
            method,
            url,
            headers: Vec::new(),
            credentials: Vec::new(),
            body: HttpBody::Empty,
            timeout: Duration::from_secs(30),
            max_response_bytes: 131_072,
        }
    }
}

/// A response, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers (lowercase names, in the order received; repeated headers repeat).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The shared outbound HTTP client: connection pooling, the network policy, manual redirects.
/// Cheap to clone; clones share one connection pool.
///
/// The underlying client (TLS configuration, the platform's root certificates) is built on the
/// first request rather than by [`HttpClient::new`]: loading the system's CA certificates
/// takes a few milliseconds, which a Lambda container that never makes a request (transforms)
/// should not pay at start.
#[derive(Debug, Clone)]
pub struct HttpClient {
    policy: NetworkPolicy,
    allow: Arc<Vec<Cidr>>,
    client: Arc<OnceLock<reqwest::Client>>,
}

impl HttpClient {
    /// A client enforcing `policy`. A bad allow-list entry is `ConcertMaster.InvalidConfig`
    /// naming it. The connection machinery is set up on the first request; a failure there
    /// (no usable CA certificates on the system) is `ConcertMaster.Internal` from that request.
    pub fn new(policy: NetworkPolicy) -> Result<HttpClient, NodeError> {
        let allow = Arc::new(policy.allowed_networks()?);
        Ok(HttpClient {
            policy,
            allow,
            client: Arc::new(OnceLock::new()),
        })
    }

    /// The reqwest client, built on first use (once per set of clones).
    fn client(&self) -> Result<&reqwest::Client, NodeError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirect::Policy::none())
            .dns_resolver(Arc::new(PolicyResolver {
                allow: self.allow.clone(),
            }))
            .tls_backend_rustls()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("ConcertMaster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NodeError::Internal(format!("building the HTTP client: {e}")))?;
        // Another thread may have won the race; either client is equivalent, keep the first.
        Ok(self.client.get_or_init(|| client))
    }

    /// The policy in force.
    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }

    /// Whether `ip` may be connected to (`Err`: the refused range).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        check_with(&self.allow, ip)
    }

    /// Checks what can be checked of a URL before connecting: the scheme (`http`/`https`), no
    /// credentials in it, and an IP-literal host against the policy (host names are checked
    /// after resolution).
    pub fn check_url(&self, url: &Url) -> Result<(), NodeError> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(NodeError::InvalidConfig(format!(
                "only http and https URLs can be requested, not `{scheme}:`"
            )));
        }
        let target = target_of(url);
        if !url.username().is_empty() || url.password().is_some() {
            return Err(NodeError::InvalidConfig(format!(
                "URL of {target}: credentials in the URL (user:password@) are not allowed; use \
                 the node's auth setting with a secret"
            )));
        }
        let ip = match url.host() {
            None => {
                return Err(NodeError::InvalidConfig(format!(
                    "URL of {target} has no host"
                )));
            }
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        };
        self.check_ip(ip)
            .map_err(|range| blocked(url.host_str().unwrap_or_default(), &[(ip, range)], true))
    }

    /// Sends `request`, following redirects, and reads the whole response. Statuses are not
    /// errors; see the [module docs](self) for the error mapping.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, NodeError> {
        let target = target_of(&request.url);
        let timeout = request.timeout;
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(r) => r,
            Err(_) => Err(NodeError::Timeout(format!(
                "request to {target} did not complete within {}",
                seconds(timeout)
            ))),
        }
    }

    async fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, NodeError> {
        let HttpRequest {
            mut method,
            mut url,
            headers,
            credentials,
            body,
            max_response_bytes,
            ..
        } = request;
        let mut payload = body.encode()?;
        let origin = url.origin();
        let mut same_origin = true;
        let mut body_dropped = false;
        let mut hops = 0;
        loop {
            self.check_url(&url)?;
            let map = header_map(&headers, &credentials, same_origin, body_dropped)?;
            let mut builder = self
                .client()?
                .request(method.clone(), url.clone())
                .headers(map);
            if let Some((bytes, content_type)) = &payload {
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    builder = builder.header(header::CONTENT_TYPE, *content_type);
                }
                builder = builder.body(bytes.clone());
            }
            let response = builder.send().await.map_err(|e| map_error(e, &url))?;
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308)
                && let Some(next) = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
            {
                if hops == MAX_REDIRECTS {
                    return Err(NodeError::InvalidInput(format!(
                        "request to {} was redirected more than {MAX_REDIRECTS} times",
                        target_of(&url)
                    )));
                }
                hops += 1;
                let to_get = match status {
                    303 => method != Method::HEAD,
                    301 | 302 => method == Method::POST,
                    _ => false,
                };
                if to_get {
                    method = Method::GET;
                    body_dropped = body_dropped || payload.is_some();
                    payload = None;
                }
                same_origin = same_origin && next.origin() == origin;
                url = next;
                continue;
            }
            return read_response(response, &url, max_response_bytes).await;
        }
    }
}

/// The headers of one hop (`body_dropped`: a redirect turned the request into a body-less
/// `GET`, so the body's headers go too).
fn header_map(
    headers: &[(String, String)],
    credentials: &[(String, String)],
    same_origin: bool,
    body_dropped: bool,
) -> Result<HeaderMap, NodeError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            NodeError::InvalidConfig(format!("`{name}` is not a valid header name"))
        })?;
        if !same_origin
            && matches!(
                name,
                header::AUTHORIZATION | header::COOKIE | header::PROXY_AUTHORIZATION
            )
        {
            continue;
        }
        if body_dropped && matches!(name, header::CONTENT_TYPE | header::CONTENT_LENGTH) {
            continue;
        }
        let value = HeaderValue::from_str(value).map_err(|_| {
            NodeError::InvalidConfig(format!("the value of header `{name}` is not valid"))
        })?;
        map.append(name, value);
    }
    if same_origin {
        for (name, value) in credentials {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                NodeError::InvalidConfig(format!("`{name}` is not a valid header name"))
            })?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                NodeError::InvalidConfig(format!(
                    "the credential for header `{name}` is not a valid header value"
                ))
            })?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
    }
    Ok(map)
}

async fn read_response(
    mut response: reqwest::Response,
    url: &Url,
    max: usize,
) -> Result<HttpResponse, NodeError> {
    let too_large = || {
        NodeError::ResponseTooLarge(format!(
            "the response of {} is larger than the limit of {max} bytes (maxResponseBytes)",
            target_of(url)
        ))
    };
    if response.content_length().is_some_and(|l| l > max as u64) {
        return Err(too_large());
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| map_error(e, url))? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Maps a transport error (never quoting the URL).
fn map_error(e: reqwest::Error, url: &Url) -> NodeError {
    let target = target_of(url);
    let mut causes: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<ResolveError>() {
            return match r {
                ResolveError::Blocked { host, refused } => blocked(host, refused, false),
                ResolveError::Lookup { host, message } => {
                    NodeError::Retryable(format!("resolving `{host}` failed: {message}"))
                }
            };
        }
        let text = s.to_string();
        if !causes.iter().any(|c| c.contains(&text)) {
            causes.push(text);
        }
        source = s.source();
    }
    if e.is_timeout() {
        return NodeError::Timeout(format!("request to {target} timed out"));
    }
    let builder = e.is_builder();
    let cause = if causes.is_empty() {
        e.without_url().to_string()
    } else {
        causes.join(": ")
    };
    if builder {
        NodeError::InvalidConfig(format!("request to {target}: {cause}"))
    } else {
        NodeError::Retryable(format!("request to {target} failed: {cause}"))
    }
}

/// The `BlockedAddress` error for `host` and the refused addresses it resolved to (`literal`:
/// the host is the one address).
fn blocked(host: &str, refused: &[(IpAddr, String)], literal: bool) -> NodeError {
    let list = refused
        .iter()
        .map(|(ip, range)| {
            if literal {
                range.clone()
            } else {
                format!("{ip}, {range}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let what = if literal {
        list
    } else {
        format!("it resolves to {list}")
    };
    let example = refused
        .first()
        .map(|(ip, _)| match ip {
            IpAddr::V4(v4) => format!("{v4}/32"),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => format!("{v4}/32"),
                None => format!("{v6}/128"),
            },
        })
        .unwrap_or_default();
    NodeError::BlockedAddress(format!(
        "`{host}` is refused by the network policy ({what}); to allow it for local development, \
         add its network to the allowed networks ({ALLOW_SETTING}, e.g. `{example}`)"
    ))
}

fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err: a provider is already installed (by the host program), which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Why the filtering resolver failed.
#[derive(Debug)]
enum ResolveError {
    /// Every address the name resolved to is refused.
    Blocked {
        host: String,
        refused: Vec<(IpAddr, String)>,
    },
    /// The lookup itself failed.
    Lookup { host: String, message: String },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Blocked { host, .. } => {
                write!(
                    f,
                    "every address of `{host}` is refused by the network policy"
                )
            }
            ResolveError::Lookup { host, message } => write!(f, "resolving `{host}`: {message}"),
        }
    }
}

impl StdError for ResolveError {}

/// Resolves with `getaddrinfo` and drops the addresses the policy refuses.
struct PolicyResolver {
    allow: Arc<Vec<Cidr>>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.clone(), 0)).await {
                Ok(a) => a.collect(),
                Err(e) => {
                    return Err(Box::new(ResolveError::Lookup {
                        host,
                        message: e.to_string(),
                    }) as Box<dyn StdError + Send + Sync>);
                }
            };
            let mut allowed = Vec::new();
            let mut refused = Vec::new();
            for a in addrs {
                match check_with(&allow, a.ip()) {
                    Ok(()) => allowed.push(a),
                    Err(range) => refused.push((a.ip(), range)),
                }
            }
            if allowed.is_empty() {
                let e = if refused.is_empty() {
                    ResolveError::Lookup {
                        host,
                        message: "no addresses".into(),
                    }
                } else {
                    ResolveError::Blocked { host, refused }
                };
                return Err(Box::new(e) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}
