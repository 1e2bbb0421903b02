//! The machine configuration: which driver serves each subsystem (camera,
//! stage, I/O) and, for a real driver, where and how to reach it. Read from
//! a TOML file (`--machine PATH`) or `sim` (the built-in simulated tool).
//! Every error names the file, the field and the value, and what is
//! allowed; unknown keys are errors. Documented in docs/machine-config.md.

use super::io::{Signal, Subsystem, SIGNALS, SUBSYSTEMS};
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the configuration came from (shown by `check-config`, `devices`
/// and the window's title).
#[derive(Debug, Clone, PartialEq)]
pub enum MachineSource {
    /// `--machine sim`: the built-in simulated tool.
    BuiltInSim,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MachineConfig {
    pub source: MachineSource,
    pub camera: CameraDriver,
    pub stage: StageDriver,
    pub io: IoDriver,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CameraDriver {
    Sim,
    /// A GigE Vision camera through Aravis (cargo feature `gige`).
    Gige(GigeCameraConfig),
}

/// A GigE Vision camera, opened by IP address only: device discovery
/// broadcasts on every interface, so it is never done implicitly.
#[derive(Debug, Clone, PartialEq)]
pub struct GigeCameraConfig {
    pub address: std::net::IpAddr,
    /// `Software`: one frame per die, triggered when the stage is in
    /// position; `Line0`/`Line1`: the stage controller's hardware trigger;
    /// `Off`: free-running at `frame_rate_hz` (setting up and focusing, or
    /// a stage that moves while the camera streams).
    pub trigger: String,
    /// A frame not delivered within this of its trigger fails the die.
    pub frame_timeout: Duration,
    /// Wait between attempts to reopen a camera that went away.
    pub reconnect: Duration,
    /// The camera's frame rate (AcquisitionFrameRate); in trigger mode the
    /// fastest it will answer triggers. `None` leaves the camera's own.
    pub frame_rate_hz: Option<f64>,
    /// GVSP packet size in bytes (GevSCPSPacketSize); jumbo frames need a
    /// network that carries them. `None` leaves the camera's own.
    pub packet_size: Option<u32>,
    /// How often the camera's control port is asked whether it is alive
    /// (the camera subsystem's heartbeat).
    pub heartbeat_period: Duration,
    /// Pool buffers kept lent to the stream, waiting for frames: enough to
    /// ride out the acquisition thread being busy for that many frames.
    pub queued_frames: usize,
    /// What the camera sends; deeper than 8 bits is shifted down to the
    /// pipeline's 8 (`GigePixelFormat::shift`).
    pub pixel_format: GigePixelFormat,
}

/// The monochrome pixel formats a GigE camera may be set to. Mono10, Mono12
/// and Mono16 arrive unpacked, one little-endian 16-bit word per pixel, and
/// are turned into the pipeline's 8 bits by keeping the top 8 of the
/// format's bits (a right shift by 2, 4 or 8): the full range of the sensor
/// maps onto 0–255, and a value above the format's range (a camera that
/// sets stray high bits) reads as 255.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GigePixelFormat {
    Mono8,
    Mono10,
    Mono12,
    Mono16,
}

impl GigePixelFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Mono8 => "Mono8",
            Self::Mono10 => "Mono10",
            Self::Mono12 => "Mono12",
            Self::Mono16 => "Mono16",
        }
    }

    /// Bytes per pixel on the wire.
    pub fn bytes_per_pixel(self) -> u32 {
        if self == Self::Mono8 {
            1
        } else {
            2
        }
    }

    /// Right shift from the format's bits to 8.
    pub fn shift(self) -> u32 {
        match self {
            Self::Mono8 => 0,
            Self::Mono10 => 2,
            Self::Mono12 => 4,
            Self::Mono16 => 8,
        }
    }

    /// One little-endian 16-bit word per pixel in `wide`, shifted right by
    /// `shift()` into `narrow` (saturating at 255). No allocation.
    pub fn narrow(self, wide: &[u8], narrow: &mut [u8]) {
        debug_assert_eq!(wide.len(), 2 * narrow.len());
        let shift = self.shift();
        for (out, word) in narrow.iter_mut().zip(wide.chunks_exact(2)) {
            *out = (u16::from_le_bytes([word[0], word[1]]) >> shift).min(255) as u8;
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StageDriver {
    Sim,
    /// A PLC-driven XY stage over Modbus TCP.
    Modbus(ModbusStageConfig),
}

/// A PLC-driven stage's register map: targets and actual positions are
/// f32 µm in holding registers; a coil starts the move; a discrete input
/// says the axes are in position.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusStageConfig {
    pub server: ModbusServer,
    pub unit_id: u8,
    pub word_order: WordOrder,
    pub target_x: u16,
    pub target_y: u16,
    pub actual_x: u16,
    pub actual_y: u16,
    pub move_coil: u16,
    pub in_position: u16,
    /// A move not confirmed in position within this fails.
    pub move_timeout: Duration,
    /// In position means the controller says so and both actual
    /// positions are within this of the target.
    pub position_tolerance_um: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IoDriver {
    /// Simulated heartbeats and signals, with the fault switchboard.
    Sim,
    Modbus(Box<ModbusIoConfig>),
}

/// Modbus TCP I/O: every heartbeat and signal mapped to a register.
#[derive(Debug, Clone, PartialEq)]
pub struct ModbusIoConfig {
    pub servers: Vec<ModbusServer>,
    /// One per subsystem, in `SUBSYSTEMS` order.
    pub heartbeats: [ModbusPoint; SUBSYSTEMS.len()],
    /// One per signal, in `SIGNALS` order.
    pub signals: [ModbusPoint; SIGNALS.len()],
    /// Poll period per signal, in `SIGNALS` order (a heartbeat is polled at
    /// the fastest period of its subsystem's signals).
    pub periods: [Duration; SIGNALS.len()],
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModbusServer {
    pub name: String,
    pub address: SocketAddr,
    /// A request not answered in this time fails, and the connection is
    /// closed (a late answer would be taken for the next request's).
    pub timeout: Duration,
    /// Reconnect attempts back off from `reconnect_min` doubling to
    /// `reconnect_max`, so a dead server costs the poller one connect
    /// timeout per back-off step, not one per poll.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

/// Which of the four Modbus tables a point is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterKind {
    // (names as written in the file: `RegisterKind::name`)
    /// FC3, 16-bit read/write registers.
    Holding,
    /// FC4, 16-bit read-only registers.
    Input,
    /// FC1, read/write bits.
    Coil,
    /// FC2, read-only bits.
    Discrete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    Bool,
    U16,
    I16,
    U32,
    I32,
    F32,
}

impl RegisterKind {
    /// As written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Holding => "holding",
            Self::Input => "input",
            Self::Coil => "coil",
            Self::Discrete => "discrete",
        }
    }
}

impl DataType {
    /// As written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::F32 => "f32",
        }
    }

    /// Registers (or bits) the value spans.
    pub fn words(self) -> u16 {
        match self {
            Self::Bool | Self::U16 | Self::I16 => 1,
            Self::U32 | Self::I32 | Self::F32 => 2,
        }
    }
}

