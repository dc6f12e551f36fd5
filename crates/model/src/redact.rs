//! Wrappers for secrets and personal data: the typed successors of the original system's
//! `@do_not_log` facet. Whatever they hold prints as `***` in Debug and Display, so it cannot
//! leak through a log line by accident; only an explicit `expose()` reads it.
//!
//! - [`Redacted`] (passwords, tokens) also serialises as `***`: it never leaves the process.
//! - [`Personal`] (names, usernames, emails) serialises as itself, for the API answers that
//!   show it to whoever may see it.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// The parts both wrappers share: construction, reading, `***` in Debug and Display, and
/// transparent deserialisation.
macro_rules! hidden_in_logs {
    ($wrapper:ident) => {
        impl<T> $wrapper<T> {
            /// Wraps a value.
            pub fn new(value: T) -> Self {
                Self(value)
            }

            /// Reads the value. Call sites of this are the places to review for leaks.
            pub fn expose(&self) -> &T {
                &self.0
            }

            /// Unwraps the value.
            pub fn into_inner(self) -> T {
                self.0
            }
        }

        impl<T> fmt::Debug for $wrapper<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("***")
            }
        }

        impl<T> fmt::Display for $wrapper<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("***")
            }
        }

        impl<'de, T: Deserialize<'de>> Deserialize<'de> for $wrapper<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                T::deserialize(deserializer).map($wrapper)
            }
        }

        impl From<String> for $wrapper<String> {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $wrapper<String> {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

/// A secret (password, token) that must never reach a log line or an answer in clear.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted<T>(T);

hidden_in_logs!(Redacted);

/// Serialising a secret (for example into a structured log record) also gives `***`.
impl<T> serde::Serialize for Redacted<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// Personal data (a name, a username, an email): shown to whoever may see it, in API answers
/// (serialisation is transparent), but never in a log line.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Personal<T>(T);

hidden_in_logs!(Personal);

impl PartialEq<str> for Personal<String> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Personal<String> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_serialises_for_answers_but_never_prints() {
        let email = Personal::new("phigg@home.cern".to_string());
        assert_eq!(format!("{email} {email:?}"), "*** ***");
        assert_eq!(serde_json_like(&email), "\"phigg@home.cern\"");
        assert_eq!(email, "phigg@home.cern");
    }

    fn serde_json_like(value: &Personal<String>) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }

    #[test]
    fn never_prints_its_content() {
        let secret = Redacted::new("hunter2-correct-horse".to_string());
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(***)");
        assert_eq!(secret.expose(), "hunter2-correct-horse");
    }

    #[test]
    fn deserialises_transparently_and_serialises_masked() {
        #[derive(Deserialize, serde::Serialize, Debug)]
        struct Login {
            password: Redacted<String>,
        }
        let login: Login = serde_json::from_str(r#"{"password":"hunter2"}"#).unwrap();
        assert_eq!(login.password.expose(), "hunter2");
        assert!(!format!("{login:?}").contains("hunter2"));
        assert_eq!(
            serde_json::to_string(&login).unwrap(),
            r#"{"password":"***"}"#
        );
    }
}
