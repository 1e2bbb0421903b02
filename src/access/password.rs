//! Passwords: hashed with Argon2id (the OWASP recommendation for stored
//! passwords) into a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`)
//! that carries its own salt and parameters, so a later change of the
//! parameters still verifies the hashes already stored.

use anyhow::{anyhow, Result};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The shortest password accepted: a station password is typed at a shared
/// console, so long passphrases are not realistic, but fewer than 8
/// characters fall to guessing even with the sign-in lockout.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Hashes `password` with Argon2id and a fresh random salt; returns the PHC
/// string to store.
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        // The error never contains the password (it is about parameters or
        // the salt), so it may be shown.
        .map_err(|e| anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored PHC string `phc`. A stored string
/// that is not a valid hash matches nothing (and never panics): a damaged
/// user row must lock its user out, not let anyone in.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// `Err` says, in an operator's words, why `password` may not be used.
pub fn check_password_rules(password: &str) -> Result<(), String> {
    if password.trim().is_empty() {
        return Err("the password is empty or only spaces".into());
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        let has = match chars {
            1 => "1 character".to_owned(),
            n => format!("{n} characters"),
        };
        return Err(format!(
            "the password is too short: {has}, at least {MIN_PASSWORD_CHARS} are needed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let phc = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct hors", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn the_hash_is_an_argon2id_phc_string_with_its_own_salt() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(!a.contains("correct horse"));
        assert_ne!(a, b, "a fresh salt each time");
    }

    #[test]
    fn a_malformed_stored_hash_verifies_false() {
        for bad in [
            "",
            "x",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$",
            "$argon2id$v=19$m=19456,t=2,p=1$!!!$!!!",
            "$md5$abc",
            "correct horse",
        ] {
            assert!(!verify_password("correct horse", bad), "{bad:?}");
        }
    }

    #[test]
    fn short_or_blank_passwords_are_refused_saying_why() {
        assert!(check_password_rules("eight ch").is_ok());
        assert!(check_password_rules("        ")
            .unwrap_err()
            .contains("empty"));
        assert!(check_password_rules("").unwrap_err().contains("empty"));
        assert_eq!(
            check_password_rules("seven c").unwrap_err(),
            "the password is too short: 7 characters, at least 8 are needed"
        );
        assert!(check_password_rules("x")
            .unwrap_err()
            .contains("too short: 1 character,"));
        // Characters, not bytes.
        assert!(check_password_rules("ééééééé").is_err());
    }
}
