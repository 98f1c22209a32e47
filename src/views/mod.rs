//! What both the CLI and the API show, so both show the same: a strategy's document (record,
//! performance, whether anything runs it) and whether a daemon runs on this database. Uses the
//! store and the engine's ledger; below `api`, `daemon` and `cli`.

pub mod daemon;
pub mod strategy;

pub use daemon::{hostname, running_daemon};
pub use strategy::{listed, performance, strategy_document, LiveStatus};
