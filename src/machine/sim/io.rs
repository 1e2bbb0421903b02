//! Simulated I/O: every subsystem's heartbeat ticks at 10 kHz and every
//! signal sits near its nominal value, until a fault is injected: freeze a
//! heartbeat, drop a subsystem's link, make a signal report an error, set
//! it, ramp it past a limit, or make it chatter around one. Fault controls
//! are atomics, so injecting from a test or the UI never blocks a poll.

use crate::machine::io::{Io, IoError, Signal, Subsystem, SIGNALS, SUBSYSTEMS};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MODE_NOMINAL: u8 = 0;
const MODE_FIXED: u8 = 1;
const MODE_RAMP: u8 = 2;
const MODE_CHATTER: u8 = 3;

#[derive(Default)]
struct SignalFault {
    mode: AtomicU8,
    error: AtomicBool,
    /// f64 bits: fixed value / ramp target / chatter centre.
    a: AtomicU64,
    /// f64 bits: ramp duration s / chatter amplitude.
    b: AtomicU64,
    /// f64 bits: chatter period s.
    c: AtomicU64,
    /// ns since the epoch when the mode was set.
    since: AtomicU64,
}

#[derive(Default)]
struct SubsystemFault {
    frozen: AtomicBool,
    frozen_at: AtomicU32,
    link_down: AtomicBool,
}

/// The fault switchboard of a `SimIo`; clone the `Arc` to inject.
pub struct SimIoFaults {
    epoch: Instant,
    signals: [SignalFault; SIGNALS.len()],
    subsystems: [SubsystemFault; SUBSYSTEMS.len()],
}

impl SimIoFaults {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            signals: Default::default(),
            subsystems: Default::default(),
        })
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn tick(&self) -> u32 {
        (self.epoch.elapsed().as_micros() / 100) as u32
    }

    /// The subsystem's heartbeat stops advancing (values stay readable).
    pub fn freeze_heartbeat(&self, s: Subsystem, frozen: bool) {
        let f = &self.subsystems[s.index()];
        f.frozen_at.store(self.tick(), Ordering::Release);
        f.frozen.store(frozen, Ordering::Release);
    }

    /// Every read of the subsystem fails as disconnected.
    pub fn drop_link(&self, s: Subsystem, down: bool) {
        self.subsystems[s.index()]
            .link_down
            .store(down, Ordering::Release);
    }

    /// Reads of the signal return a device error.
    pub fn signal_error(&self, s: Signal, error: bool) {
        self.signals[s.index()]
            .error
            .store(error, Ordering::Release);
    }

    fn set_mode(&self, s: Signal, mode: u8, a: f64, b: f64, c: f64) {
        let f = &self.signals[s.index()];
        f.a.store(a.to_bits(), Ordering::Relaxed);
        f.b.store(b.to_bits(), Ordering::Relaxed);
        f.c.store(c.to_bits(), Ordering::Relaxed);
        f.since.store(self.now_ns(), Ordering::Relaxed);
        f.mode.store(mode, Ordering::Release);
    }

    /// Back to its nominal value.
    pub fn restore(&self, s: Signal) {
        self.set_mode(s, MODE_NOMINAL, 0.0, 0.0, 0.0);
    }

    pub fn set_value(&self, s: Signal, v: f64) {
        self.set_mode(s, MODE_FIXED, v, 0.0, 0.0);
    }

    /// Ramps linearly from nominal to `target` over `over`, then holds.
    pub fn drift_to(&self, s: Signal, target: f64, over: Duration) {
        self.set_mode(s, MODE_RAMP, target, over.as_secs_f64(), 0.0);
    }

    /// A square wave `centre ± amplitude` with the given period.
    pub fn chatter(&self, s: Signal, centre: f64, amplitude: f64, period: Duration) {
        self.set_mode(s, MODE_CHATTER, centre, amplitude, period.as_secs_f64());
    }
}

pub struct SimIo {
    faults: Arc<SimIoFaults>,
}

impl SimIo {
    pub fn new(faults: Arc<SimIoFaults>) -> Self {
        Self { faults }
    }
}

impl Io for SimIo {
    fn read_heartbeat(&mut self, s: Subsystem) -> Result<u32, IoError> {
        let f = &self.faults.subsystems[s.index()];
        if f.link_down.load(Ordering::Acquire) {
            return Err(IoError::Disconnected);
        }
        if f.frozen.load(Ordering::Acquire) {
            return Ok(f.frozen_at.load(Ordering::Acquire));
        }
        Ok(self.faults.tick())
    }

    fn read_signal(&mut self, s: Signal) -> Result<f64, IoError> {
        let info = s.info();
        if self.faults.subsystems[info.subsystem.index()]
            .link_down
            .load(Ordering::Acquire)
        {
            return Err(IoError::Disconnected);
        }
        let f = &self.faults.signals[s.index()];
        if f.error.load(Ordering::Acquire) {
            return Err(IoError::Device(42));
        }
        let load = |a: &AtomicU64| f64::from_bits(a.load(Ordering::Relaxed));
        let t = (self
            .faults
            .now_ns()
            .saturating_sub(f.since.load(Ordering::Relaxed))) as f64
            * 1e-9;
        Ok(match f.mode.load(Ordering::Acquire) {
            MODE_FIXED => load(&f.a),
            MODE_RAMP => {
                let dur = load(&f.b).max(1e-9);
                info.nominal + (load(&f.a) - info.nominal) * (t / dur).min(1.0)
            }
            MODE_CHATTER => {
                let period = load(&f.c).max(1e-6);
                let high = (t / period).fract() < 0.5;
                load(&f.a) + if high { load(&f.b) } else { -load(&f.b) }
            }
            _ => {
                // Nominal with a little deterministic wobble.
                let span = (info.normal.1 - info.normal.0).abs() * 0.02;
                info.nominal + span * (self.faults.now_ns() as f64 * 1e-9 * 3.1).sin() * 0.5
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_change_what_is_read() {
        let faults = SimIoFaults::new();
        let mut io = SimIo::new(faults.clone());
        let h0 = io.read_heartbeat(Subsystem::Stage).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(io.read_heartbeat(Subsystem::Stage).unwrap() > h0);
        faults.freeze_heartbeat(Subsystem::Stage, true);
        let h1 = io.read_heartbeat(Subsystem::Stage).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(io.read_heartbeat(Subsystem::Stage).unwrap(), h1);
        faults.drop_link(Subsystem::Vacuum, true);
        assert_eq!(
            io.read_signal(Signal::ChuckVacuum),
            Err(IoError::Disconnected)
        );
        faults.signal_error(Signal::CameraTemperature, true);
        assert_eq!(
            io.read_signal(Signal::CameraTemperature),
            Err(IoError::Device(42))
        );
        faults.set_value(Signal::LampHours, 5000.0);
        assert_eq!(io.read_signal(Signal::LampHours), Ok(5000.0));
        faults.drift_to(
            Signal::IlluminationIntensity,
            80.0,
            Duration::from_millis(1),
        );
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(io.read_signal(Signal::IlluminationIntensity), Ok(80.0));
        let v = io.read_signal(Signal::EncoderHealth).unwrap();
        assert!((98.0..=100.0).contains(&v), "{v}");
    }
}