/// The order of the two registers of a 32-bit value. Modbus fixes the byte
/// order within a register (big-endian) but not the order of registers;
/// devices differ, so it is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// The high word at the lower address (Modicon convention, "ABCD").
    #[default]
    HighFirst,
    /// The low word at the lower address ("CDAB").
    LowFirst,
}

/// One value on a Modbus server: `value = raw × scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModbusPoint {
    /// Index into `ModbusIoConfig::servers`.
    pub server: usize,
    pub unit_id: u8,
    pub register: RegisterKind,
    pub address: u16,
    pub data_type: DataType,
    pub word_order: WordOrder,
    pub scale: f64,
    pub offset: f64,
}

impl MachineConfig {
    /// The built-in simulated tool.
    pub fn sim() -> Self {
        Self {
            source: MachineSource::BuiltInSim,
            camera: CameraDriver::Sim,
            stage: StageDriver::Sim,
            io: IoDriver::Sim,
        }
    }

    /// `--machine` as given: `sim`, or a configuration file.
    pub fn from_arg(arg: &str) -> Result<Self> {
        if arg == "sim" {
            Ok(Self::sim())
        } else {
            Self::load(Path::new(arg))
        }
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow!(
                "{}: cannot read the machine configuration: {e}",
                path.display()
            )
        })?;
        parse(&text, MachineSource::File(path.to_path_buf()))
            .map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// One line per subsystem: which driver, and where (for `check-config`
    /// and the log).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            match &self.camera {
                CameraDriver::Sim => "camera: simulated".to_owned(),
                CameraDriver::Gige(g) => format!(
                    "camera: GigE Vision at {} (trigger {}, frame timeout {} ms){}",
                    g.address,
                    g.trigger,
                    g.frame_timeout.as_millis(),
                    if cfg!(feature = "gige") {
                        ""
                    } else {
                        " — this build has no GigE support (cargo feature `gige`)"
                    }
                ),
            },
            match &self.stage {
                StageDriver::Sim => "stage: simulated".to_owned(),
                StageDriver::Modbus(m) => format!(
                    "stage: modbus at {} (unit {}, move timeout {} ms)",
                    m.server.address,
                    m.unit_id,
                    m.move_timeout.as_millis()
                ),
            },
        ];
        match &self.io {
            IoDriver::Sim => lines.push("io: simulated".into()),
            IoDriver::Modbus(m) => {
                for s in &m.servers {
                    let points = m
                        .heartbeats
                        .iter()
                        .chain(m.signals.iter())
                        .filter(|p| m.servers[p.server].name == s.name)
                        .count();
                    lines.push(format!(
                        "io: modbus server `{}` at {} ({} points, timeout {} ms)",
                        s.name,
                        s.address,
                        points,
                        s.timeout.as_millis()
                    ));
                }
            }
        }
        lines
    }
}

