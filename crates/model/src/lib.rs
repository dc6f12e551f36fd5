//! MyMonit's domain: users, roles and what each role may do, experiments, measure types,
//! measures, the password policy and input validation. Pure logic, no I/O, so it can be
//! tested (and later fuzzed) on its own.

pub mod alert;
pub mod audit;
pub mod ingest;
pub mod measure;
pub mod password;
pub mod permissions;
pub mod personal_token;
pub mod redact;
pub mod source;
pub mod time;
pub mod units;
pub mod user;
pub mod validate;

pub use measure::{Experiment, Measure, MeasureType};
pub use permissions::{Action, Role};
pub use redact::{Personal, Redacted};
pub use user::{User, UserPatch};
pub use validate::ValidationError;
