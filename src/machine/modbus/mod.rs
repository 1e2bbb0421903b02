//! Modbus TCP devices, through the `tokio-modbus` crate's blocking client
//! (a current-thread runtime per connection, so a poll is one `block_on`
//! on the polling thread: no task hand-off, no second thread).
//!
//! - `decode`: registers → value (data type, word order, scale).
//! - `link`: one server's connection, with timeouts and reconnect back-off.
//! - `io`: the `Io` driver the monitor polls.

pub mod decode;
pub mod io;
pub mod link;
pub mod stage;

pub use io::ModbusIo;
pub use link::{Link, LinkStatus};
pub use stage::ModbusStage;