// ---- the file as written ----------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    camera: RawCamera,
    stage: RawStage,
    io: RawIo,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    driver: String,
    address: Option<String>,
    #[serde(default = "default_unit_id")]
    unit_id: u8,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    word_order: WordOrder,
    target_x: Option<u16>,
    target_y: Option<u16>,
    actual_x: Option<u16>,
    actual_y: Option<u16>,
    move_coil: Option<u16>,
    in_position: Option<u16>,
    #[serde(default = "default_move_timeout_ms")]
    move_timeout_ms: u64,
    #[serde(default = "default_position_tolerance_um")]
    position_tolerance_um: f64,
}

fn default_move_timeout_ms() -> u64 {
    5000
}
fn default_position_tolerance_um() -> f64 {
    1.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    driver: String,
    address: Option<String>,
    trigger: Option<String>,
    #[serde(default = "default_frame_timeout_ms")]
    frame_timeout_ms: u64,
    #[serde(default = "default_camera_reconnect_ms")]
    reconnect_ms: u64,
    frame_rate_hz: Option<f64>,
    packet_size: Option<u32>,
    #[serde(default = "default_camera_heartbeat_ms")]
    heartbeat_ms: u64,
    #[serde(default = "default_queued_frames")]
    queued_frames: usize,
    pixel_format: Option<String>,
}

fn default_queued_frames() -> usize {
    4
}

fn default_camera_heartbeat_ms() -> u64 {
    100
}
fn default_frame_timeout_ms() -> u64 {
    1000
}
fn default_camera_reconnect_ms() -> u64 {
    500
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIo {
    driver: String,
    #[serde(default)]
    servers: BTreeMap<String, RawServer>,
    #[serde(default)]
    heartbeats: BTreeMap<String, RawPoint>,
    #[serde(default)]
    signals: BTreeMap<String, RawPoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    address: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_reconnect_min_ms")]
    reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max_ms")]
    reconnect_max_ms: u64,
    #[serde(default = "default_unit_id")]
    unit_id: u8,
}

fn default_timeout_ms() -> u64 {
    100
}
fn default_reconnect_min_ms() -> u64 {
    100
}
fn default_reconnect_max_ms() -> u64 {
    5000
}
fn default_unit_id() -> u8 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    server: String,
    unit_id: Option<u8>,
    register: RegisterKind,
    address: u32,
    #[serde(rename = "type")]
    data_type: DataType,
    #[serde(default)]
    word_order: WordOrder,
    #[serde(default = "one")]
    scale: f64,
    #[serde(default)]
    offset: f64,
    /// Must be the station's unit for the signal: `scale` converts.
    unit: Option<String>,
    period_ms: Option<u64>,
}

