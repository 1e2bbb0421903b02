//! The station's guarded command surface: what a person or the host asks
//! of the station goes through these methods, each checked against the
//! actor's role and written to the audit trail with its outcome. The
//! window calls nothing else to change the station; the headless commands
//! (`run`, `serve`) act as the console owner and drive the engine directly.

use super::Station;
use crate::access::{Action, Actor};
use crate::machine::Subsystem;
use crate::monitor::alarm_engine::{AlarmCommand, OperatorName, ShelveReason};
use crate::run::recipe::ValidRecipe;
use crate::run::state::{CommandKind, RunCommand};
use crate::store::record::RunIdentity;
use std::path::Path;
use std::time::Duration;

type Answer = flume::Receiver<Result<(), String>>;

/// An answer that is already known (a refusal before anything was sent).
fn answered(r: Result<(), String>) -> Answer {
    let (tx, rx) = flume::bounded(1);
    // The receiver is in hand: this send cannot fail.
    tx.send(r).ok();
    rx
}

/// What a simulator control does (maintenance's fault injection).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimulatorFault {
    FreezeHeartbeat(Subsystem, bool),
    VacuumLoss(bool),
}

/// The role a run command needs: reset is a fault's, acknowledge
/// everyone's, the rest running wafers.
pub fn action_for(cmd: &RunCommand) -> Action {
    match cmd.kind() {
        CommandKind::Reset => Action::ResetFault,
        CommandKind::Acknowledge => Action::Acknowledge,
        _ => Action::RunControl,
    }
}

impl Station {
    /// The asynchronous twin of [`crate::access::Guard::guarded`]: checks
    /// `actor`, then `send`s the command, and audits the answer (the
    /// engine's own refusal by the run state, say) when it arrives.
    fn guarded_answer(
        &self,
        actor: &Actor,
        action: Action,
        what: String,
        params: String,
        send: impl FnOnce() -> Answer,
    ) -> Answer {
        let actor = match self.guard.authorize(actor, action, &what, &params) {
            Ok(now) => now,
            Err(why) => return answered(Err(why)),
        };
        let rx = send();
        let (tx, out) = flume::bounded(1);
        let guard = self.guard.clone();
        self.runtime().spawn(async move {
            let outcome = rx
                .recv_async()
                .await
                .unwrap_or_else(|_| Err("the run engine has stopped".into()));
            guard.record(&actor, &what, &params, &outcome);
            // The asker may have gone (a window closed): the answer is in
            // the audit trail either way.
            tx.send(outcome).ok();
        });
        out
    }

    pub fn run_command(&self, actor: &Actor, cmd: RunCommand) -> Answer {
        let what = format!("run_{:?}", cmd.kind()).to_lowercase();
        let params = match &cmd {
            RunCommand::Abort { reason } => format!("reason={reason}"),
            _ => String::new(),
        };
        self.guarded_answer(actor, action_for(&cmd), what, params, || {
            self.engine.command_nowait(cmd)
        })
    }

    pub fn load_recipe(&self, actor: &Actor, recipe: ValidRecipe, identity: RunIdentity) -> Answer {
        let params = format!(
            "recipe={} lot={} wafer={} slot={}",
            recipe.recipe.id, identity.lot, identity.wafer, identity.slot
        );
        self.guarded_answer(
            actor,
            Action::LoadRecipe,
            "load_recipe".into(),
            params,
            || self.engine.load_nowait(recipe, identity),
        )
    }

    pub fn teach_golden(&self, actor: &Actor, dies: usize) -> Answer {
        let params = format!("dies={dies}");
        self.guarded_answer(
            actor,
            Action::TeachGolden,
            "teach_golden".into(),
            params,
            || self.engine.teach_nowait(dies),
        )
    }

    pub fn acknowledge_alarm(&self, actor: &Actor, alid: Option<u32>) -> Result<(), String> {
        let operator = OperatorName::new(&actor.user);
        let (cmd, params) = match alid {
            Some(alid) => (
                AlarmCommand::Acknowledge { alid, operator },
                format!("alid={alid}"),
            ),
            None => (AlarmCommand::AcknowledgeAll { operator }, "all".into()),
        };
        self.guard.guarded(
            actor,
            Action::Acknowledge,
            "alarm_acknowledge",
            &params,
            || self.alarm_command(cmd),
        )
    }

