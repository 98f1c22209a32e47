//! bsc-bot: a grid-trading / market-making daemon for BNB Smart Chain.
//!
//! One engine serves backtest, paper and live; the database is the source of truth for
//! desired state. See the README's architecture section for how the parts fit.

pub mod alerts;
pub mod amm;
pub mod api;
pub mod backtest;
pub mod canary;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod failpoint;
pub mod funds;
pub mod market;
pub mod metrics;
pub mod model;
pub mod private_files;
pub mod risk;
pub mod rollout;
pub mod store;
pub mod strategy;
pub mod venue;
pub mod views;
pub mod wallet;
