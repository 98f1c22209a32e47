//! The grid strategy (`-t grid`): parameters, level maths and the state machine.

pub mod levels;
pub mod params;
pub mod strategy;

pub use levels::{grid_levels, unprofitable_cells};
pub use params::{GridParams, OnExit, Spacing};
pub use strategy::{retry_backoff_us, Cell, GridStrategy, GridTag, RETRY_BASE_US, RETRY_MAX_US};
