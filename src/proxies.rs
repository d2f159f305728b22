//! Where a client really is when a balancer stands between it and the node. Only a peer in
//! `TRUSTED_PROXIES` is believed: from it, the client's address comes from the PROXY
//! protocol header it sends first (v1 or v2, with `PROXY_PROTOCOL=true`), or else from each
//! request's `Forwarded` or `X-Forwarded-For` header, taking the right-most hop that is not a
//! trusted proxy itself. From any other peer those headers are ignored, so nobody can make up
//! an address; the peer is the client.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;
use ppp::v1::Addresses as V1;
use ppp::v2::{Addresses as V2, Command};
use ppp::{HeaderResult, PartialResult};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest PROXY header read (v1's are at most 107 bytes; v2's carry a few TLVs).
const HEADER_MAX: usize = 4096;

/// The proxies a node trusts.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    trusted: Vec<IpNet>,
    protocol: bool,
}

/// What a PROXY header says of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client's address and port.
    Client(SocketAddr),
    /// None: the proxy's own connection (a health check), or a client it does not know.
    Unknown,
}

/// A PROXY header read from the start of a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not all of it yet.
    Incomplete,
    /// Its meaning, and its length in bytes.
    Complete(Origin, usize),
    /// Not a PROXY header.
    Invalid,
}

impl Proxies {
    /// `list`: addresses and CIDR blocks, comma-separated (empty: no proxy is trusted).
    pub fn parse(list: &str, protocol: bool) -> anyhow::Result<Self> {
        let trusted = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!("TRUSTED_PROXIES: {entry:?} is no address or CIDR block")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if protocol && trusted.is_empty() {
            anyhow::bail!("PROXY_PROTOCOL needs TRUSTED_PROXIES: the proxies that send its header");
        }
        Ok(Self { trusted, protocol })
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.trusted.iter().any(|net| net.contains(&address))
    }

    /// Whether a connection from `peer` starts with a PROXY header.
    pub fn sends_header(&self, peer: IpAddr) -> bool {
        self.protocol && self.trusts(peer)
    }

    /// The client a request from a trusted proxy was made for: from `Forwarded`, or else
    /// `X-Forwarded-For`, the right-most hop that is not a trusted proxy (each proxy appends
    /// the address it took the request from, so the hops to its right are trusted ones).
    /// `None` when no header names one.
    pub fn forwarded_client(&self, headers: &HeaderMap) -> Option<IpAddr> {
        let hops = forwarded_hops(headers)?;
        let mut client = None;
        for hop in hops.iter().rev() {
            let hop = (*hop)?;
            client = Some(hop);
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

/// The hops a request passed through, left to right (`None` for one that is not an address,
/// such as `unknown`): from `Forwarded`, or else `X-Forwarded-For`.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let values = |name: &str| -> Vec<&str> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        let hops = forwarded.iter().map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for").then(|| node_address(value))
            })?
        });
        return Some(hops.collect());
    }
    let forwarded_for = values("x-forwarded-for");
    if forwarded_for.is_empty() {
        return None;
    }
    Some(forwarded_for.iter().map(|hop| node_address(hop)).collect())
}

/// An address as a hop names it: `192.0.2.60`, `"[2001:db8::17]:4711"`, `192.0.2.60:80`.
fn node_address(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim().trim_matches('"');
    if let Ok(address) = raw.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(address) = raw.parse::<SocketAddr>() {
        return Some(address.ip());
    }
    let bracketed = raw.strip_prefix('[')?.split(']').next()?;
    bracketed.parse().ok()
}

/// What the start of a connection says, if it is a PROXY header (v1 or v2).
pub fn parse_header(bytes: &[u8]) -> Parsed {
    let origin_v4 = |ip: std::net::Ipv4Addr, port| Origin::Client(SocketAddr::new(ip.into(), port));
    let origin_v6 = |ip: std::net::Ipv6Addr, port| Origin::Client(SocketAddr::new(ip.into(), port));
    let header = HeaderResult::parse(bytes);
    if header.is_incomplete() {
        return Parsed::Incomplete;
    }
    match header {
        HeaderResult::V1(Ok(header)) => {
            let origin = match header.addresses {
                V1::Tcp4(a) => origin_v4(a.source_address, a.source_port),
                V1::Tcp6(a) => origin_v6(a.source_address, a.source_port),
                V1::Unknown => Origin::Unknown,
            };
            Parsed::Complete(origin, header.header.len())
        }
        HeaderResult::V2(Ok(header)) => {
            let origin = match (header.command, header.addresses) {
                (Command::Proxy, V2::IPv4(a)) => origin_v4(a.source_address, a.source_port),
                (Command::Proxy, V2::IPv6(a)) => origin_v6(a.source_address, a.source_port),
                _ => Origin::Unknown,
            };
            Parsed::Complete(origin, header.len())
        }
        _ => Parsed::Invalid,
    }
}

