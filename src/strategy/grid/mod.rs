//! The grid strategy (`-t grid`): parameters and level maths; the state machine joins in the engine issue.

pub mod levels;
pub mod params;

pub use levels::{grid_levels, unprofitable_cells};
pub use params::{GridParams, OnExit, Spacing};
