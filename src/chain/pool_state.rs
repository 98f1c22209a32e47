//! The state of every pool a market may trade, kept fresh off the swap path: best execution
//! quotes each allowed pool from here and never waits for the chain to choose.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy::primitives::{Address, U256};

use super::client::{ChainClient, ChainError, Pool};
use super::contracts::IUniswapV2Pair;
use crate::amm::quote::PoolState;
use crate::amm::PoolKind;

/// How many tick-bitmap words on each side of the price a V3 pool's state holds (256 ticks of
/// spacing each: ±25 % of price on a 5 bps pool). A swap that would run past them is not quoted
/// from this pool until the next read.
pub const V3_WORDS_EACH_SIDE: i32 = 2;

/// A pool's state as the chain held it at `block`.
pub async fn read_pool_state(
    client: &ChainClient,
    pool: &Pool,
    v2_fee_bps: u32,
    block: u64,
) -> Result<PoolState, ChainError> {
    match pool.kind {
        PoolKind::V2 => {
            let p = IUniswapV2Pair::new(pool.pair, client.provider());
            let at = alloy::eips::BlockId::number(block);
            let r = p
                .getReserves()
                .block(at)
                .call()
                .await
                .map_err(|e| ChainError::Rpc {
                    call: "getReserves".into(),
                    message: e.to_string(),
                })?;
            Ok(PoolState::V2 {
                reserve0: U256::from(r.reserve0),
                reserve1: U256::from(r.reserve1),
                fee_bps: v2_fee_bps,
            })
        }
        PoolKind::V3 { .. } => Ok(PoolState::V3(
            client
                .v3_state(pool, V3_WORDS_EACH_SIDE, Some(block))
                .await?,
        )),
    }
}

/// The latest state read of each pool, by address, with the block it is of.
#[derive(Debug, Default)]
pub struct PoolStates {
    states: RwLock<HashMap<Address, (u64, PoolState)>>,
}

impl PoolStates {
    pub fn get(&self, pool: Address) -> Option<PoolState> {
        self.states
            .read()
            .ok()
            .and_then(|s| s.get(&pool).map(|(_, st)| st.clone()))
    }

    /// Keep `state` of `block` unless a state of a later block is already here (a slow read
    /// never overwrites a newer one).
    pub fn set(&self, pool: Address, block: u64, state: PoolState) {
        if let Ok(mut s) = self.states.write() {
            if s.get(&pool).is_none_or(|(b, _)| *b <= block) {
                s.insert(pool, (block, state));
            }
        }
    }

    /// Replace `pool`'s state by `next` only while it is still `expected` (the bot's own fill
    /// moves the state it quoted; a newer read since wins).
    pub fn advance(&self, pool: Address, expected: &PoolState, next: PoolState) {
        if let Ok(mut s) = self.states.write() {
            match s.get_mut(&pool) {
                Some((_, st)) if st == expected => *st = next,
                Some(_) => {}
                None => {}
            }
        }
    }

    /// Forget a pool's state (it is not quoted until read again).
    pub fn forget(&self, pool: Address) {
        if let Ok(mut s) = self.states.write() {
            s.remove(&pool);
        }
    }

    /// Read every pool in `pools` again; a pool that cannot be read keeps no state (it is not
    /// quoted from an old one).
    pub async fn refresh(&self, client: &ChainClient, pools: &[Pool], v2_fee_bps: u32) {
        let block = match client.block_number().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the chain's head; pool states kept as they are");
                return;
            }
        };
        for pool in pools {
            match read_pool_state(client, pool, v2_fee_bps, block).await {
                Ok(state) => self.set(pool.pair, block, state),
                Err(e) => {
                    tracing::warn!(pool = %pool.pair, kind = %pool.kind, error = %e, "cannot read the pool's state; not quoted until it can");
                    self.forget(pool.pair);
                }
            }
        }
    }
}

/// Engine symbol index → every pool it may trade (best execution's candidates).
pub type SharedRoutes = Arc<RwLock<HashMap<usize, Vec<Pool>>>>;

/// Re-read the routed pools' states at every new block (checked every `every`) until shutdown.
pub async fn follow_pool_states(
    client: ChainClient,
    routes: SharedRoutes,
    states: Arc<PoolStates>,
    v2_fee_bps: u32,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut seen = None;
    loop {
        if let Ok(block) = client.block_number().await {
            if seen != Some(block) {
                let pools: Vec<Pool> = routes
                    .read()
                    .map(|r| r.values().flatten().cloned().collect())
                    .unwrap_or_default();
                states.refresh(&client, &pools, v2_fee_bps).await;
                seen = Some(block);
            }
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
