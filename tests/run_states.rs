//! The run state machine's full command table: every allowed transition and
//! every refusal, with its reason.

use waferscope::run::state::{transition, CommandKind as C};
use waferscope::run::RunState as S;

#[test]
fn every_allowed_transition() {
    let allowed = [
        (S::Ready, C::Start, S::Running),
        (S::Running, C::Pause, S::Pausing),
        (S::Running, C::Stop, S::Stopping),
        (S::Running, C::Abort, S::Aborting),
        (S::Pausing, C::Resume, S::Running),
        (S::Pausing, C::Stop, S::Stopping),
        (S::Pausing, C::Abort, S::Aborting),
        (S::Paused, C::Resume, S::Running),
        (S::Paused, C::Stop, S::Stopping),
        (S::Paused, C::Abort, S::Aborting),
        (S::Suspended, C::Pause, S::Paused),
        (S::Suspended, C::Abort, S::Aborting),
        (S::Stopping, C::Abort, S::Aborting),
        (S::Complete, C::Acknowledge, S::Idle),
        (S::Aborted, C::Acknowledge, S::Idle),
        (S::Faulted, C::Acknowledge, S::FaultAcknowledged),
        (S::FaultAcknowledged, C::Reset, S::Idle),
    ];
    for (from, cmd, to) in allowed {
        assert_eq!(transition(from, cmd), Ok(to), "{from:?} + {cmd:?}");
    }
    // Everything else is refused.
    for from in S::ALL {
        for cmd in C::ALL {
            if !allowed.iter().any(|(f, c, _)| *f == from && *c == cmd) {
                assert!(
                    transition(from, cmd).is_err(),
                    "{from:?} + {cmd:?} must be refused"
                );
            }
        }
    }
}

#[test]
fn every_illegal_command_says_why() {
    let expect = |from: S, cmd: C, why: &str| {
        assert_eq!(transition(from, cmd), Err(why), "{from:?} + {cmd:?}")
    };
    for cmd in [
        C::Pause,
        C::Resume,
        C::Stop,
        C::Abort,
        C::Acknowledge,
        C::Reset,
    ] {
        let why = match cmd {
            C::Pause => "only a running or suspended run can be paused",
            C::Resume => "only a paused run can be resumed",
            C::Stop => "there is no run to stop",
            C::Abort => "there is no run to abort",
            C::Acknowledge => "there is nothing to acknowledge",
            _ => "there is no fault to reset",
        };
        expect(S::Idle, cmd, why);
        expect(S::Ready, cmd, why);
    }
    expect(
        S::Idle,
        C::Start,
        "no recipe is loaded, or the interlocks are not satisfied",
    );
    for s in [S::Running, S::Pausing, S::Paused, S::Suspended] {
        expect(s, C::Start, "a run is already in progress");
        expect(s, C::Acknowledge, "there is nothing to acknowledge");
        expect(s, C::Reset, "there is no fault to reset");
    }
    expect(S::Running, C::Resume, "only a paused run can be resumed");
    expect(
        S::Pausing,
        C::Pause,
        "only a running or suspended run can be paused",
    );
    expect(
        S::Paused,
        C::Pause,
        "only a running or suspended run can be paused",
    );
    expect(
        S::Suspended,
        C::Resume,
        "a suspended run resumes by itself once the cause has been healthy; Pause takes it over",
    );
    expect(
        S::Suspended,
        C::Stop,
        "a suspended run cannot stop cleanly; Pause it first, or Abort",
    );
    for cmd in [
        C::Start,
        C::Pause,
        C::Resume,
        C::Stop,
        C::Acknowledge,
        C::Reset,
    ] {
        expect(
            S::Stopping,
            cmd,
            "the run is stopping: only Abort is possible",
        );
    }
    for cmd in C::ALL {
        expect(S::Aborting, cmd, "the run is aborting");
    }
    for s in [S::Complete, S::Aborted] {
        for cmd in [C::Start, C::Pause, C::Resume, C::Stop, C::Abort, C::Reset] {
            expect(s, cmd, "the run has ended: acknowledge its summary first");
        }
    }
    for cmd in [C::Start, C::Pause, C::Resume, C::Stop, C::Abort] {
        expect(
            S::Faulted,
            cmd,
            "the tool is faulted: acknowledge and reset first",
        );
    }
    expect(
        S::Faulted,
        C::Reset,
        "acknowledge the fault first, then reset",
    );
    for cmd in [
        C::Start,
        C::Pause,
        C::Resume,
        C::Stop,
        C::Abort,
        C::Acknowledge,
    ] {
        expect(
            S::FaultAcknowledged,
            cmd,
            "the fault is acknowledged: reset the tool to go back to idle",
        );
    }
}

/// HMI.md: Faulted needs Acknowledge + Reset; neither alone returns to Idle.
#[test]
fn a_fault_needs_acknowledge_then_reset() {
    assert_ne!(transition(S::Faulted, C::Acknowledge), Ok(S::Idle));
    assert_ne!(transition(S::Faulted, C::Reset), Ok(S::Idle));
    let acked = transition(S::Faulted, C::Acknowledge).unwrap();
    assert_eq!(transition(acked, C::Reset), Ok(S::Idle));
}
