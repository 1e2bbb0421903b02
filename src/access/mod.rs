//! Who may do what: users and their roles, sign-in, and the audit trail
//! every command, sign-in and recipe change is written to.

pub mod audit;
pub mod audit_writer;
pub mod guard;
pub mod password;
pub mod role;
pub mod users;
pub mod utc_time;

pub use audit::{AuditEntry, AuditLog, BrokenEntry, NewEntry, Source, VerifyReport};
pub use guard::{AccessConfig, Actor, Guard};
pub use password::{check_password_rules, hash_password, verify_password};
pub use role::{Action, Policy, Role};
pub use users::{LockoutPolicy, SignInError, SignedIn, UserRow, Users};

/// Hex SHA-256 of `bytes` (a recipe's contents in the audit trail).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
