//! Hearth's runtime, like `ocis server`: [`start`] binds every listener first (port 0 works),
//! then runs each service as a named task under a supervisor that restarts failed services with
//! exponential backoff and reports `Degraded` instead of spinning. The CLI, the tray app and the
//! tests all call [`start`].
#![deny(clippy::indexing_slicing)]

pub mod config;
mod jobs;
mod listener;
mod supervisor;
pub mod tls;
mod watchdog;

pub use config::{Config, ConfigError};
pub use supervisor::{ServerHandle, StartError, Status, start};
