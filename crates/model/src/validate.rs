//! Validation of what users type: ids, names, usernames, emails. Each failure names the
//! field and says what is wrong, so the API can answer a precise 422.

/// One field that failed validation, with the reason in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The field's name as the client sent it (for example `email`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ValidationError {
    /// Builds an error for `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

type Result<T = (), E = ValidationError> = std::result::Result<T, E>;

/// Longest username, in characters.
pub const USERNAME_MAX_LEN: usize = 128;

fn check_length(field: &'static str, value: &str, max: usize) -> Result {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A staff id such as `S001`: 1 to 32 letters, digits, `-`, `_` or `.`.
pub fn user_id(value: &str) -> Result {
    check_length("user_id", value, 32)?;
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ValidationError::new(
            "user_id",
            "may contain only letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

/// A person's display name.
pub fn name(value: &str) -> Result {
    check_length("name", value, 200)
}

/// The identity provider's subject (a Firebase uid, or a local login name): no spaces.
pub fn username(value: &str) -> Result {
    check_length("username", value, USERNAME_MAX_LEN)?;
    if value.chars().any(char::is_whitespace) {
        return Err(ValidationError::new("username", "must not contain spaces"));
    }
    Ok(())
}

/// An email address: one `@`, a non-empty local part and a dotted domain, no spaces.
pub fn email(value: &str) -> Result {
    check_length("email", value, 254)?;
    let invalid = || ValidationError::new("email", format!("{value:?} is not an email address"));
    let (local, domain) = value.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || value.chars().any(char::is_whitespace)
    {
        return Err(invalid());
    }
    Ok(())
}

/// An experiment name such as `device-vibrations`.
pub fn experiment_name(value: &str) -> Result {
    check_length("name", value, 100)?;
    if value.trim() != value {
        return Err(ValidationError::new(
            "name",
            "must not start or end with spaces",
        ));
    }
    Ok(())
}

/// A measure type's name (`hertz`), symbol (`Hz`) or quantity (`frequency`).
pub fn measure_type_field(field: &'static str, value: &str) -> Result {
    check_length(field, value, 100)?;
    if value.trim() != value {
        return Err(ValidationError::new(
            field,
            "must not start or end with spaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_original_demo_values() {
        user_id("A001").unwrap();
        user_id("S002").unwrap();
        name("Allan Alcorn").unwrap();
        username("aalcorn").unwrap();
        username("Xq3kP9mZ2bUvY8wTn5rL0aJ4cDe1").unwrap();
        email("aalcorn@home.cern").unwrap();
        experiment_name("device-vibrations").unwrap();
        measure_type_field("symbol", "Ω").unwrap();
    }

    #[test]
    fn rejects_with_the_field_named() {
        assert_eq!(user_id("").unwrap_err().field, "user_id");
        assert_eq!(user_id("S 001").unwrap_err().field, "user_id");
        assert_eq!(user_id(&"x".repeat(33)).unwrap_err().field, "user_id");
        assert_eq!(name("  ").unwrap_err().field, "name");
        assert_eq!(name("a\u{0}b").unwrap_err().field, "name");
        assert_eq!(username("a b").unwrap_err().field, "username");
        for bad in [
            "nobody",
            "@home.cern",
            "a@b",
            "a@@b.c",
            "a b@c.d",
            "a@.c",
            "a@c.",
        ] {
            let err = email(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad}");
            assert!(err.to_string().starts_with("email: "));
        }
        assert!(experiment_name(" padded ").is_err());
        assert!(experiment_name(&"e".repeat(101)).is_err());
    }
}
