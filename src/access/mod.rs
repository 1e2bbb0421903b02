//! Who may do what: users and their roles, sign-in, and the audit trail
//! every command, sign-in and recipe change is written to.

pub mod role;

pub use role::{Action, Policy, Role};
