//! The client's address: the connection's peer, unless the peer is a trusted proxy
//! (`trusted_proxies`), in which case the proxy's `Forwarded` (RFC 7239) or
//! `X-Forwarded-For` header names it. Headers from anyone else are ignored, so a client
//! cannot choose the address the throttle and the audit trail see.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use ipnet::IpNet;

use crate::{error::ApiError, settings::ForwardedHeader, state::AppState};

/// The address a request came from, as [`client_address`] decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no peer address on the request")))?;
        Ok(ClientIp(client_address_from(
            peer,
            &parts.headers,
            &state.trusted_proxies,
            state.settings.forwarded_header,
        )))
    }
}

/// The client behind `peer`: walking the forwarded chain from the nearest hop, the first
/// address that is not a trusted proxy (the leftmost when all are); `peer` itself when it is
/// not trusted, or when the chain holds something that is not an address.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    client_address_from(peer, headers, trusted, ForwardedHeader::Auto)
}

/// Like [`client_address`], reading the chain from `header` only.
pub fn client_address_from(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ForwardedHeader,
) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain = forwarded_chain(headers, header);
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(address) = hop else {
            return client;
        };
        client = *address;
        if !is_trusted(address) {
            return client;
        }
    }
    client
}

/// The addresses of the forwarded chain, nearest last (`None` for an entry that is not an
/// address, such as `unknown` or an obfuscated name). With `Auto`, `Forwarded` wins over
/// `X-Forwarded-For` when both are present.
fn forwarded_chain(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = match header {
        ForwardedHeader::XForwardedFor => Vec::new(),
        ForwardedHeader::Auto | ForwardedHeader::Forwarded => headers
            .get_all("forwarded")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect(),
    };
    if header == ForwardedHeader::Forwarded || !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(value.trim().trim_matches('"')))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| parse_node(entry.trim()))
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(address, _)| address.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9")]);
        // From an untrusted peer the header is ignored.
        assert_eq!(
            client_address(ip("198.51.100.7"), &spoofed, &trusted),
            ip("198.51.100.7")
        );
        // From a trusted proxy it names the client.
        assert_eq!(
            client_address(ip("10.1.2.3"), &spoofed, &trusted),
            ip("203.0.113.9")
        );
        // A client prepending its own entry does not get to choose: the nearest untrusted
        // hop wins.
        let chain = headers(&[("x-forwarded-for", "192.0.2.66, 203.0.113.9, 10.9.9.9")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &chain, &trusted),
            ip("203.0.113.9")
        );
        // Nothing trusted: nothing read.
        assert_eq!(client_address(ip("10.1.2.3"), &chain, &[]), ip("10.1.2.3"));
    }

    #[test]
    fn forwarded_is_read_with_ports_brackets_and_quotes() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let local = ip("127.0.0.1");
        for (value, expected) in [
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            ("for=\"192.0.2.43:47011\"", "192.0.2.43"),
        ] {
            let forwarded = headers(&[("forwarded", value), ("x-forwarded-for", "203.0.113.1")]);
            assert_eq!(
                client_address(local, &forwarded, &trusted),
                ip(expected),
                "{value}"
            );
        }
        // An obfuscated or unknown hop stops the walk at the last address known.
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_address(local, &unknown, &trusted), local);
    }

    #[test]
    fn the_chosen_header_alone_names_the_client() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let local = ip("127.0.0.1");
        // A proxy that appends to X-Forwarded-For but passes the client's own Forwarded on.
        let both = headers(&[
            ("forwarded", "for=203.0.113.9"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        let from = |header| client_address_from(local, &both, &trusted, header);
        assert_eq!(from(ForwardedHeader::Auto), ip("203.0.113.9"));
        assert_eq!(from(ForwardedHeader::XForwardedFor), ip("198.51.100.7"));
        assert_eq!(from(ForwardedHeader::Forwarded), ip("203.0.113.9"));
        // The chosen header absent: the peer itself, never the other header.
        let only_xff = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            client_address_from(local, &only_xff, &trusted, ForwardedHeader::Forwarded),
            local
        );
    }
}