fn one() -> f64 {
    1.0
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses and validates configuration text.
pub fn parse(text: &str, source: MachineSource) -> Result<MachineConfig> {
    let raw: RawMachine = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => anyhow!("line {}: {}", line_of(text, span.start), e.message()),
        None => anyhow!("{}", e.message()),
    })?;
    let camera = match raw.camera.driver.as_str() {
        "sim" => {
            if raw.camera.address.is_some() {
                bail!("field `camera.address`: the simulated camera has no address; use driver = \"gige\"");
            }
            CameraDriver::Sim
        }
        "gige" => CameraDriver::Gige(gige_camera(&raw.camera)?),
        other => bail!("field `camera.driver`: \"{other}\" is not a camera driver; expected \"sim\" or \"gige\""),
    };
    let stage = match raw.stage.driver.as_str() {
        "sim" => {
            if raw.stage.address.is_some() {
                bail!("field `stage.address`: the simulated stage has no address; use driver = \"modbus\"");
            }
            StageDriver::Sim
        }
        "modbus" => StageDriver::Modbus(modbus_stage(&raw.stage)?),
        other => bail!(
            "field `stage.driver`: \"{other}\" is not a stage driver; expected \"sim\" or \"modbus\""
        ),
    };
    let io = match raw.io.driver.as_str() {
        "sim" => {
            if !(raw.io.servers.is_empty()
                && raw.io.heartbeats.is_empty()
                && raw.io.signals.is_empty())
            {
                bail!("field `io.driver`: \"sim\" takes no servers, heartbeats or signals; use \"modbus\" to map them");
            }
            IoDriver::Sim
        }
        "modbus" => IoDriver::Modbus(Box::new(modbus_io(raw.io)?)),
        other => {
            bail!("field `io.driver`: \"{other}\" is not an I/O driver; expected \"sim\" or \"modbus\"")
        }
    };
    Ok(MachineConfig {
        source,
        camera,
        stage,
        io,
    })
}

fn gige_camera(raw: &RawCamera) -> Result<GigeCameraConfig> {
    let address = raw.address.as_deref().ok_or_else(|| {
        anyhow!("field `camera.address`: missing; a GigE camera is opened by its IP address (discovery is never broadcast implicitly)")
    })?;
    let address = address.parse().map_err(|_| {
        anyhow!(
            "field `camera.address`: \"{address}\" is not an IP address (e.g. \"192.168.20.10\")"
        )
    })?;
    let trigger = raw.trigger.clone().unwrap_or_else(|| "Software".into());
    if !matches!(trigger.as_str(), "Software" | "Line0" | "Line1" | "Off") {
        bail!("field `camera.trigger`: \"{trigger}\" is not a trigger source; expected \"Software\", \"Line0\", \"Line1\" or \"Off\" (free-running)");
    }
    if !(1..=16).contains(&raw.queued_frames) {
        bail!(
            "field `camera.queued_frames`: {} is outside the allowed range 1 to 16",
            raw.queued_frames
        );
    }
    ms_in_range(
        "field `camera.frame_timeout_ms`",
        raw.frame_timeout_ms,
        1,
        60_000,
    )?;
    ms_in_range("field `camera.reconnect_ms`", raw.reconnect_ms, 1, 600_000)?;
    if let Some(f) = raw.frame_rate_hz {
        if !(f.is_finite() && f > 0.0 && f <= 10_000.0) {
            bail!("field `camera.frame_rate_hz`: {f} is outside the allowed range 0 to 10000 Hz");
        }
    }
    if let Some(p) = raw.packet_size {
        if !(576..=16_384).contains(&p) {
            bail!(
                "field `camera.packet_size`: {p} is outside the allowed range 576 to 16384 bytes"
            );
        }
    }
    // At most 400 ms: Lost (10 periods) must come before a die waiting for
    // an unreachable camera gives up (5 s, pipeline/acquire.rs).
    ms_in_range("field `camera.heartbeat_ms`", raw.heartbeat_ms, 10, 400)?;
    let pixel_format = match raw.pixel_format.as_deref().unwrap_or("Mono8") {
        "Mono8" => GigePixelFormat::Mono8,
        "Mono10" => GigePixelFormat::Mono10,
        "Mono12" => GigePixelFormat::Mono12,
        "Mono16" => GigePixelFormat::Mono16,
        other => bail!("field `camera.pixel_format`: \"{other}\" is not supported; expected \"Mono8\", \"Mono10\", \"Mono12\" or \"Mono16\" (unpacked)"),
    };
    Ok(GigeCameraConfig {
        frame_rate_hz: raw.frame_rate_hz,
        packet_size: raw.packet_size,
        heartbeat_period: Duration::from_millis(raw.heartbeat_ms),
        queued_frames: raw.queued_frames,
        pixel_format,
        address,
        trigger,
        frame_timeout: Duration::from_millis(raw.frame_timeout_ms),
        reconnect: Duration::from_millis(raw.reconnect_ms),
    })
}

