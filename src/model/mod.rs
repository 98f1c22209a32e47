//! Ground floor: the plain types every other part trades in — sides, amounts, intents and fills,
//! price keys, symbols, ticks, pool-versus-reference prices, and the checked reading of parameters.
//! It uses nothing of the crate.

pub mod divergence;
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
