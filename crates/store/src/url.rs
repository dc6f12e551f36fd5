//! Which database a URL names.

use std::{fmt, path::PathBuf, str::FromStr};

use crate::StoreError;

/// A database URL: `sqlite://DIR` (the embedded default, a directory holding `mymonit.db`)
/// or `postgres://USER:PASSWORD@HOST:PORT/DATABASE?…` (also `postgresql://`).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// The embedded backend's data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, as libpq reads it.
    Postgres(String),
}

impl DatabaseUrl {
    /// The URL with any password replaced by `***`, for logs and messages.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(dir) => format!("sqlite://{}", dir.display()),
            DatabaseUrl::Postgres(url) => redact_password(url),
        }
    }

    /// The backend's name.
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

/// Replaces the password of `scheme://user:password@host…` by `***`; in a list of URLs
/// (separated by commas or spaces, as for a cluster), in each.
pub fn redact_password(url: &str) -> String {
    let parts: Vec<&str> = url
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    if parts.len() > 1 {
        return parts
            .into_iter()
            .map(redact_one)
            .collect::<Vec<_>>()
            .join(", ");
    }
    redact_one(url)
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let url = url.trim();
        if let Some(dir) = url.strip_prefix("sqlite://") {
            if dir.is_empty() {
                return Err(StoreError::Url(
                    "sqlite:// needs a directory, for example sqlite://./data".into(),
                ));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(dir)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        Err(StoreError::Url(format!(
            "database URL {:?} names no backend MyMonit has: use sqlite://DIR or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            redact_password(url)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            "sqlite://./data".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite("./data".into())
        );
        assert_eq!(
            "sqlite:///var/lib/mymonit".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite("/var/lib/mymonit".into())
        );
        assert!(matches!(
            "postgresql://a:b@127.0.0.1/x"
                .parse::<DatabaseUrl>()
                .unwrap(),
            DatabaseUrl::Postgres(_)
        ));
        let err = "mysql://root:hunter2@db/x"
            .parse::<DatabaseUrl>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("sqlite://DIR"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn passwords_never_show() {
        let url: DatabaseUrl = "postgres://mymonit:s3cret@db:5432/mymonit?sslmode=verify-full"
            .parse()
            .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://mymonit:***@db:5432/mymonit?sslmode=verify-full"
        );
        assert_eq!(format!("{url:?}"), url.to_string());
        assert_eq!(redact_password("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            redact_password("postgres://u:p@w@db/x"),
            "postgres://u:***@db/x"
        );
    }
}
