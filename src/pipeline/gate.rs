//! The die gate between the run engine and the acquisition thread: the
//! engine closes it to make the tool safe (suspension, Stop, Abort, fault),
//! and acquisition images a die only while it is open.
//!
//! Closing is a handshake, so "nothing is imaged after the trip" holds
//! exactly: acquisition marks itself busy *before* it looks at the gate, and
//! the engine closes the gate *before* it looks at busy (all `SeqCst`, the
//! classic store-then-load pairing). Either acquisition sees the gate
//! closed and images nothing, or the engine sees the die in hand and waits
//! for it to end; once `halt` has been followed by `busy() == false`, no
//! stage move or capture is running and none will start.
//!
//! Reopening goes through the trigger queue (`Trigger::Resume`), so every
//! die queued before the halt is cancelled in order, and acquisition checks
//! the stage position before it reopens.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct DieGate {
    halted: AtomicBool,
    busy: AtomicBool,
    /// The die acquisition took in hand last (valid while `busy`).
    in_hand: AtomicU32,
    resumes_requested: AtomicU64,
    resumes_done: AtomicU64,
    /// The first fault a pipeline thread found that the run must end on
    /// (written once, off the per-frame path).
    fault: Mutex<Option<String>>,
}

impl DieGate {
    /// Closes the gate: queued dies are cancelled, not imaged.
    pub fn halt(&self) {
        self.halted.store(true, SeqCst);
    }

    pub fn is_halted(&self) -> bool {
        self.halted.load(SeqCst)
    }

    /// A die (stage move, buffer wait, capture) is in hand.
    pub fn busy(&self) -> bool {
        self.busy.load(SeqCst)
    }

    /// The die in hand, if acquisition is on one.
    pub fn die_in_hand(&self) -> Option<u32> {
        let die = self.in_hand.load(SeqCst);
        self.busy().then_some(die)
    }

    /// Acquisition, before a die: `false` if the gate is closed.
    pub(crate) fn enter(&self, die: u32) -> bool {
        self.in_hand.store(die, SeqCst);
        self.busy.store(true, SeqCst);
        if self.halted.load(SeqCst) {
            self.busy.store(false, SeqCst);
            return false;
        }
        true
    }

    /// Acquisition, after a die.
    pub(crate) fn leave(&self) {
        self.busy.store(false, SeqCst);
    }

    /// The engine asked to reopen (a `Trigger::Resume` is queued).
    pub(crate) fn resume_requested(&self) {
        self.resumes_requested.fetch_add(1, SeqCst);
    }

    /// Acquisition processed a `Trigger::Resume`: reopens the gate, or
    /// (`fault` given) records why it stays closed.
    pub(crate) fn resume_done(&self, fault: Option<String>) {
        match fault {
            Some(why) => self.set_fault(why),
            None => self.halted.store(false, SeqCst),
        }
        self.resumes_done.fetch_add(1, SeqCst);
    }

    /// Every requested resume has been processed: the cancellations of the
    /// dies queued before it have all been sent.
    pub fn resume_settled(&self) -> bool {
        self.resumes_done.load(SeqCst) >= self.resumes_requested.load(SeqCst)
    }

    /// Records a fault (the first one wins) and closes the gate.
    pub fn set_fault(&self, why: String) {
        self.halt();
        let mut f = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            tracing::error!("pipeline fault: {why}");
            *f = Some(why);
        }
    }

    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_admits_no_die_and_reopens_only_after_resume() {
        let g = DieGate::default();
        assert!(g.enter(1));
        assert_eq!(g.die_in_hand(), Some(1));
        g.leave();
        assert_eq!(g.die_in_hand(), None);
        g.halt();
        assert!(!g.enter(2), "closed");
        assert!(!g.busy());
        g.resume_requested();
        assert!(!g.resume_settled());
        g.resume_done(None);
        assert!(g.resume_settled());
        assert!(g.enter(3));
        g.leave();
        g.resume_requested();
        g.resume_done(Some("stage moved".into()));
        assert!(!g.enter(4), "a failed resume keeps it closed");
        assert_eq!(g.fault().as_deref(), Some("stage moved"));
    }
}