fn modbus_stage(raw: &RawStage) -> Result<ModbusStageConfig> {
    let field = |f: &str| format!("field `stage.{f}`");
    let address = raw.address.as_deref().ok_or_else(|| {
        anyhow!(
            "{}: missing; the modbus stage needs IP:PORT",
            field("address")
        )
    })?;
    let address = socket_addr(&field("address"), address)?;
    ms_in_range(&field("timeout_ms"), raw.timeout_ms, 1, 60_000)?;
    ms_in_range(&field("move_timeout_ms"), raw.move_timeout_ms, 1, 600_000)?;
    if !(raw.position_tolerance_um.is_finite() && raw.position_tolerance_um > 0.0) {
        bail!(
            "{}: {} must be a positive number of µm",
            field("position_tolerance_um"),
            raw.position_tolerance_um
        );
    }
    let need = |name: &str, v: Option<u16>, words: u16| -> Result<u16> {
        let a = v.ok_or_else(|| {
            anyhow!(
                "{}: missing; the modbus stage needs its register map (docs/machine-config.md)",
                field(name)
            )
        })?;
        if u32::from(a) + u32::from(words) > 65_536 {
            bail!("{}: {a} is outside the register space", field(name));
        }
        Ok(a)
    };
    // The four f32 positions (two registers each) must not share a
    // register: a target written over an actual would read as arrived.
    let f32s = [
        ("target_x", raw.target_x),
        ("target_y", raw.target_y),
        ("actual_x", raw.actual_x),
        ("actual_y", raw.actual_y),
    ];
    for (i, (a, ra)) in f32s.iter().enumerate() {
        for (b, rb) in &f32s[i + 1..] {
            if let (Some(ra), Some(rb)) = (ra, rb) {
                if ra.abs_diff(*rb) < 2 {
                    bail!(
                        "{}: {rb} overlaps stage.{a} ({ra}); each position is two registers",
                        field(b)
                    );
                }
            }
        }
    }
    Ok(ModbusStageConfig {
        server: ModbusServer {
            name: "stage".into(),
            address,
            timeout: Duration::from_millis(raw.timeout_ms),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_millis(1000),
        },
        unit_id: raw.unit_id,
        word_order: raw.word_order,
        target_x: need("target_x", raw.target_x, 2)?,
        target_y: need("target_y", raw.target_y, 2)?,
        actual_x: need("actual_x", raw.actual_x, 2)?,
        actual_y: need("actual_y", raw.actual_y, 2)?,
        move_coil: need("move_coil", raw.move_coil, 1)?,
        in_position: need("in_position", raw.in_position, 1)?,
        move_timeout: Duration::from_millis(raw.move_timeout_ms),
        position_tolerance_um: raw.position_tolerance_um,
    })
}

