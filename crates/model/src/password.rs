//! The password policy: long enough, not trivially guessable (zxcvbn score ≥ 3), and not
//! built from the account's own name, username or email. The error says what is wrong and
//! how to fix it.

use zxcvbn::{Score, zxcvbn};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted (hashing cost grows with length).
pub const MAX_LENGTH: usize = 256;

/// The policy in one sentence, for help texts and the UI.
pub const POLICY: &str = "at least 12 characters, at most 256, and hard to guess \
    (for example four unrelated words, or a random string from a password manager); \
    it must not contain your name, username or email";

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_LENGTH`] characters.
    #[error("password is too short: {0} characters, at least {MIN_LENGTH} are required")]
    TooShort(usize),
    /// More than [`MAX_LENGTH`] characters.
    #[error("password is too long: at most {MAX_LENGTH} characters are allowed")]
    TooLong,
    /// Contains the user's own name, username or email.
    #[error("password must not contain your name, username or email")]
    ContainsUserData,
    /// Too easy to guess; carries zxcvbn's advice.
    #[error("password is too easy to guess{0}")]
    TooWeak(String),
}

/// Checks `password` against the policy. `user_inputs` are the account's name, username and
/// email, which the password must not contain.
pub fn check(password: &str, user_inputs: &[&str]) -> Result<(), PasswordPolicyError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordPolicyError::TooShort(length));
    }
    if length > MAX_LENGTH {
        return Err(PasswordPolicyError::TooLong);
    }
    let lowered = password.to_lowercase();
    let contains_user_data = user_inputs
        .iter()
        .flat_map(|input| {
            // An email's local part and each word of a name count on their own too.
            let input = input.to_lowercase();
            let mut parts: Vec<String> = input
                .split(|c: char| c == '@' || c.is_whitespace())
                .map(str::to_owned)
                .collect();
            parts.push(input);
            parts
        })
        .any(|part| part.chars().count() >= 4 && lowered.contains(&part));
    if contains_user_data {
        return Err(PasswordPolicyError::ContainsUserData);
    }
    let estimate = zxcvbn(password, user_inputs);
    if estimate.score() < Score::Three {
        let advice = estimate
            .feedback()
            .map(|feedback| {
                let mut parts: Vec<String> = Vec::new();
                if let Some(warning) = feedback.warning() {
                    parts.push(warning.to_string());
                }
                parts.extend(feedback.suggestions().iter().map(ToString::to_string));
                parts
            })
            .unwrap_or_default();
        let advice = if advice.is_empty() {
            String::new()
        } else {
            format!(": {}", advice.join(" "))
        };
        return Err(PasswordPolicyError::TooWeak(advice));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_strong_passwords() {
        check("correct horse battery staple", &[]).unwrap();
        check("Vq8#zL2!pW9@xK4m", &["aalcorn"]).unwrap();
    }

    #[test]
    fn says_what_is_wrong() {
        assert_eq!(check("short1!", &[]), Err(PasswordPolicyError::TooShort(7)));
        assert_eq!(
            check(&"a".repeat(300), &[]),
            Err(PasswordPolicyError::TooLong)
        );
        assert_eq!(
            check("xx-aalcorn-2026-zz", &["aalcorn", "Allan Alcorn"]),
            Err(PasswordPolicyError::ContainsUserData)
        );
        assert_eq!(
            check("ALCORN-is-my-name-99", &["Allan Alcorn"]),
            Err(PasswordPolicyError::ContainsUserData)
        );
        let weak = check("password1234", &[]).unwrap_err();
        assert!(matches!(weak, PasswordPolicyError::TooWeak(_)));
        assert!(
            weak.to_string()
                .starts_with("password is too easy to guess")
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(check("ééééé", &[]), Err(PasswordPolicyError::TooShort(5)));
    }
}
