//! The machine's I/O points: every subsystem's heartbeat and the signals
//! the monitor polls, and the `Io` trait a device driver implements (the
//! simulator here; Modbus TCP later, behind the same trait).

/// A subsystem with a heartbeat counter of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subsystem {
    Stage,
    Illumination,
    Vacuum,
    Camera,
    Encoder,
}

pub const SUBSYSTEMS: [Subsystem; 5] = [
    Subsystem::Stage,
    Subsystem::Illumination,
    Subsystem::Vacuum,
    Subsystem::Camera,
    Subsystem::Encoder,
];

impl Subsystem {
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Stage => "stage",
            Self::Illumination => "illumination",
            Self::Vacuum => "vacuum",
            Self::Camera => "camera",
            Self::Encoder => "encoder",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        SUBSYSTEMS.into_iter().find(|x| x.name() == s)
    }
}

/// A polled value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    StagePositionX,
    StagePositionY,
    StageFollowingError,
    IlluminationIntensity,
    LampHours,
    ChuckVacuum,
    CameraLink,
    CameraTemperature,
    EncoderHealth,
}

pub const SIGNALS: [Signal; 9] = [
    Signal::StagePositionX,
    Signal::StagePositionY,
    Signal::StageFollowingError,
    Signal::IlluminationIntensity,
    Signal::LampHours,
    Signal::ChuckVacuum,
    Signal::CameraLink,
    Signal::CameraTemperature,
    Signal::EncoderHealth,
];

/// Static facts about a signal: where it comes from, its unit, the range a
/// healthy device can report at all (outside it the reading is Invalid), and
/// its normal operating band (for drawing, not alarming: alarms come from
/// the alarm definitions).
#[derive(Debug, Clone, Copy)]
pub struct SignalInfo {
    pub name: &'static str,
    pub subsystem: Subsystem,
    pub unit: &'static str,
    pub valid: (f64, f64),
    pub normal: (f64, f64),
    pub nominal: f64,
}

impl Signal {
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn info(self) -> SignalInfo {
        use Subsystem::*;
        let i = |name, subsystem, unit, valid, normal, nominal| SignalInfo {
            name,
            subsystem,
            unit,
            valid,
            normal,
            nominal,
        };
        match self {
            Self::StagePositionX => i(
                "stage.position_x",
                Stage,
                "mm",
                (-200.0, 200.0),
                (-160.0, 160.0),
                0.0,
            ),
            Self::StagePositionY => i(
                "stage.position_y",
                Stage,
                "mm",
                (-200.0, 200.0),
                (-160.0, 160.0),
                0.0,
            ),
            Self::StageFollowingError => i(
                "stage.following_error",
                Stage,
                "µm",
                (0.0, 1000.0),
                (0.0, 5.0),
                1.2,
            ),
            Self::IlluminationIntensity => i(
                "illumination.intensity",
                Illumination,
                "%",
                (0.0, 120.0),
                (95.0, 105.0),
                100.0,
            ),
            Self::LampHours => i(
                "illumination.lamp_hours",
                Illumination,
                "h",
                (0.0, 100_000.0),
                (0.0, 2000.0),
                812.0,
            ),
            Self::ChuckVacuum => i(
                "vacuum.chuck_pressure",
                Vacuum,
                "kPa",
                (0.0, 110.0),
                (0.0, 20.0),
                8.0,
            ),
            Self::CameraLink => i("camera.link", Camera, "up", (0.0, 1.0), (1.0, 1.0), 1.0),
            Self::CameraTemperature => i(
                "camera.temperature",
                Camera,
                "°C",
                (-20.0, 100.0),
                (25.0, 45.0),
                36.0,
            ),
            Self::EncoderHealth => i(
                "encoder.health",
                Encoder,
                "%",
                (0.0, 100.0),
                (90.0, 100.0),
                99.0,
            ),
        }
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn from_name(s: &str) -> Option<Self> {
        SIGNALS.into_iter().find(|x| x.name() == s)
    }
}

/// Why a read failed. Plain enum: returning it never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoError {
    Timeout,
    Disconnected,
    /// The device answered with an error code.
    Device(u16),
}

/// Reads a machine's I/O points. Implementations must not allocate per read.
pub trait Io: Send {
    /// The subsystem's heartbeat counter (advances while it is alive).
    fn read_heartbeat(&mut self, subsystem: Subsystem) -> Result<u32, IoError>;
    fn read_signal(&mut self, signal: Signal) -> Result<f64, IoError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_indices_are_positions() {
        for (i, s) in SIGNALS.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(Signal::from_name(s.name()), Some(*s));
            let info = s.info();
            assert!(info.valid.0 <= info.normal.0 && info.normal.1 <= info.valid.1);
            assert!(info.valid.0 <= info.nominal && info.nominal <= info.valid.1);
        }
        for (i, s) in SUBSYSTEMS.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(Subsystem::from_name(s.name()), Some(*s));
        }
    }
}
