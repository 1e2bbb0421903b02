//! Roles and what each may do. SEMI E95 asks equipment software for access
//! control; the usual split in a fab: operators run wafers and acknowledge;
//! engineers own recipes, golden dies and shelving; maintenance owns faults,
//! devices and the simulator; administrators own users (and may do all).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Operator,
    Engineer,
    Maintenance,
    Administrator,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Operator,
        Role::Engineer,
        Role::Maintenance,
        Role::Administrator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Engineer => "engineer",
            Role::Maintenance => "maintenance",
            Role::Administrator => "administrator",
        }
    }

    /// "an operator", "an engineer": for refusals read by a person.
    fn with_article(self) -> &'static str {
        match self {
            Role::Operator => "an operator",
            Role::Engineer => "an engineer",
            Role::Maintenance => "maintenance",
            Role::Administrator => "an administrator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("no role {s:?}: operator, engineer, maintenance or administrator")
            })
    }
}

/// Everything a person (or the host) can ask the station to do that a
/// role may be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Start, pause, resume, stop and abort a run; carriers and lots.
    RunControl,
    /// Acknowledge alarms and the end of a run.
    Acknowledge,
    /// Shelve and unshelve alarms.
    Shelve,
    /// Reset a faulted tool to idle.
    ResetFault,
    /// Teach a recipe's golden die.
    TeachGolden,
    /// Load a recipe for the next wafer.
    LoadRecipe,
    /// Change a recipe file.
    EditRecipe,
    /// Change the machine configuration (drivers, devices).
    MachineConfig,
    /// Inject faults from the Simulator panel.
    SimulatorFaults,
    /// Add, disable and re-password users.
    UserAdmin,
    /// The host link's ON-LINE/OFF-LINE and LOCAL/REMOTE switches.
    HostOnlineOffline,
    /// Export recorded results (KLARF, CSV).
    Export,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::RunControl,
        Action::Acknowledge,
        Action::Shelve,
        Action::ResetFault,
        Action::TeachGolden,
        Action::LoadRecipe,
        Action::EditRecipe,
        Action::MachineConfig,
        Action::SimulatorFaults,
        Action::UserAdmin,
        Action::HostOnlineOffline,
        Action::Export,
    ];

    /// The name stored in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::RunControl => "run_control",
            Action::Acknowledge => "acknowledge",
            Action::Shelve => "shelve",
            Action::ResetFault => "reset_fault",
            Action::TeachGolden => "teach_golden",
            Action::LoadRecipe => "load_recipe",
            Action::EditRecipe => "edit_recipe",
            Action::MachineConfig => "machine_config",
            Action::SimulatorFaults => "simulator_faults",
            Action::UserAdmin => "user_admin",
            Action::HostOnlineOffline => "host_online_offline",
            Action::Export => "export",
        }
    }

    /// What the action is, as a refusal says it ("… may not shelve alarms").
    pub fn describe(self) -> &'static str {
        match self {
            Action::RunControl => "run wafers",
            Action::Acknowledge => "acknowledge",
            Action::Shelve => "shelve alarms",
            Action::ResetFault => "reset a fault",
            Action::TeachGolden => "teach a golden die",
            Action::LoadRecipe => "load recipes",
            Action::EditRecipe => "edit recipes",
            Action::MachineConfig => "change the machine configuration",
            Action::SimulatorFaults => "inject simulator faults",
            Action::UserAdmin => "administer users",
            Action::HostOnlineOffline => "switch the host link",
            Action::Export => "export results",
        }
    }
}

/// Which roles may do what. Administrators may do everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `allowed[action][role]`, indexed by position in `Action::ALL` and
    /// `Role::ALL`.
    allowed: [[bool; 4]; Action::ALL.len()],
}

impl Default for Policy {
    fn default() -> Self {
        use Role::*;
        let mut p = Policy {
            allowed: [[false; 4]; Action::ALL.len()],
        };
        let everyone: &[Role] = &[Operator, Engineer, Maintenance];
        for a in Action::ALL {
            let roles: &[Role] = match a {
                Action::RunControl | Action::Acknowledge | Action::LoadRecipe | Action::Export => {
                    everyone
                }
                Action::Shelve | Action::TeachGolden | Action::EditRecipe => &[Engineer],
                Action::ResetFault => &[Engineer, Maintenance],
                Action::MachineConfig | Action::SimulatorFaults => &[Maintenance],
                Action::HostOnlineOffline => &[Engineer, Maintenance],
                Action::UserAdmin => &[],
            };
            for r in roles {
                p.set(a, *r, true);
            }
            p.set(a, Administrator, true);
        }
        p
    }
}

impl Policy {
    /// Exhaustive: a new action or role must be given its place here (a
    /// lookup that fell back to a default would fail open).
    fn index(a: Action, r: Role) -> (usize, usize) {
        let action = match a {
            Action::RunControl => 0,
            Action::Acknowledge => 1,
            Action::Shelve => 2,
            Action::ResetFault => 3,
            Action::TeachGolden => 4,
            Action::LoadRecipe => 5,
            Action::EditRecipe => 6,
            Action::MachineConfig => 7,
            Action::SimulatorFaults => 8,
            Action::UserAdmin => 9,
            Action::HostOnlineOffline => 10,
            Action::Export => 11,
        };
        let role = match r {
            Role::Operator => 0,
            Role::Engineer => 1,
            Role::Maintenance => 2,
            Role::Administrator => 3,
        };
        (action, role)
    }

    pub fn set(&mut self, a: Action, r: Role, allowed: bool) {
        let (i, j) = Self::index(a, r);
        self.allowed[i][j] = allowed;
    }

    pub fn allows(&self, r: Role, a: Action) -> bool {
        let (i, j) = Self::index(a, r);
        self.allowed[i][j]
    }

    /// `Err` says who may: "an operator may not shelve alarms (engineer,
    /// administrator may)".
    pub fn check(&self, r: Role, a: Action) -> Result<(), String> {
        if self.allows(r, a) {
            return Ok(());
        }
        let may: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|x| self.allows(*x, a))
            .map(Role::as_str)
            .collect();
        Err(format!(
            "{} may not {} ({} may)",
            r.with_article(),
            a.describe(),
            may.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_split() {
        let p = Policy::default();
        assert!(p.allows(Role::Operator, Action::RunControl));
        assert!(p.allows(Role::Operator, Action::Acknowledge));
        for a in [Action::Shelve, Action::ResetFault, Action::EditRecipe] {
            assert!(!p.allows(Role::Operator, a), "{a:?}");
            assert!(p.allows(Role::Engineer, a), "{a:?}");
        }
        assert!(!p.allows(Role::Engineer, Action::SimulatorFaults));
        assert!(p.allows(Role::Maintenance, Action::SimulatorFaults));
        assert!(!p.allows(Role::Maintenance, Action::UserAdmin));
        for a in Action::ALL {
            assert!(p.allows(Role::Administrator, a), "{a:?}");
        }
        assert_eq!(
            p.check(Role::Operator, Action::Shelve).unwrap_err(),
            "an operator may not shelve alarms (engineer, administrator may)"
        );
    }

    #[test]
    fn every_action_and_role_has_its_own_place() {
        for (i, a) in Action::ALL.into_iter().enumerate() {
            for (j, r) in Role::ALL.into_iter().enumerate() {
                assert_eq!(Policy::index(a, r), (i, j), "{a:?} {r:?}");
            }
        }
    }

    #[test]
    fn roles_parse_by_name() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("Engineer".parse::<Role>().is_ok());
        assert!("boss".parse::<Role>().unwrap_err().contains("operator"));
    }
}
