//! The trigger book: resting conditional orders of one symbol, ordered by trigger price.
//!
//! An AMM has no order book, so limit orders, stop-loss and take-profit all rest here and fire
//! when a price crosses them. Limit orders and guards live in separate maps because a price's fills
//! happen before its guard checks (GRID.md). The two cached bounds make a tick that fires nothing
//! cost two integer compares.

use std::collections::BTreeMap;

use super::order::{OrderId, RestingOrder};
use super::price::PriceKey;

#[derive(Debug, Default)]
pub struct TriggerBook {
    limit_below: BTreeMap<(PriceKey, OrderId), RestingOrder>,
    limit_above: BTreeMap<(PriceKey, OrderId), RestingOrder>,
    guard_below: BTreeMap<(PriceKey, OrderId), RestingOrder>,
    guard_above: BTreeMap<(PriceKey, OrderId), RestingOrder>,
    index: BTreeMap<OrderId, (PriceKey, bool, bool)>,
    /// A price key `<=` this fires something below.
    pub fire_below: PriceKey,
    /// A price key `>=` this fires something above.
    pub fire_above: PriceKey,
}

impl TriggerBook {
    pub fn new() -> Self {
        TriggerBook {
            fire_below: PriceKey::MIN,
            fire_above: PriceKey::MAX,
            ..Default::default()
        }
    }

    /// True when this price fires nothing: the hot path.
    #[inline(always)]
    pub fn is_quiet(&self, key: PriceKey) -> bool {
        key > self.fire_below && key < self.fire_above
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn insert(&mut self, order: RestingOrder, guard: bool) {
        let k = (order.trigger, order.id);
        self.index
            .insert(order.id, (order.trigger, order.below, guard));
        self.map_mut(order.below, guard).insert(k, order);
        self.refresh_bounds();
    }

    pub fn remove(&mut self, id: OrderId) -> Option<RestingOrder> {
        let (trigger, below, guard) = self.index.remove(&id)?;
        let removed = self.map_mut(below, guard).remove(&(trigger, id));
        self.refresh_bounds();
        removed
    }

    pub fn get(&self, id: OrderId) -> Option<&RestingOrder> {
        let (trigger, below, guard) = self.index.get(&id)?;
        self.map(*below, *guard).get(&(*trigger, id))
    }

    /// Pop every limit order this price fires: buys (highest trigger first) or sells (lowest first).
    pub fn pop_fired_limits(&mut self, key: PriceKey, out: &mut Vec<RestingOrder>) {
        Self::pop_below(&mut self.limit_below, key, out);
        Self::pop_above(&mut self.limit_above, key, out);
        for o in out.iter() {
            self.index.remove(&o.id);
        }
        self.refresh_bounds();
    }

    /// Pop every guard this price fires (after the limits' fills were processed).
    pub fn pop_fired_guards(&mut self, key: PriceKey, out: &mut Vec<RestingOrder>) {
        let start = out.len();
        Self::pop_below(&mut self.guard_below, key, out);
        Self::pop_above(&mut self.guard_above, key, out);
        for o in &out[start..] {
            self.index.remove(&o.id);
        }
        self.refresh_bounds();
    }

    /// Ids of every order of one strategy, in id order.
    pub fn ids_of(&self, strategy: usize) -> Vec<OrderId> {
        let mut ids: Vec<OrderId> = [
            &self.limit_below,
            &self.limit_above,
            &self.guard_below,
            &self.guard_above,
        ]
        .iter()
        .flat_map(|m| m.values())
        .filter(|o| o.strategy == strategy)
        .map(|o| o.id)
        .collect();
        ids.sort_unstable();
        ids
    }

    /// Every resting order, in id order.
    pub fn orders(&self) -> Vec<&RestingOrder> {
        let mut all: Vec<&RestingOrder> = [
            &self.limit_below,
            &self.limit_above,
            &self.guard_below,
            &self.guard_above,
        ]
        .into_iter()
        .flat_map(|m| m.values())
        .collect();
        all.sort_by_key(|o| o.id);
        all
    }

    fn pop_below(
        map: &mut BTreeMap<(PriceKey, OrderId), RestingOrder>,
        key: PriceKey,
        out: &mut Vec<RestingOrder>,
    ) {
        while let Some(entry) = map.last_entry() {
            if entry.key().0 < key {
                break;
            }
            out.push(entry.remove());
        }
    }

    fn pop_above(
        map: &mut BTreeMap<(PriceKey, OrderId), RestingOrder>,
        key: PriceKey,
        out: &mut Vec<RestingOrder>,
    ) {
        while let Some(entry) = map.first_entry() {
            if entry.key().0 > key {
                break;
            }
            out.push(entry.remove());
        }
    }

    fn map(&self, below: bool, guard: bool) -> &BTreeMap<(PriceKey, OrderId), RestingOrder> {
        match (below, guard) {
            (true, false) => &self.limit_below,
            (false, false) => &self.limit_above,
            (true, true) => &self.guard_below,
            (false, true) => &self.guard_above,
        }
    }

    fn map_mut(
        &mut self,
        below: bool,
        guard: bool,
    ) -> &mut BTreeMap<(PriceKey, OrderId), RestingOrder> {
        match (below, guard) {
            (true, false) => &mut self.limit_below,
            (false, false) => &mut self.limit_above,
            (true, true) => &mut self.guard_below,
            (false, true) => &mut self.guard_above,
        }
    }

    fn refresh_bounds(&mut self) {
        let top =
            |m: &BTreeMap<(PriceKey, OrderId), RestingOrder>| m.last_key_value().map(|(k, _)| k.0);
        let bottom =
            |m: &BTreeMap<(PriceKey, OrderId), RestingOrder>| m.first_key_value().map(|(k, _)| k.0);
        self.fire_below = top(&self.limit_below)
            .into_iter()
            .chain(top(&self.guard_below))
            .max()
            .unwrap_or(PriceKey::MIN);
        self.fire_above = bottom(&self.limit_above)
            .into_iter()
            .chain(bottom(&self.guard_above))
            .min()
            .unwrap_or(PriceKey::MAX);
    }
}