    /// Shelving needs a reason and a duration within the alarm's maximum
    /// (refused, not clamped: the person asked for something else).
    pub fn shelve_alarm(
        &self,
        actor: &Actor,
        alid: u32,
        duration: Duration,
        reason: &str,
    ) -> Result<(), String> {
        let reason = reason.trim();
        let params = format!(
            "alid={alid} minutes={} reason={reason}",
            duration.as_secs() / 60
        );
        self.guard
            .guarded(actor, Action::Shelve, "alarm_shelve", &params, || {
                let def = self
                    .alarm_defs
                    .iter()
                    .find(|d| d.alid == alid)
                    .ok_or_else(|| format!("no alarm {alid}"))?;
                if reason.is_empty() {
                    return Err("a shelving needs a reason".into());
                }
                let max = Duration::from_nanos(def.max_shelve_ns);
                if duration.is_zero() || duration > max {
                    return Err(format!(
                        "alarm {alid} may be shelved for up to {} min",
                        max.as_secs() / 60
                    ));
                }
                self.alarm_command(AlarmCommand::Shelve {
                    alid,
                    duration_ns: duration.as_nanos() as u64,
                    operator: OperatorName::new(&actor.user),
                    reason: ShelveReason::new(reason),
                })
            })
    }

    pub fn unshelve_alarm(&self, actor: &Actor, alid: u32) -> Result<(), String> {
        self.guard.guarded(
            actor,
            Action::Shelve,
            "alarm_unshelve",
            &format!("alid={alid}"),
            || {
                self.alarm_command(AlarmCommand::Unshelve {
                    alid,
                    operator: OperatorName::new(&actor.user),
                })
            },
        )
    }

    fn alarm_command(&self, cmd: AlarmCommand) -> Result<(), String> {
        if self.alarms.command(cmd) {
            Ok(())
        } else {
            Err("the alarm evaluator did not take the command (see the log)".into())
        }
    }

    /// The Simulator panel's fault injection (simulated I/O only).
    pub fn simulator_fault(&self, actor: &Actor, fault: SimulatorFault) -> Result<(), String> {
        let params = format!("{fault:?}");
        self.guard.guarded(
            actor,
            Action::SimulatorFaults,
            "simulator_fault",
            &params,
            || {
                let faults = self
                    .io_faults
                    .as_ref()
                    .ok_or("the I/O is not simulated: there is nothing to inject")?;
                match fault {
                    SimulatorFault::FreezeHeartbeat(s, on) => faults.freeze_heartbeat(s, on),
                    SimulatorFault::VacuumLoss(true) => {
                        faults.set_value(crate::machine::Signal::ChuckVacuum, 60.0)
                    }
                    SimulatorFault::VacuumLoss(false) => {
                        faults.restore(crate::machine::Signal::ChuckVacuum)
                    }
                }
                Ok(())
            },
        )
    }

    /// An engineer's recipe edit: the text must be a valid recipe (checked
    /// as a run would load it) before it replaces the file; the trail
    /// keeps the old and new contents' hashes.
    ///
    /// `opened`: the file's text when the editor read it. A file changed
    /// since (a host download, another station) is not overwritten: the
    /// edit is refused, to be made again on the new text.
    pub fn save_recipe(
        &self,
        actor: &Actor,
        path: &Path,
        opened: &str,
        text: &str,
    ) -> Result<(), String> {
        let old = std::fs::read(path).ok();
        let params = format!(
            "file={} old_sha256={} new_sha256={}",
            path.display(),
            old.as_deref()
                .map_or_else(|| "none".into(), crate::access::sha256_hex),
            crate::access::sha256_hex(text.as_bytes())
        );
        self.guard
            .guarded(actor, Action::EditRecipe, "recipe_edit", &params, || {
                if old.as_deref() != Some(opened.as_bytes()) {
                    return Err(format!(
                        "{} changed since it was opened (a host download, or another editor): open it again and redo the edit",
                        path.display()
                    ));
                }
                let dir = path.parent().unwrap_or(Path::new(""));
                crate::run::recipe::parse_in(text, dir)
                    .map_err(|e| format!("{}: {e:#}", path.display()))?;
                crate::store::export::write_atomically(path, text).map_err(|e| format!("{e:#}"))
            })
    }

    pub fn load_carrier(&self, actor: &Actor) -> Answer {
        self.guarded_answer(
            actor,
            Action::RunControl,
            "carrier_load".into(),
            String::new(),
            || self.carrier.load_carrier_nowait(),
        )
    }

    pub fn start_lot(&self, actor: &Actor, plan: crate::run::lot::LotPlan) -> Result<(), String> {
        let params = format!(
            "lot={} recipe={} slots={:?}",
            plan.lot, plan.recipe.recipe.id, plan.slots
        );
        self.guard
            .guarded(actor, Action::RunControl, "lot_start", &params, || {
                self.carrier.start_lot(plan).map(|_| ())
            })
    }

    pub fn stop_lot_after_wafer(&self, actor: &Actor) -> Result<(), String> {
        self.guard.guarded(
            actor,
            Action::RunControl,
            "lot_stop_after_wafer",
            "",
            || {
                self.carrier.stop_after_wafer();
                Ok(())
            },
        )
    }

    pub fn abort_lot(&self, actor: &Actor) -> Result<(), String> {
        self.guard
            .guarded(actor, Action::RunControl, "lot_abort", "", || {
                self.carrier.abort_lot();
                Ok(())
            })
    }
}
