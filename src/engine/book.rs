//! The trigger book: resting conditional orders of one symbol, ordered by trigger price.
//!
//! An AMM has no order book, so limit orders, stop-loss and take-profit all rest here and fire
//! when a price crosses them. Limit orders and guards live in separate maps because a price's fills
//! happen before its guard checks (GRID.md). The two cached bounds make a tick that fires nothing
//! cost two integer compares.
//!
//! The orders themselves sit in a slab; the trigger maps hold only `(trigger, id) → slot`, so a
//! burst of fills moves small B-tree entries instead of whole orders (the daemon's tick-to-decision
//! tail is made of such bursts).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::model::order::{OrderId, RestingOrder};
use crate::model::PriceKey;

type Slot = u32;
type TriggerMap = BTreeMap<(PriceKey, OrderId), Slot>;

#[derive(Debug, Default)]
pub struct TriggerBook {
    orders: Vec<Option<(RestingOrder, bool)>>,
    free: Vec<Slot>,
    limit_below: TriggerMap,
    limit_above: TriggerMap,
    guard_below: TriggerMap,
    guard_above: TriggerMap,
    index: FxHashMap<OrderId, Slot>,
    /// Slots fired by the current price (kept to avoid an allocation per firing tick).
    fired: Vec<Slot>,
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

