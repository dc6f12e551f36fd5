//! Roles and the role matrix of DESIGN.md ("Roles"). Every authorisation decision in the
//! server goes through [`Role::may`], so the matrix lives in exactly one place and is unit
//! tested here.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// What a user is in MyMonit. Roles always come from MyMonit's own user table, never from
/// an identity provider's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    /// Manages users, experiments, measure types, associations and ingest credentials.
    /// Cannot read measures (separation of duties).
    Admin,
    /// Reads the measures of the experiments they are associated with.
    Scientist,
    /// Reads and verifies the audit trail.
    Auditor,
}

impl Role {
    /// All roles, for tables and help texts.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Scientist, Role::Auditor];

    /// The wire name: `ADMIN`, `SCIENTIST` or `AUDITOR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Scientist => "SCIENTIST",
            Role::Auditor => "AUDITOR",
        }
    }

    /// Whether this role may perform `action` at all. Some actions are further limited to
    /// the actor's own data (see [`Scope`]).
    pub fn may(self, action: Action) -> Option<Scope> {
        use Action::*;
        match (self, action) {
            (Role::Admin, ListUsers | ReadUser | CreateUser | UpdateUser | EraseUser) => {
                Some(Scope::All)
            }
            (Role::Scientist, ListUsers | ReadUser | UpdateUser) => Some(Scope::Own),
            (Role::Admin, ListExperiments | ReadExperiment) => Some(Scope::All),
            (Role::Scientist, ListExperiments | ReadExperiment) => Some(Scope::Own),
            (Role::Admin, ManageExperiments | ManageMeasureTypes | ManageIngestTokens) => {
                Some(Scope::All)
            }
            (Role::Admin, ListAssociations | ManageAssociations) => Some(Scope::All),
            (Role::Admin, ManageSources | ListSources) => Some(Scope::All),
            (Role::Scientist, ListSources) => Some(Scope::Own),
            (Role::Scientist, ReadMeasures) => Some(Scope::Own),
            (_, ListMeasureTypes) => Some(Scope::All),
            (Role::Auditor, ReadAudit) => Some(Scope::All),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text of a role that is none of ADMIN, SCIENTIST, AUDITOR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected ADMIN, SCIENTIST or AUDITOR")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ADMIN" => Ok(Role::Admin),
            "SCIENTIST" => Ok(Role::Scientist),
            "AUDITOR" => Ok(Role::Auditor),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

/// Things a signed-in user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List user accounts.
    ListUsers,
    /// Read one user account.
    ReadUser,
    /// Create a user account.
    CreateUser,
    /// Change a user account (a scientist: only their own name and email).
    UpdateUser,
    /// Erase a user account (GDPR).
    EraseUser,
    /// List experiments.
    ListExperiments,
    /// Read one experiment.
    ReadExperiment,
    /// Create or rename experiments.
    ManageExperiments,
    /// List measure types.
    ListMeasureTypes,
    /// Create measure types.
    ManageMeasureTypes,
    /// Create, list and revoke ingest tokens.
    ManageIngestTokens,
    /// List scientist ↔ experiment associations.
    ListAssociations,
    /// Associate or dissociate scientists.
    ManageAssociations,
    /// Read measures, statistics, exports and the live stream.
    ReadMeasures,
    /// Read and verify the audit trail.
    ReadAudit,
    /// Create, change and delete pull sources.
    ManageSources,
    /// List pull sources and their state (scientists: of their experiments).
    ListSources,
}

/// How far a permission reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything of that kind.
    All,
    /// Only what belongs to the actor: their own account, or the experiments they are
    /// associated with.
    Own,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    const ACTIONS: [Action; 17] = [
        ListUsers,
        ReadUser,
        CreateUser,
        UpdateUser,
        EraseUser,
        ListExperiments,
        ReadExperiment,
        ManageExperiments,
        ListMeasureTypes,
        ManageMeasureTypes,
        ManageIngestTokens,
        ListAssociations,
        ManageAssociations,
        ReadMeasures,
        ReadAudit,
        ManageSources,
        ListSources,
    ];

    /// The DESIGN.md table, written out cell by cell: (action, admin, scientist, auditor).
    #[test]
    fn matrix_matches_the_design() {
        use Scope::*;
        type Cell = Option<Scope>;
        let expected: [(Action, Cell, Cell, Cell); 17] = [
            (ListUsers, Some(All), Some(Own), None),
            (ReadUser, Some(All), Some(Own), None),
            (CreateUser, Some(All), None, None),
            (UpdateUser, Some(All), Some(Own), None),
            (EraseUser, Some(All), None, None),
            (ListExperiments, Some(All), Some(Own), None),
            (ReadExperiment, Some(All), Some(Own), None),
            (ManageExperiments, Some(All), None, None),
            (ListMeasureTypes, Some(All), Some(All), Some(All)),
            (ManageMeasureTypes, Some(All), None, None),
            (ManageIngestTokens, Some(All), None, None),
            (ListAssociations, Some(All), None, None),
            (ManageAssociations, Some(All), None, None),
            (ReadMeasures, None, Some(Own), None),
            (ReadAudit, None, None, Some(All)),
            (ManageSources, Some(All), None, None),
            (ListSources, Some(All), Some(Own), None),
        ];
        assert_eq!(expected.map(|e| e.0), ACTIONS);
        for (action, admin, scientist, auditor) in expected {
            assert_eq!(Role::Admin.may(action), admin, "ADMIN {action:?}");
            assert_eq!(
                Role::Scientist.may(action),
                scientist,
                "SCIENTIST {action:?}"
            );
            assert_eq!(Role::Auditor.may(action), auditor, "AUDITOR {action:?}");
        }
    }

    #[test]
    fn admins_never_read_measures() {
        assert_eq!(Role::Admin.may(ReadMeasures), None);
    }

    #[test]
    fn roles_parse_case_insensitively_and_reject_others() {
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert_eq!(" SCIENTIST ".parse::<Role>(), Ok(Role::Scientist));
        assert_eq!("Auditor".parse::<Role>(), Ok(Role::Auditor));
        let err = "ROOT".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("ROOT"));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }
}
