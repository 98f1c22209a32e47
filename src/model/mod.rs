//! Ground floor (floor 0, uses nothing of the crate): the plain types every other part trades in.
//!
//! Sides, amounts, intents and fills, price keys, symbols, ticks, pool-versus-reference prices, and
//! the checked reading of parameters: what the engine, strategies, feeds, the chain and the store
//! share without depending on one another.

pub mod divergence;
pub mod operator_text;
pub mod order;
pub mod params;
pub mod price;
pub mod symbol;
pub mod tick;

pub use divergence::MarketPrices;
pub use params::ParamError;
pub use price::PriceKey;
pub use symbol::{Symbol, SymbolError};
pub use tick::MarketTick;
