//! On-chain amounts and decimals: the one conversion, kept with the pool maths
//! ([`crate::amm::units`]) so the V3 fill model uses it too.

pub use crate::amm::units::*;
