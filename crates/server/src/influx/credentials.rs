//! Credentials as InfluxDB clients send them: `Authorization: Token …` (also `Token
//! user:secret`), `Bearer …`, HTTP Basic (the password is the secret), or the `u` and `p`
//! query parameters.

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::{Engine, engine::general_purpose::STANDARD};

/// What a request presented, if anything.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The user name, when the form carries one (Basic, `u`, `Token user:secret`).
    pub username: Option<String>,
    /// The secret: an ingest token, a personal access token or an access token.
    pub secret: Option<String>,
}

/// Reads `name` from a query string.
fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

impl Credentials {
    /// Reads the credentials of a request; `Err` names a malformed `Authorization` header.
    pub fn read(parts: &Parts) -> Result<Self, String> {
        let query = parts.uri.query().unwrap_or("");
        let (u, p) = (query_value(query, "u"), query_value(query, "p"));
        if let Some(secret) = p.filter(|p| !p.is_empty()) {
            return Ok(Self {
                username: u,
                secret: Some(secret),
            });
        }
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(Self::default());
        };
        let malformed = || {
            "unable to parse authentication credentials: use Authorization: Token <token>, \
             Bearer <token> or Basic, or the u and p parameters"
                .to_owned()
        };
        let value = header.to_str().map_err(|_| malformed())?;
        let (scheme, rest) = value.split_once(' ').ok_or_else(malformed)?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(malformed());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD.decode(rest).map_err(|_| malformed())?;
            let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
            let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
            return Ok(Self {
                username: Some(user.to_owned()),
                secret: Some(password.to_owned()),
            });
        }
        if scheme.eq_ignore_ascii_case("token") {
            // InfluxDB 1.8's `Token user:password`; MyMonit's secrets hold no colon.
            return Ok(match rest.split_once(':') {
                Some((user, secret)) => Self {
                    username: Some(user.to_owned()),
                    secret: Some(secret.to_owned()),
                },
                None => Self {
                    username: None,
                    secret: Some(rest.to_owned()),
                },
            });
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(Self {
                username: None,
                secret: Some(rest.to_owned()),
            });
        }
        Err(malformed())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Credentials {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // A malformed header is reported by the handler, in its API's error shape.
        Ok(Self::read(parts).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(uri: &str, authorization: Option<&str>) -> Result<Credentials, String> {
        let mut request = axum::http::Request::builder().uri(uri);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let (parts, ()) = request.body(()).unwrap_or_default().into_parts();
        Credentials::read(&parts)
    }

    fn pair(credentials: Result<Credentials, String>) -> (Option<String>, Option<String>) {
        let credentials = credentials.unwrap_or_default();
        (credentials.username, credentials.secret)
    }

    #[test]
    fn the_four_forms() {
        let both = |user: &str, secret: &str| (Some(user.to_owned()), Some(secret.to_owned()));
        assert_eq!(
            pair(read("/write?db=x&u=phigg&p=mmp_a%2Bb", None)),
            both("phigg", "mmp_a+b")
        );
        assert_eq!(
            pair(read(
                "/write",
                Some(&format!("Basic {}", STANDARD.encode("phigg:mmp_s")))
            )),
            both("phigg", "mmp_s")
        );
        assert_eq!(
            pair(read("/write", Some("Token mmi_t"))),
            (None, Some("mmi_t".into()))
        );
        assert_eq!(
            pair(read("/write", Some("token phigg:mmp_s"))),
            both("phigg", "mmp_s")
        );
        assert_eq!(
            pair(read("/write", Some("Bearer eyJ"))),
            (None, Some("eyJ".into()))
        );
        assert_eq!(pair(read("/write", None)), (None, None));
        assert!(read("/write", Some("Digest x")).is_err());
        assert!(read("/write", Some("Basic !!!")).is_err());
    }
}
