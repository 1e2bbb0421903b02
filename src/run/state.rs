//! Run states (SEMI E30 / Bluesky RunEngine) and which operator command is
//! allowed in which state, with the reason shown when it is not.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum RunState {
    #[default]
    Idle,
    Ready,
    Running,
    Pausing,
    Paused,
    Suspended,
    Stopping,
    Aborting,
    Complete,
    Aborted,
    Faulted,
    /// A fault the operator has acknowledged; Reset returns to Idle.
    FaultAcknowledged,
}

impl RunState {
    pub const ALL: [RunState; 12] = [
        Self::Idle,
        Self::Ready,
        Self::Running,
        Self::Pausing,
        Self::Paused,
        Self::Suspended,
        Self::Stopping,
        Self::Aborting,
        Self::Complete,
        Self::Aborted,
        Self::Faulted,
        Self::FaultAcknowledged,
    ];

    /// As the status strip shows it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "IDLE",
            Self::Ready => "READY",
            Self::Running => "RUNNING",
            Self::Pausing => "PAUSING",
            Self::Paused => "PAUSED",
            Self::Suspended => "SUSPENDED",
            Self::Stopping => "STOPPING",
            Self::Aborting => "ABORTING",
            Self::Complete => "COMPLETE",
            Self::Aborted => "ABORTED",
            Self::Faulted => "FAULTED",
            Self::FaultAcknowledged => "FAULTED, ACKNOWLEDGED",
        }
    }

    /// A run has ended and its end is not yet acknowledged.
    pub fn ended(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Aborted | Self::Faulted | Self::FaultAcknowledged
        )
    }

    /// A wafer is being worked on (the run record is open).
    pub fn in_run(self) -> bool {
        matches!(
            self,
            Self::Running
                | Self::Pausing
                | Self::Paused
                | Self::Suspended
                | Self::Stopping
                | Self::Aborting
        )
    }
}

/// What the operator can ask of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    Start,
    /// Pause at the next die boundary.
    Pause,
    Resume,
    /// Finish the die in hand, keep the data, end as "stopped".
    Stop,
    /// End now, keep every result, mark the rest not inspected.
    Abort {
        reason: String,
    },
    /// Acknowledge the end of a run (Complete, Aborted) or a fault.
    Acknowledge,
    /// Clear an acknowledged fault.
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Start,
    Pause,
    Resume,
    Stop,
    Abort,
    Acknowledge,
    Reset,
}

impl CommandKind {
    pub const ALL: [CommandKind; 7] = [
        Self::Start,
        Self::Pause,
        Self::Resume,
        Self::Stop,
        Self::Abort,
        Self::Acknowledge,
        Self::Reset,
    ];
}

impl RunCommand {
    pub fn kind(&self) -> CommandKind {
        match self {
            Self::Start => CommandKind::Start,
            Self::Pause => CommandKind::Pause,
            Self::Resume => CommandKind::Resume,
            Self::Stop => CommandKind::Stop,
            Self::Abort { .. } => CommandKind::Abort,
            Self::Acknowledge => CommandKind::Acknowledge,
            Self::Reset => CommandKind::Reset,
        }
    }
}

/// The state a command leads to from `state`, or why it is refused there.
pub fn transition(state: RunState, cmd: CommandKind) -> Result<RunState, &'static str> {
    use CommandKind as C;
    use RunState as S;
    match (state, cmd) {
        (S::Ready, C::Start) => Ok(S::Running),
        (S::Idle, C::Start) => Err("no recipe is loaded, or the interlocks are not satisfied"),
        (S::Running, C::Pause) => Ok(S::Pausing),
        (S::Suspended, C::Pause) => Ok(S::Paused),
        (S::Pausing | S::Paused, C::Resume) => Ok(S::Running),
        (S::Suspended, C::Resume) => Err("a suspended run resumes by itself once the cause has been healthy; Pause takes it over"),
        (S::Running | S::Pausing | S::Paused, C::Stop) => Ok(S::Stopping),
        (S::Suspended, C::Stop) => Err("a suspended run cannot stop cleanly; Pause it first, or Abort"),
        (S::Running | S::Pausing | S::Paused | S::Suspended | S::Stopping, C::Abort) => Ok(S::Aborting),
        (S::Complete | S::Aborted, C::Acknowledge) => Ok(S::Idle),
        // HMI.md: a fault needs both, in this order: the operator first says
        // they have seen it, then clears it.
        (S::Faulted, C::Acknowledge) => Ok(S::FaultAcknowledged),
        (S::Faulted, C::Reset) => Err("acknowledge the fault first, then reset"),
        (S::FaultAcknowledged, C::Reset) => Ok(S::Idle),
        (S::FaultAcknowledged, _) => Err("the fault is acknowledged: reset the tool to go back to idle"),
        (S::Stopping, _) => Err("the run is stopping: only Abort is possible"),
        (S::Aborting, _) => Err("the run is aborting"),
        (S::Faulted, _) => Err("the tool is faulted: acknowledge and reset first"),
        (S::Complete | S::Aborted, _) => Err("the run has ended: acknowledge its summary first"),
        (_, C::Start) => Err("a run is already in progress"),
        (_, C::Pause) => Err("only a running or suspended run can be paused"),
        (_, C::Resume) => Err("only a paused run can be resumed"),
        (_, C::Stop) => Err("there is no run to stop"),
        (_, C::Abort) => Err("there is no run to abort"),
        (_, C::Acknowledge) => Err("there is nothing to acknowledge"),
        (_, C::Reset) => Err("there is no fault to reset"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_command_has_an_answer_and_refusals_explain() {
        for s in RunState::ALL {
            for c in CommandKind::ALL {
                match transition(s, c) {
                    Ok(next) => assert_ne!(next, s, "{s:?} {c:?} must change state"),
                    Err(why) => assert!(why.len() > 10),
                }
            }
        }
    }
}
