//! What the CLI and the API both show (floor 7, may use floors 0–6).
//!
//! A strategy's document (record, performance, whether anything runs it) and whether a daemon runs
//! on this database, so the CLI and the API show the same thing the same way.

pub mod canary;
pub mod cluster;
pub mod daemon;
pub mod funds;
pub mod strategy;

pub use daemon::{hostname, running_daemon, CoreState};
pub use strategy::{listed, performance, strategy_document, LiveStatus};
