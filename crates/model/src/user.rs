//! User accounts as the API shows them.

use serde::{Deserialize, Serialize};

use crate::{Personal, Role, ValidationError, validate};

/// A MyMonit account, in the original wire shape `{user_id, name, username, email, role}`.
/// Its Debug form shows the id and role only: a user logged by accident leaks nothing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Staff id, for example `S001`; never changes and survives erasure.
    #[schema(example = "S001")]
    pub user_id: String,
    /// Display name (personal data).
    #[schema(value_type = String, example = "Peter Higg")]
    pub name: Personal<String>,
    /// The identity provider's subject: a local login name or an external uid.
    #[schema(value_type = String, example = "phigg")]
    pub username: Personal<String>,
    /// Email address (personal data).
    #[schema(value_type = String, example = "phigg@home.cern")]
    pub email: Personal<String>,
    /// What the user may do.
    pub role: Role,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("user_id", &self.user_id)
            .field("name", &"***")
            .field("username", &"***")
            .field("email", &"***")
            .field("role", &self.role)
            .finish()
    }
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |field: &Option<String>| field.as_ref().map(|_| "***");
        f.debug_struct("UserPatch")
            .field("name", &hidden(&self.name))
            .field("username", &hidden(&self.username))
            .field("email", &hidden(&self.email))
            .field("role", &self.role)
            .finish()
    }
}

impl User {
    /// Validates every field, reporting the first that is wrong.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate::user_id(&self.user_id)?;
        validate::name(self.name.expose())?;
        validate::username(self.username.expose())?;
        validate::email(self.email.expose())?;
        Ok(())
    }
}

/// A change to an account; `None` leaves the field as it is. Its Debug form hides the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserPatch {
    /// New display name.
    pub name: Option<String>,
    /// New username.
    pub username: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New role.
    pub role: Option<Role>,
}

impl UserPatch {
    /// Validates the fields that are set.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(name) = &self.name {
            validate::name(name)?;
        }
        if let Some(username) = &self.username {
            validate::username(username)?;
        }
        if let Some(email) = &self.email {
            validate::email(email)?;
        }
        Ok(())
    }

    /// Whether the patch touches only the name and email, the fields a scientist may change
    /// on their own account. A field set to its current value does not count as a change.
    pub fn only_name_and_email(&self, current: &User) -> bool {
        self.username
            .as_ref()
            .is_none_or(|username| username == current.username.expose())
            && self.role.is_none_or(|role| role == current.role)
    }

    /// Applies the patch to a copy of `user`.
    pub fn apply(&self, user: &User) -> User {
        User {
            user_id: user.user_id.clone(),
            name: self
                .name
                .clone()
                .map_or_else(|| user.name.clone(), Personal::new),
            username: self
                .username
                .clone()
                .map_or_else(|| user.username.clone(), Personal::new),
            email: self
                .email
                .clone()
                .map_or_else(|| user.email.clone(), Personal::new),
            role: self.role.unwrap_or(user.role),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn higg() -> User {
        User {
            user_id: "S001".into(),
            name: "Peter Higg".into(),
            username: "phigg".into(),
            email: "phigg@home.cern".into(),
            role: Role::Scientist,
        }
    }

    #[test]
    fn debug_forms_hide_personal_data() {
        let shown = format!("{:?}", higg());
        assert!(
            shown.contains("S001") && shown.contains("Scientist"),
            "{shown}"
        );
        for personal in ["Peter Higg", "phigg", "home.cern"] {
            assert!(!shown.contains(personal), "{shown}");
        }
        let patch = UserPatch {
            email: Some("new@home.cern".into()),
            ..UserPatch::default()
        };
        assert!(!format!("{patch:?}").contains("new@home.cern"));
    }

    #[test]
    fn a_scientist_patch_may_only_touch_name_and_email() {
        let user = higg();
        let own = UserPatch {
            name: Some("Peter Higgs".into()),
            email: Some("peter@home.cern".into()),
            username: Some("phigg".into()),
            role: Some(Role::Scientist),
        };
        assert!(own.only_name_and_email(&user));
        let promote = UserPatch {
            role: Some(Role::Admin),
            ..Default::default()
        };
        assert!(!promote.only_name_and_email(&user));
        let rename = UserPatch {
            username: Some("someone-else".into()),
            ..Default::default()
        };
        assert!(!rename.only_name_and_email(&user));
    }

    #[test]
    fn apply_keeps_unset_fields() {
        let patched = UserPatch {
            email: Some("new@home.cern".into()),
            ..Default::default()
        }
        .apply(&higg());
        assert_eq!(patched.email, "new@home.cern");
        assert_eq!(patched.name, "Peter Higg");
        assert_eq!(patched.user_id, "S001");
    }

    #[test]
    fn validate_names_the_bad_field() {
        let mut user = higg();
        user.validate().unwrap();
        user.email = "not-an-email".into();
        assert_eq!(user.validate().unwrap_err().field, "email");
        let patch = UserPatch {
            name: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(patch.validate().unwrap_err().field, "name");
    }
}