    /// The open interval of prices that fire nothing.
    #[inline(always)]
    pub fn quiet_band(&self) -> (PriceKey, PriceKey) {
        (self.fire_below, self.fire_above)
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
        // Re-using an id would orphan the older order's slot: replace it instead.
        self.remove(order.id);
        let k = (order.trigger, order.id);
        let (id, below) = (order.id, order.below);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.orders[slot as usize] = Some((order, guard));
                slot
            }
            None => {
                self.orders.push(Some((order, guard)));
                (self.orders.len() - 1) as Slot
            }
        };
        self.index.insert(id, slot);
        self.map_mut(below, guard).insert(k, slot);
        self.refresh_bounds();
    }

    pub fn remove(&mut self, id: OrderId) -> Option<RestingOrder> {
        let slot = self.index.remove(&id)?;
        let (order, guard) = self.take_slot(slot)?;
        self.map_mut(order.below, guard)
            .remove(&(order.trigger, id));
        self.refresh_bounds();
        Some(order)
    }

    pub fn get(&self, id: OrderId) -> Option<&RestingOrder> {
        let slot = self.index.get(&id)?;
        self.orders.get(*slot as usize)?.as_ref().map(|(o, _)| o)
    }

    /// Pop every limit order this price fires: buys (highest trigger first) or sells (lowest first).
    pub fn pop_fired_limits(&mut self, key: PriceKey, out: &mut Vec<RestingOrder>) {
        let mut slots = std::mem::take(&mut self.fired);
        Self::pop_below(&mut self.limit_below, key, &mut slots);
        Self::pop_above(&mut self.limit_above, key, &mut slots);
        self.take_fired(slots, out);
    }

    /// Pop every guard this price fires (after the limits' fills were processed).
    pub fn pop_fired_guards(&mut self, key: PriceKey, out: &mut Vec<RestingOrder>) {
        let mut slots = std::mem::take(&mut self.fired);
        Self::pop_below(&mut self.guard_below, key, &mut slots);
        Self::pop_above(&mut self.guard_above, key, &mut slots);
        self.take_fired(slots, out);
    }

    fn take_fired(&mut self, mut slots: Vec<Slot>, out: &mut Vec<RestingOrder>) {
        if !slots.is_empty() {
            for slot in slots.drain(..) {
                if let Some((order, _)) = self.take_slot(slot) {
                    self.index.remove(&order.id);
                    out.push(order);
                }
            }
            self.refresh_bounds();
        }
        self.fired = slots;
    }

    fn take_slot(&mut self, slot: Slot) -> Option<(RestingOrder, bool)> {
        let taken = self.orders.get_mut(slot as usize)?.take();
        if taken.is_some() {
            self.free.push(slot);
        }
        taken
    }

    fn resting(&self) -> impl Iterator<Item = &RestingOrder> {
        self.orders.iter().flatten().map(|(o, _)| o)
    }

    /// Ids of every order of one strategy, in id order.
    pub fn ids_of(&self, strategy: usize) -> Vec<OrderId> {
        let mut ids: Vec<OrderId> = self
            .resting()
            .filter(|o| o.strategy == strategy)
            .map(|o| o.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Every resting order, in id order.
    pub fn orders(&self) -> Vec<&RestingOrder> {
        let mut all: Vec<&RestingOrder> = self.resting().collect();
        all.sort_by_key(|o| o.id);
        all
    }

    fn pop_below(map: &mut TriggerMap, key: PriceKey, out: &mut Vec<Slot>) {
        while let Some(entry) = map.last_entry() {
            if entry.key().0 < key {
                break;
            }
            out.push(entry.remove());
        }
    }

    fn pop_above(map: &mut TriggerMap, key: PriceKey, out: &mut Vec<Slot>) {
        while let Some(entry) = map.first_entry() {
            if entry.key().0 > key {
                break;
            }
            out.push(entry.remove());
        }
    }

    fn map_mut(&mut self, below: bool, guard: bool) -> &mut TriggerMap {
        match (below, guard) {
            (true, false) => &mut self.limit_below,
            (false, false) => &mut self.limit_above,
            (true, true) => &mut self.guard_below,
            (false, true) => &mut self.guard_above,
        }
    }

    fn refresh_bounds(&mut self) {
        let top = |m: &TriggerMap| m.last_key_value().map(|(k, _)| k.0);
        let bottom = |m: &TriggerMap| m.first_key_value().map(|(k, _)| k.0);
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

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::TriggerBook;
    use crate::model::order::{
        Amount, GuardKind, GuardRequest, LimitRequest, RestingKind, RestingOrder, Side,
    };
    use crate::model::PriceKey;

    fn key(p: i64) -> PriceKey {
        PriceKey::floor_of(Decimal::from(p))
    }

    fn limit(id: u64, strategy: usize, price: i64, below: bool) -> RestingOrder {
        RestingOrder {
            id,
            strategy,
            kind: RestingKind::Limit(LimitRequest {
                tag: id,
                side: if below { Side::Buy } else { Side::Sell },
                limit: Decimal::from(price),
                amount: Amount::Quote(Decimal::TEN),
                lot_cost: None,
            }),
            trigger: key(price),
            below,
        }
    }

    fn guard(id: u64, price: i64, below: bool) -> RestingOrder {
        RestingOrder {
            id,
            strategy: 0,
            kind: RestingKind::Guard(GuardRequest {
                tag: id,
                kind: GuardKind::StopLoss,
                price: Decimal::from(price),
            }),
            trigger: key(price),
            below,
        }
    }

    fn ids(orders: &[RestingOrder]) -> Vec<u64> {
        orders.iter().map(|o| o.id).collect()
    }

    #[test]
    fn fires_buys_from_the_highest_and_sells_from_the_lowest_trigger() {
        let mut book = TriggerBook::new();
        for (id, price, below) in [(1, 98, true), (2, 99, true), (3, 97, true), (4, 101, false)] {
            book.insert(limit(id, 0, price, below), false);
        }
        book.insert(limit(5, 0, 102, false), false);
        assert!(book.is_quiet(key(100)));
        assert_eq!((book.fire_below, book.fire_above), (key(99), key(101)));

        let mut out = Vec::new();
        book.pop_fired_limits(key(98), &mut out);
        assert_eq!(ids(&out), vec![2, 1]);
        assert_eq!(book.len(), 3);
        assert_eq!(book.fire_below, key(97));
        assert!(book.get(2).is_none() && book.get(3).is_some());

        out.clear();
        book.pop_fired_limits(key(105), &mut out);
        assert_eq!(ids(&out), vec![4, 5]);
        assert_eq!(book.fire_above, PriceKey::MAX);
    }

    #[test]
    fn guards_fire_separately_from_limits() {
        let mut book = TriggerBook::new();
        book.insert(limit(1, 0, 95, true), false);
        book.insert(guard(2, 95, true), true);
        let mut out = Vec::new();
        book.pop_fired_limits(key(90), &mut out);
        assert_eq!(ids(&out), vec![1]);
        out.clear();
        book.pop_fired_guards(key(90), &mut out);
        assert_eq!(ids(&out), vec![2]);
        assert!(book.is_empty());
    }

    #[test]
    fn freed_slots_are_reused_and_a_reused_id_replaces_the_order() {
        let mut book = TriggerBook::new();
        for id in 1..=4 {
            book.insert(limit(id, (id % 2) as usize, 90 + id as i64, true), false);
        }
        assert_eq!(book.remove(2).map(|o| o.id), Some(2));
        assert!(book.remove(2).is_none());
        book.insert(limit(7, 1, 80, true), false);
        assert_eq!(book.orders.len(), 4, "slot of order 2 reused");
        assert_eq!(book.ids_of(1), vec![1, 3, 7]);
        assert_eq!(book.ids_of(0), vec![4]);

        // Same id again, new trigger: one order, at the new trigger only.
        book.insert(limit(3, 1, 70, true), false);
        assert_eq!(book.len(), 4);
        let mut out = Vec::new();
        book.pop_fired_limits(key(93), &mut out);
        assert_eq!(ids(&out), vec![4], "order 3 no longer rests at 93");
        let all: Vec<u64> = book.orders().iter().map(|o| o.id).collect();
        assert_eq!(all, vec![1, 3, 7]);
    }
}
