//! Ticks in blocks with each block's lowest and highest price: how a many-grid pass skips the
//! stretches that fire nothing.

use crate::model::PriceKey;

/// Ticks per block of a [`TickSlab`].
pub const TICK_BLOCK: usize = 64;

/// Time-ordered ticks of one symbol, with the lowest and highest price of each block of
/// [`TICK_BLOCK`] ticks (`lows[b]`, `highs[b]` cover `keys[b * TICK_BLOCK..]`); without them
/// (empty) the scan goes tick by tick.
#[derive(Debug, Clone, Copy)]
pub struct TickSlab<'a> {
    pub ts: &'a [i64],
    pub keys: &'a [PriceKey],
    pub lows: &'a [PriceKey],
    pub highs: &'a [PriceKey],
}

/// Each block's lowest and highest price, for [`TickSlab`].
pub fn block_bounds(keys: &[PriceKey], lows: &mut Vec<PriceKey>, highs: &mut Vec<PriceKey>) {
    lows.clear();
    highs.clear();
    for block in keys.chunks(TICK_BLOCK) {
        let (mut lo, mut hi) = (PriceKey::MAX, PriceKey::MIN);
        for &k in block {
            lo = lo.min(k);
            hi = hi.max(k);
        }
        lows.push(lo);
        highs.push(hi);
    }
}

impl TickSlab<'_> {
    /// The first index in `from..end` that fires something (at or outside `(lo, hi)`) or comes
    /// at or after `due`; `end` if none does.
    #[inline]
    pub(super) fn quiet_until(
        &self,
        from: usize,
        end: usize,
        lo: PriceKey,
        hi: PriceKey,
        due: i64,
    ) -> usize {
        let keys = self.keys;
        // Time never goes back, so the ticks before `due` are a prefix.
        let end = if end > from && self.ts[end - 1] >= due {
            from + self.ts[from..end].partition_point(|&t| t < due)
        } else {
            end
        };
        let mut i = from;
        let quiet = |k: PriceKey| k > lo && k < hi;
        while i < end && !i.is_multiple_of(TICK_BLOCK) {
            if !quiet(keys[i]) {
                return i;
            }
            i += 1;
        }
        if self.lows.len() * TICK_BLOCK >= end {
            while i + TICK_BLOCK <= end {
                let b = i / TICK_BLOCK;
                if !(self.lows[b] > lo && self.highs[b] < hi) {
                    break;
                }
                i += TICK_BLOCK;
            }
        }
        while i < end && quiet(keys[i]) {
            i += 1;
        }
        i
    }
}
