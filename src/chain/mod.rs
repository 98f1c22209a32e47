//! The chain boundary (floor 5, may use floors 0–4): units, RPC, contracts, gas and the write-ahead swapper.
//!
//! Nothing above this module sees a `U256` or an RPC error type: amounts come out as `Decimal`
//! converted with each token's own decimals ([`units`]), failures as [`ChainError`].

pub mod client;
pub mod contracts;
pub mod failover;
pub mod gas;
pub mod pool_model;
pub mod pool_state;
pub mod swap;
pub mod units;

pub use client::{ChainClient, ChainError, Pool, Token};
pub use swap::{Reconciled, SwapOrder, SwapResult, Swapper};
