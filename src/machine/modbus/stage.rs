//! A PLC-driven XY stage over Modbus TCP: write both targets (f32 µm),
//! set the move coil, then poll until the controller reports in position
//! and both actual positions are at the target. The controller runs the
//! servo loop; a following error it reports is a status the monitor polls
//! (`stage.following_error`) and the run's suspender trips on, not
//! something this driver judges.

use super::decode::raw_value;
use super::link::Link;
use crate::hot::Counter;
use crate::machine::config::{DataType, ModbusStageConfig, RegisterKind, WordOrder};
use crate::machine::{Stage, StageError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the in-position bit is read while a move runs.
const POLL: Duration = Duration::from_millis(1);

/// The longest a move waits for a dropped link's reconnect back-off.
const RETRY_WAIT_LIMIT: Duration = Duration::from_millis(250);

pub struct ModbusStage {
    cfg: ModbusStageConfig,
    link: Link,
    /// Moves confirmed in position at their target.
    pub moves_confirmed: Arc<Counter>,
}

fn f32_words(v: f32, order: WordOrder) -> [u16; 2] {
    let bits = v.to_bits();
    let (hi, lo) = ((bits >> 16) as u16, bits as u16);
    match order {
        WordOrder::HighFirst => [hi, lo],
        WordOrder::LowFirst => [lo, hi],
    }
}

impl ModbusStage {
    /// `moves_confirmed` counts moves confirmed in position at their
    /// target (shared, so it outlives one run's connection).
    pub fn new(cfg: ModbusStageConfig, moves_confirmed: Arc<Counter>) -> Self {
        Self {
            link: Link::new(cfg.server.clone()),
            cfg,
            moves_confirmed,
        }
    }

    fn read_f32(&mut self, address: u16) -> Result<f64, StageError> {
        let mut w = [0u16; 2];
        self.link
            .read(self.cfg.unit_id, RegisterKind::Holding, address, &mut w)
            .map_err(StageError::Link)?;
        Ok(raw_value(DataType::F32, self.cfg.word_order, &w))
    }

    fn actual(&mut self) -> Result<(f64, f64), StageError> {
        Ok((
            self.read_f32(self.cfg.actual_x)?,
            self.read_f32(self.cfg.actual_y)?,
        ))
    }

    fn in_position(&mut self) -> Result<bool, StageError> {
        let mut b = [0u16; 1];
        self.link
            .read(
                self.cfg.unit_id,
                RegisterKind::Discrete,
                self.cfg.in_position,
                &mut b,
            )
            .map_err(StageError::Link)?;
        Ok(b[0] != 0)
    }
}

impl Stage for ModbusStage {
    fn move_to(&mut self, x_um: f64, y_um: f64) -> Result<Duration, StageError> {
        // A retry after a dropped link: wait out the reconnect back-off
        // (bounded, so acquisition never sits long in here) rather than
        // fail at once.
        self.link.wait_for_reconnect(RETRY_WAIT_LIMIT);
        let t0 = Instant::now();
        let unit = self.cfg.unit_id;
        let order = self.cfg.word_order;
        // Targets go as f32 (what the register map holds): the commanded
        // position is the f32 nearest the die's, and "at target" is
        // judged against that.
        let (tx, ty) = (x_um as f32, y_um as f32);
        if self.cfg.target_y == self.cfg.target_x + 2 {
            let [a, b] = f32_words(tx, order);
            let [c, d] = f32_words(ty, order);
            self.link
                .write_registers(unit, self.cfg.target_x, &[a, b, c, d])
                .map_err(StageError::Link)?;
        } else {
            self.link
                .write_registers(unit, self.cfg.target_x, &f32_words(tx, order))
                .map_err(StageError::Link)?;
            self.link
                .write_registers(unit, self.cfg.target_y, &f32_words(ty, order))
                .map_err(StageError::Link)?;
        }
        self.link
            .write_coil(unit, self.cfg.move_coil, true)
            .map_err(StageError::Link)?;
        let tol = self.cfg.position_tolerance_um;
        loop {
            if self.in_position()? {
                let (ax, ay) = self.actual()?;
                if (ax - f64::from(tx)).abs() <= tol && (ay - f64::from(ty)).abs() <= tol {
                    self.moves_confirmed.incr();
                    return Ok(t0.elapsed());
                }
            }
            if t0.elapsed() >= self.cfg.move_timeout {
                return Err(StageError::NotInPosition {
                    waited_ms: t0.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// The controller's actual position. A controller that cannot be read
    /// gives NaN, which no position check accepts (the resume check then
    /// faults rather than trusting an unknown position).
    fn position_um(&mut self) -> (f64, f64) {
        // Once more after a dropped link's back-off: a link that dropped
        // while the run was suspended is no reason to fault the run.
        self.actual()
            .or_else(|_| {
                self.link.wait_for_reconnect(RETRY_WAIT_LIMIT);
                self.actual()
            })
            .unwrap_or((f64::NAN, f64::NAN))
    }
}