/// Read the PROXY header a trusted proxy sends before anything else: what it says, and the
/// bytes read past it (the start of the first request).
pub async fn read_header(
    stream: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<(Origin, Vec<u8>)> {
    let mut read = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    loop {
        match parse_header(&read) {
            Parsed::Complete(origin, length) => return Ok((origin, read.split_off(length))),
            Parsed::Invalid => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a trusted proxy's connection did not start with a PROXY header",
                ));
            }
            Parsed::Incomplete if read.len() >= HEADER_MAX => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "PROXY header too long",
                ));
            }
            Parsed::Incomplete => {}
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        read.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn trusted_proxies_are_addresses_and_blocks() {
        let proxies = Proxies::parse(" 10.0.0.0/8, 127.0.0.1 ,::1", false).unwrap();
        assert!(proxies.trusts(ip("10.1.2.3")));
        assert!(proxies.trusts(ip("127.0.0.1")));
        assert!(
            proxies.trusts(ip("::ffff:127.0.0.1")),
            "an IPv4 peer on an IPv6 socket"
        );
        assert!(!proxies.trusts(ip("127.0.0.2")));
        assert!(Proxies::parse("10.0.0.0/33", false).is_err());
        assert!(Proxies::parse("proxy.example.com", false).is_err());
        assert!(
            Proxies::parse("", true).is_err(),
            "a PROXY header from nobody"
        );
        assert!(!Proxies::parse("", false).unwrap().trusts(ip("127.0.0.1")));
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let proxies = Proxies::parse("10.0.0.0/8", false).unwrap();
        let client = |pairs| proxies.forwarded_client(&headers(pairs));
        // A client may put anything on the left: only what trusted proxies added counts.
        let forged = [("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")];
        assert_eq!(client(&forged), Some(ip("203.0.113.7")));
        let split = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.7"),
        ];
        assert_eq!(client(&split), Some(ip("203.0.113.7")));
        let forwarded = [(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8::17]:4711";proto=http, for=10.0.0.2"#,
        )];
        assert_eq!(client(&forwarded), Some(ip("2001:db8::17")));
        // Only trusted hops: the farthest one is the client.
        assert_eq!(
            client(&[("x-forwarded-for", "10.0.0.9, 10.0.0.2")]),
            Some(ip("10.0.0.9"))
        );
        // A hop that is no address ends the search with nothing.
        assert_eq!(client(&[("x-forwarded-for", "unknown, 10.0.0.2")]), None);
        assert_eq!(client(&[]), None);
    }

    #[test]
    fn proxy_headers_of_both_versions_are_read() {
        let v1 = b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\nGET / HTTP/1.1\r\n";
        let client = SocketAddr::from(([192, 0, 2, 1], 56324));
        assert_eq!(
            parse_header(v1),
            Parsed::Complete(Origin::Client(client), 42)
        );
        assert_eq!(parse_header(&v1[..20]), Parsed::Incomplete);
        assert_eq!(
            parse_header(b"PROXY UNKNOWN\r\n"),
            Parsed::Complete(Origin::Unknown, 15)
        );
        assert_eq!(
            parse_header(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Parsed::Invalid
        );

        let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        v2.extend([
            0x21, 0x11, 0, 12, 127, 0, 0, 9, 127, 0, 0, 1, 0x1f, 0x90, 0x0b, 0xb8,
        ]);
        let client = SocketAddr::from(([127, 0, 0, 9], 8080));
        assert_eq!(
            parse_header(&v2),
            Parsed::Complete(Origin::Client(client), 28)
        );
        assert_eq!(parse_header(&v2[..20]), Parsed::Incomplete);
        // LOCAL: the proxy's own health check.
        let local = [b"\r\n\r\n\0\r\nQUIT\n".as_slice(), &[0x20, 0x00, 0, 0]].concat();
        assert_eq!(parse_header(&local), Parsed::Complete(Origin::Unknown, 16));
    }

    #[tokio::test]
    async fn the_bytes_after_a_header_are_kept() {
        let mut stream: &[u8] = b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\nGET / HTTP/1.1\r\n";
        let (origin, rest) = read_header(&mut stream).await.unwrap();
        assert_eq!(
            origin,
            Origin::Client(SocketAddr::from(([192, 0, 2, 1], 56324)))
        );
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        let mut silent: &[u8] = b"";
        assert!(read_header(&mut silent).await.is_err());
    }
}
