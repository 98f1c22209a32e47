//! What a swapper remembers between swaps, so a swap's way to the chain takes as few round trips
//! as it safely can: the router's allowance per token (as read or approved, less what swaps since
//! spent), the chain's time (read again after 30 s, host time added meanwhile), the node's gas
//! price (read again after 10 s) and each swap path's gas limit (from its first estimate, which
//! costs several EVM runs; later swaps are simulated once with `eth_call` at that limit).
//!
//! Nothing here can make a swap unsafe: an allowance remembered too high fails the simulation
//! (and is forgotten), and deadlines and gas prices are bounds the transaction states itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};

const CHAIN_TIME_FOR: Duration = Duration::from_secs(30);
const GAS_PRICE_FOR: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct Remembered {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// What each spender (a router) may spend of each token: `(spender, token)`.
    allowance: HashMap<(Address, Address), U256>,
    chain_time: Option<(u64, Instant)>,
    gas_price: Option<(u128, Instant)>,
    /// Gas limit of a swap through each router spending each token, from its first estimate.
    swap_gas: HashMap<(Address, Address), u64>,
}

impl Remembered {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    pub(super) fn allowance(&self, spender: Address, token: Address) -> Option<U256> {
        self.with(|i| i.allowance.get(&(spender, token)).copied())
    }

    pub(super) fn set_allowance(&self, spender: Address, token: Address, value: U256) {
        self.with(|i| i.allowance.insert((spender, token), value));
    }

    /// A swap took `amount` of the allowance (or may have: never remember more than is left).
    pub(super) fn spent(&self, spender: Address, token: Address, amount: U256) {
        self.with(|i| {
            if let Some(a) = i.allowance.get_mut(&(spender, token)) {
                *a = a.saturating_sub(amount);
            }
        });
    }

    pub(super) fn forget_allowance(&self, spender: Address, token: Address) {
        self.with(|i| i.allowance.remove(&(spender, token)));
    }

    /// The chain's time now, if read recently: the block time plus the host time since.
    pub(super) fn chain_time(&self) -> Option<u64> {
        self.with(|i| {
            let (t, at) = i.chain_time?;
            (at.elapsed() < CHAIN_TIME_FOR).then(|| t + at.elapsed().as_secs())
        })
    }

    pub(super) fn set_chain_time(&self, t: u64) {
        self.with(|i| i.chain_time = Some((t, Instant::now())));
    }

    /// The gas limit swaps spending `token` got from their first estimate (× margin, floored).
    pub(super) fn swap_gas(&self, router: Address, token: Address) -> Option<u64> {
        self.with(|i| i.swap_gas.get(&(router, token)).copied())
    }

    pub(super) fn set_swap_gas(&self, router: Address, token: Address, limit: u64) {
        self.with(|i| i.swap_gas.insert((router, token), limit));
    }

    pub(super) fn gas_price(&self) -> Option<u128> {
        self.with(|i| {
            let (p, at) = i.gas_price?;
            (at.elapsed() < GAS_PRICE_FOR).then_some(p)
        })
    }

    pub(super) fn set_gas_price(&self, p: u128) {
        self.with(|i| i.gas_price = Some((p, Instant::now())));
    }
}