fn modbus_io(raw: RawIo) -> Result<ModbusIoConfig> {
    if raw.servers.is_empty() {
        bail!("field `io.servers`: the modbus driver needs at least one server ([io.servers.NAME] with an address)");
    }
    let mut servers = Vec::new();
    let mut unit_ids = Vec::new();
    for (name, s) in &raw.servers {
        let field = |f: &str| format!("field `io.servers.{name}.{f}`");
        let address = socket_addr(&field("address"), &s.address)?;
        // One poller thread reads every server in turn: a request may hold
        // it up to this long, and a poller not heard from for half a second
        // is taken as stopped (every value Lost, the run suspended). So a
        // timeout stays well under that.
        ms_in_range(&field("timeout_ms"), s.timeout_ms, 1, MAX_IO_TIMEOUT_MS)?;
        ms_in_range(&field("reconnect_min_ms"), s.reconnect_min_ms, 1, 600_000)?;
        ms_in_range(&field("reconnect_max_ms"), s.reconnect_max_ms, 1, 600_000)?;
        if s.reconnect_max_ms < s.reconnect_min_ms {
            bail!(
                "{}: {} ms is less than reconnect_min_ms ({} ms)",
                field("reconnect_max_ms"),
                s.reconnect_max_ms,
                s.reconnect_min_ms
            );
        }
        servers.push(ModbusServer {
            name: name.clone(),
            address,
            timeout: Duration::from_millis(s.timeout_ms),
            reconnect_min: Duration::from_millis(s.reconnect_min_ms),
            reconnect_max: Duration::from_millis(s.reconnect_max_ms),
        });
        unit_ids.push(s.unit_id);
    }
    let point = |table: &str, key: &str, p: &RawPoint, unit: Option<&str>| -> Result<ModbusPoint> {
        let field = |f: &str| format!("field `io.{table}.\"{key}\".{f}`");
        let server = servers
            .iter()
            .position(|s| s.name == p.server)
            .ok_or_else(|| {
                anyhow!(
                    "{}: \"{}\" is not a server of [io.servers]; known: {}",
                    field("server"),
                    p.server,
                    servers
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let bits = matches!(p.register, RegisterKind::Coil | RegisterKind::Discrete);
        if bits != (p.data_type == DataType::Bool) {
            bail!(
                "{}: \"{}\" does not fit a {} point; coils and discrete inputs are `bool`, holding and input registers are u16, i16, u32, i32 or f32",
                field("type"),
                p.data_type.name(),
                p.register.name()
            );
        }
        if p.address + u32::from(p.data_type.words()) > 65_536 {
            bail!(
                "{}: {} is outside the register space (0 to {} for a {})",
                field("address"),
                p.address,
                65_536 - u32::from(p.data_type.words()),
                p.data_type.name()
            );
        }
        if !p.scale.is_finite() || p.scale == 0.0 {
            bail!(
                "{}: {} must be a finite, non-zero number",
                field("scale"),
                p.scale
            );
        }
        if !p.offset.is_finite() {
            bail!("{}: {} must be a finite number", field("offset"), p.offset);
        }
        match (unit, &p.unit) {
            (Some(want), Some(got)) if want != got => bail!(
                "{}: \"{got}\" is not the station's unit for {key}, \"{want}\"; convert with `scale` and `offset`",
                field("unit")
            ),
            (Some(want), None) => bail!(
                "{}: missing; {key} is in \"{want}\" (say so, so a wrong scale is caught when the file is written)",
                field("unit")
            ),
            (None, Some(_)) => bail!("{}: a heartbeat is a counter and has no unit", field("unit")),
            _ => {}
        }
        Ok(ModbusPoint {
            server,
            unit_id: p.unit_id.unwrap_or(unit_ids[server]),
            register: p.register,
            address: p.address as u16,
            data_type: p.data_type,
            word_order: p.word_order,
            scale: p.scale,
            offset: p.offset,
        })
    };

    let mut heartbeats: [Option<ModbusPoint>; SUBSYSTEMS.len()] = [None; SUBSYSTEMS.len()];
    for (key, p) in &raw.heartbeats {
        let sub = Subsystem::from_name(key).ok_or_else(|| {
            anyhow!(
                "field `io.heartbeats.\"{key}\"`: not a subsystem; known: {}",
                SUBSYSTEMS.map(|s| s.name()).join(", ")
            )
        })?;
        if p.period_ms.is_some() {
            bail!("field `io.heartbeats.\"{key}\".period_ms`: a heartbeat is polled at the fastest period of its subsystem's signals; set period_ms on the signals");
        }
        if !matches!(p.data_type, DataType::U16 | DataType::U32) {
            bail!(
                "field `io.heartbeats.\"{key}\".type`: \"{}\"; a heartbeat counter is u16 or u32",
                p.data_type.name()
            );
        }
        heartbeats[sub.index()] = Some(point("heartbeats", key, p, None)?);
    }
    let mut signals: [Option<ModbusPoint>; SIGNALS.len()] = [None; SIGNALS.len()];
    let mut periods = [Duration::from_millis(5); SIGNALS.len()];
    for (key, p) in &raw.signals {
        let sig = Signal::from_name(key).ok_or_else(|| {
            anyhow!(
                "field `io.signals.\"{key}\"`: not a signal of the station; known: {}",
                SIGNALS.map(|s| s.name()).join(", ")
            )
        })?;
        signals[sig.index()] = Some(point("signals", key, p, Some(sig.info().unit))?);
        if let Some(ms) = p.period_ms {
            ms_in_range(
                &format!("field `io.signals.\"{key}\".period_ms`"),
                ms,
                1,
                60_000,
            )?;
            periods[sig.index()] = Duration::from_millis(ms);
        }
    }
    let missing: Vec<&str> = SUBSYSTEMS
        .iter()
        .filter(|s| heartbeats[s.index()].is_none())
        .map(|s| s.name())
        .collect();
    if !missing.is_empty() {
        bail!(
            "field `io.heartbeats`: no heartbeat for {}; every subsystem needs one (its data is judged live, stale or lost by it)",
            missing.join(", ")
        );
    }
    let missing: Vec<&str> = SIGNALS
        .iter()
        .filter(|s| signals[s.index()].is_none())
        .map(|s| s.name())
        .collect();
    if !missing.is_empty() {
        bail!(
            "field `io.signals`: no mapping for {}; the station monitors every signal",
            missing.join(", ")
        );
    }
    Ok(ModbusIoConfig {
        servers,
        heartbeats: heartbeats.map(|p| p.expect("checked above")),
        signals: signals.map(|p| p.expect("checked above")),
        periods,
    })
}

/// A server address: IP:PORT only (a host-name lookup must never stall a
/// polling or acquisition thread).
fn socket_addr(field: &str, text: &str) -> Result<SocketAddr> {
    text.parse().map_err(|_| {
        anyhow!(
            "{field}: \"{text}\" is not IP:PORT (e.g. \"192.168.10.20:502\"; host names are not resolved)"
        )
    })
}

/// The longest an I/O request may take (see `modbus_io`).
pub const MAX_IO_TIMEOUT_MS: u64 = 200;

fn ms_in_range(field: &str, v: u64, lo: u64, hi: u64) -> Result<()> {
    if v < lo || v > hi {
        bail!("{field}: {v} ms is outside the allowed range {lo} to {hi} ms");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample file shipped in assets/ parses.
    #[test]
    fn the_shipped_modbus_sample_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/machines/modbus-io.toml");
        let cfg = MachineConfig::load(&path).expect("sample parses");
        let IoDriver::Modbus(m) = cfg.io else {
            panic!("sample is modbus")
        };
        assert_eq!(m.servers.len(), 1);
        let x = m.signals[Signal::StagePositionX.index()];
        assert_eq!(x.data_type, DataType::F32);
        assert_eq!(x.register, RegisterKind::Holding);
    }

    #[test]
    fn the_shipped_stage_sample_is_valid_and_overlapping_registers_are_refused() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/machines/modbus-machine.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = parse(&text, MachineSource::File(path)).expect("sample parses");
        let StageDriver::Modbus(stage) = cfg.stage else {
            panic!("sample stage is modbus")
        };
        assert_eq!((stage.target_x, stage.actual_x), (100, 104));
        let e = err(&text.replacen("target_y = 102", "target_y = 101", 1));
        assert!(
            e.contains("stage.target_y") && e.contains("overlaps"),
            "{e}"
        );
        let e = err(&text.replacen("move_coil = 0", "", 1));
        assert!(
            e.contains("stage.move_coil") && e.contains("missing"),
            "{e}"
        );
    }

    #[test]
    fn the_shipped_camera_sample_is_valid_and_bad_camera_fields_are_named() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/machines/gige-camera.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = parse(&text, MachineSource::File(path)).expect("sample parses");
        let CameraDriver::Gige(camera) = cfg.camera else {
            panic!("sample camera is gige")
        };
        assert_eq!(camera.queued_frames, 4);
        assert_eq!(camera.heartbeat_period, Duration::from_millis(100));
        for (from, to, field) in [
            (
                "trigger = \"Software\"",
                "trigger = \"Line7\"",
                "camera.trigger",
            ),
            (
                "queued_frames = 4",
                "queued_frames = 0",
                "camera.queued_frames",
            ),
            (
                "heartbeat_ms = 100",
                "heartbeat_ms = 5000",
                "camera.heartbeat_ms",
            ),
            (
                "address = \"192.168.20.10\"",
                "address = \"cam.local\"",
                "camera.address",
            ),
        ] {
            let e = err(&text.replacen(from, to, 1));
            assert!(e.contains(field), "{to}: {e}");
        }
        let e = err(&text.replacen(
            "heartbeat_ms = 100",
            "heartbeat_ms = 100\npacket_size = 65000",
            1,
        ));
        assert!(
            e.contains("camera.packet_size") && e.contains("65000"),
            "{e}"
        );
    }

    #[test]
    fn deeper_pixels_keep_their_top_8_bits() {
        let wide: Vec<u8> = [0u16, 1023, 512, 4095, 2048, 65535, 256, 0x0400]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let mut narrow = [0u8; 8];
        GigePixelFormat::Mono10.narrow(&wide, &mut narrow);
        // Mono10: 1023 → 255, 512 → 128; a stray bit above 10 saturates.
        assert_eq!(narrow[..3], [0, 255, 128]);
        assert_eq!(narrow[7], 255);
        GigePixelFormat::Mono12.narrow(&wide, &mut narrow);
        assert_eq!(narrow[3..5], [255, 128]);
        GigePixelFormat::Mono16.narrow(&wide, &mut narrow);
        assert_eq!(narrow[5..7], [255, 1]);
    }

    #[test]
    fn sim_is_the_built_in_tool() {
        assert_eq!(
            MachineConfig::from_arg("sim").unwrap(),
            MachineConfig::sim()
        );
    }

    fn sample() -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/machines/modbus-io.toml"),
        )
        .unwrap()
    }

    fn err(text: &str) -> String {
        format!(
            "{:#}",
            parse(text, MachineSource::BuiltInSim).expect_err("must be refused")
        )
    }

    #[test]
    fn errors_name_the_field_and_the_value() {
        let s = sample();
        let e = err(&s.replace("127.0.0.1:5020", "plc.local:502"));
        assert!(
            e.contains("io.servers.plc.address") && e.contains("plc.local:502"),
            "{e}"
        );
        let e = err(&s.replace("unit = \"mm\"", "unit = \"µm\""));
        assert!(
            e.contains("unit") && e.contains("\"µm\"") && e.contains("\"mm\""),
            "{e}"
        );
        let e = err(&s.replace("server = \"plc\"", "server = \"plc2\""));
        assert!(e.contains(".server`") && e.contains("plc2"), "{e}");
        let e = err(&s.replace("timeout_ms = 100", "timeout_ms = 0"));
        assert!(
            e.contains("io.servers.plc.timeout_ms") && e.contains("0 ms"),
            "{e}"
        );
        let e = err(&s.replace("driver = \"modbus\"", "driver = \"opc-ua\""));
        assert!(e.contains("io.driver") && e.contains("opc-ua"), "{e}");
        let e = err(&s.replace("[camera]\ndriver = \"sim\"", "[camera]\ndriver = \"gige\""));
        assert!(e.contains("camera.address") && e.contains("missing"), "{e}");
        // A typo'd key is an error with its line, not silently ignored.
        let e = err(&s.replace("scale = 0.01", "scael = 0.01"));
        assert!(e.contains("line ") && e.contains("scael"), "{e}");
    }

    #[test]
    fn every_signal_and_heartbeat_must_be_mapped() {
        let s = sample();
        let start = s.find("[io.signals.\"encoder.health\"]").unwrap();
        let e = err(&s[..start]);
        assert!(
            e.contains("io.signals") && e.contains("encoder.health"),
            "{e}"
        );
        let e = err(&s.replace("[io.heartbeats.vacuum]", "[io.heartbeats.vacum]"));
        assert!(e.contains("vacum") && e.contains("not a subsystem"), "{e}");
    }

    #[test]
    fn bits_are_bool_and_registers_are_numbers() {
        let s = sample();
        let e = err(&s.replacen("type = \"bool\"", "type = \"u16\"", 1));
        assert!(
            e.contains(".type`") && e.contains("coils and discrete"),
            "{e}"
        );
        // A 32-bit value cannot start at the last register.
        let e = err(&s.replacen("address = 10\n", "address = 65535\n", 1));
        assert!(e.contains(".address`") && e.contains("65535"), "{e}");
    }
}
