//! Which kind of pool a swap goes through: a constant-product V2 pair or a V3 pool of one fee tier.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A pool kind as the config and the records name it: `v2`, or `v3:FEE` with the fee tier in
/// hundredths of a basis point (`v3:500` = 5 bps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PoolKind {
    V2,
    V3 { fee: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a pool: expected \"v2\" or \"v3:FEE\" with FEE one of PancakeSwap V3's fee tiers 100, 500, 2500, 10000 (hundredths of a bps)")]
pub struct PoolKindError(pub String);

impl PoolKind {
    /// The swap fee in basis points, given V2's fee (`dex.fee_bps`: the pair's fee is not on
    /// chain).
    pub fn fee_bps(self, v2_fee_bps: u32) -> u32 {
        match self {
            PoolKind::V2 => v2_fee_bps,
            PoolKind::V3 { fee } => fee / 100,
        }
    }
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolKind::V2 => f.write_str("v2"),
            PoolKind::V3 { fee } => write!(f, "v3:{fee}"),
        }
    }
}

impl FromStr for PoolKind {
    type Err = PoolKindError;

    fn from_str(s: &str) -> Result<PoolKind, PoolKindError> {
        let t = s.trim().to_ascii_lowercase();
        if t == "v2" {
            return Ok(PoolKind::V2);
        }
        t.strip_prefix("v3:")
            .and_then(|f| f.parse::<u32>().ok())
            .filter(|f| super::v3::tick_spacing_of(*f).is_some())
            .map(|fee| PoolKind::V3 { fee })
            .ok_or_else(|| PoolKindError(s.to_string()))
    }
}

impl TryFrom<String> for PoolKind {
    type Error = PoolKindError;
    fn try_from(s: String) -> Result<PoolKind, PoolKindError> {
        s.parse()
    }
}

impl From<PoolKind> for String {
    fn from(k: PoolKind) -> String {
        k.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_tiers_are_refused() {
        for k in [
            PoolKind::V2,
            PoolKind::V3 { fee: 100 },
            PoolKind::V3 { fee: 10_000 },
        ] {
            assert_eq!(k.to_string().parse::<PoolKind>(), Ok(k));
        }
        assert_eq!(
            " V3:500 ".parse::<PoolKind>(),
            Ok(PoolKind::V3 { fee: 500 })
        );
        for bad in ["v3:300", "v3:", "v3:abc", "v4", ""] {
            let e = bad.parse::<PoolKind>();
            assert!(
                e.as_ref()
                    .is_err_and(|e| e.to_string().contains("100, 500, 2500, 10000")),
                "{bad}: {e:?}"
            );
        }
        assert_eq!(PoolKind::V3 { fee: 2500 }.fee_bps(30), 25);
        assert_eq!(PoolKind::V2.fee_bps(30), 30);
    }
}
