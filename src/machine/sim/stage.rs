//! The simulated XY stage: trapezoid-free constant-speed moves plus a
//! settle time, scaled by `time_scale` (0 = instantaneous, for benchmarks).

use crate::machine::{SimFaults, StageError};
use std::sync::Arc;
use std::time::Duration;

pub struct SimStage {
    position_um: (f64, f64),
    speed_um_per_s: f64,
    settle: Duration,
    time_scale: f64,
    faults: Arc<SimFaults>,
}

impl SimStage {
    pub fn new(
        speed_mm_per_s: f64,
        settle: Duration,
        time_scale: f64,
        faults: Arc<SimFaults>,
    ) -> Self {
        Self {
            position_um: (0.0, 0.0),
            speed_um_per_s: speed_mm_per_s * 1000.0,
            settle,
            time_scale,
            faults,
        }
    }

    /// The encoder reading: where the last move left the stage, plus any
    /// bump it suffered since (an injected fault).
    pub fn position_um(&mut self) -> (f64, f64) {
        let (dx, dy) = self.faults.take_stage_bump();
        self.position_um.0 += dx;
        self.position_um.1 += dy;
        self.position_um
    }

    /// How long a move to (x, y) takes, settle included, unscaled.
    pub fn move_time(&self, x_um: f64, y_um: f64) -> Duration {
        let d = (x_um - self.position_um.0).hypot(y_um - self.position_um.1);
        Duration::from_secs_f64(d / self.speed_um_per_s) + self.settle
    }

    /// Moves and settles (sleeping the scaled move time). A following error
    /// leaves the stage where it was.
    pub fn move_to(&mut self, x_um: f64, y_um: f64) -> Result<Duration, StageError> {
        self.faults.stage_result()?;
        let t = self.move_time(x_um, y_um);
        if self.time_scale > 0.0 {
            std::thread::sleep(t.mul_f64(self.time_scale));
        }
        self.position_um = (x_um, y_um);
        Ok(t)
    }
}

impl crate::machine::Stage for SimStage {
    fn move_to(&mut self, x_um: f64, y_um: f64) -> Result<Duration, StageError> {
        SimStage::move_to(self, x_um, y_um)
    }
    fn position_um(&mut self) -> (f64, f64) {
        SimStage::position_um(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_take_distance_over_speed_plus_settle_and_faults_hold_position() {
        let faults = Arc::new(SimFaults::default());
        let mut s = SimStage::new(100.0, Duration::from_millis(5), 0.0, faults.clone());
        let t = s.move_to(3000.0, 4000.0).unwrap();
        assert_eq!(t, Duration::from_millis(55));
        faults.following_error_next(1);
        assert!(s.move_to(0.0, 0.0).is_err());
        assert_eq!(s.position_um(), (3000.0, 4000.0));
        assert!(s.move_to(0.0, 0.0).is_ok());
        faults.bump_stage(12.0, -3.0);
        assert_eq!(s.position_um(), (12.0, -3.0));
        assert_eq!(s.position_um(), (12.0, -3.0), "a bump is seen once");
    }
}
