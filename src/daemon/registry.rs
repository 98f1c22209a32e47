//! The engine's strategies and markets as the daemon knows them (database id ⇄ engine index,
//! symbol ⇄ feed), and how a strategy is added to the running engine.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;

use super::recorder::PersistOp;
use super::DaemonEngine;
use crate::engine::ledger::Ledger;
use crate::market::feed::{FeedState, SymbolFeed};
use crate::model::Symbol;
use crate::store::StrategyRecord;
use crate::strategy::{StrategyParams, StrategyStatus};

/// Symbols and strategies the engine knows, shared by the engine loop and the control poller.
#[derive(Default)]
pub struct Registry {
    pub(super) symbols: Vec<Symbol>,
    /// database strategy id → engine index
    pub(super) strategies: BTreeMap<i64, usize>,
    /// Live markets priced by their pool, not Binance: symbol (and the pool kind a pinned
    /// strategy trades; `None`: the market's deepest pool) → engine index.
    pub(super) pool_symbols: Vec<(Symbol, Option<crate::amm::PoolKind>, usize)>,
    /// `(symbol, pool price symbol, reference price symbol)` of every market priced by its pool.
    pub(super) market_pairs: Vec<(String, usize, usize)>,
    /// database strategy id → status as the engine applies it (for status and latency checks)
    pub applied: BTreeMap<i64, StrategyStatus>,
    /// live strategy id → `running`, or why this daemon does not run it
    pub live: BTreeMap<i64, String>,
    /// `[risk]`, which each strategy's own limits override.
    pub risk: crate::config::RiskConfig,
    pub core: crate::views::CoreState,
}

/// The API reads what the engine applies through the registry's lock.
impl crate::api::EngineView for Mutex<Registry> {
    fn live_status(&self) -> crate::views::LiveStatus {
        self.lock().map(|r| r.live.clone()).unwrap_or_default()
    }

    fn applied(&self) -> Vec<(i64, StrategyStatus)> {
        self.lock()
            .map(|r| r.applied.iter().map(|(id, s)| (*id, *s)).collect())
            .unwrap_or_default()
    }

    fn core(&self) -> crate::views::CoreState {
        self.lock().map(|r| r.core).unwrap_or_default()
    }
}

impl Registry {
    /// Nothing run yet: what a core starting at `since_ms` begins from.
    pub fn starting(risk: &crate::config::RiskConfig, since_ms: i64) -> Self {
        Registry {
            risk: risk.clone(),
            core: crate::views::CoreState::Starting { since_ms },
            ..Registry::default()
        }
    }

    pub fn ix(&self, db_id: i64) -> Option<usize> {
        self.strategies.get(&db_id).copied()
    }

    pub fn streams(&self) -> Vec<String> {
        self.symbols
            .iter()
            .map(Symbol::binance_stream_name)
            .collect()
    }

    /// The engine index of `symbol`, registering it with the engine and the feed the first time.
    pub fn symbol_ix(
        &mut self,
        engine: &mut DaemonEngine,
        feed: &FeedState,
        symbol: &Symbol,
    ) -> usize {
        if let Some(i) = self.symbols.iter().position(|s| s == symbol) {
            return i;
        }
        let i = engine.add_symbol();
        engine.recorder_mut().name_symbol(i, &symbol.to_string());
        self.symbols.push(symbol.clone());
        if let Ok(mut map) = feed.symbols.lock() {
            map.insert(
                symbol.binance_stream_name(),
                Arc::new(SymbolFeed {
                    engine_symbol: i,
                    ..Default::default()
                }),
            );
        }
        i
    }

    /// The engine index of `symbol` priced by its pool (a live market), created the first time.
    /// The market also follows its reference (Binance) price from then on, for the divergence
    /// operators watch.
    /// The engine symbol of `symbol`'s pool price: the market's deepest pool, or with `pin` the
    /// pool a pinned strategy trades (its grid triggers on the price of the pool it swaps in, and
    /// its divergence from the reference is that pool's).
    pub fn pool_symbol_ix(
        &mut self,
        engine: &mut DaemonEngine,
        feed: &FeedState,
        symbol: &Symbol,
        pin: Option<crate::amm::PoolKind>,
    ) -> usize {
        if let Some((_, _, i)) = self
            .pool_symbols
            .iter()
            .find(|(s, p, _)| s == symbol && *p == pin)
        {
            return *i;
        }
        let i = engine.add_symbol();
        let (name, market) = match pin {
            Some(kind) => (
                format!("{symbol} (pool {kind})"),
                format!("{symbol}@{kind}"),
            ),
            None => (format!("{symbol} (pool)"), symbol.to_string()),
        };
        engine.recorder_mut().name_symbol(i, &name);
        self.pool_symbols.push((symbol.clone(), pin, i));
        let reference = self.symbol_ix(engine, feed, symbol);
        self.market_pairs.push((market, i, reference));
        engine.risk_mut().set_reference(i, reference);
        i
    }
}

/// The strategy's state and ledger, taken cheaply on the engine thread (serialized by the writer).
pub fn state_document(engine: &DaemonEngine, ix: usize) -> super::recorder::StateDocument {
    super::recorder::StateDocument {
        strategy: engine.strategy_state(ix),
        ledger: engine.ledger(ix).clone(),
        last_price: engine.last_price(engine.strategy_symbol(ix)),
        status: engine.status(ix),
        risk: engine.risk().state(ix),
    }
}

/// Snapshot operations for strategies `ixs`, all stamped `now_ms`.
pub fn snapshot_ops(
    engine: &DaemonEngine,
    ixs: impl IntoIterator<Item = usize>,
    now_ms: i64,
) -> Vec<PersistOp> {
    ixs.into_iter()
        .map(|ix| PersistOp::Snapshot {
            strategy_id: engine.recorder().db_id(ix),
            state: state_document(engine, ix),
            ts_ms: now_ms,
        })
        .collect()
}

/// Add one strategy to the engine (restoring it from its persisted state if it has one).
pub fn add_strategy(
    engine: &mut DaemonEngine,
    registry: &Mutex<Registry>,
    feed: &FeedState,
    record: &StrategyRecord,
) -> Result<usize, String> {
    add_strategy_priced(engine, registry, record, |reg, engine, symbol| {
        reg.symbol_ix(engine, feed, symbol)
    })
}

/// Add a strategy priced by its pool (a live one, or paper with `paper_price_source = "pool"`).
pub fn add_pool_priced_strategy(
    engine: &mut DaemonEngine,
    registry: &Mutex<Registry>,
    feed: &FeedState,
    record: &StrategyRecord,
) -> Result<usize, String> {
    let pin = super::live::pinned_pool(record);
    let ix = add_strategy_priced(engine, registry, record, |reg, engine, symbol| {
        reg.pool_symbol_ix(engine, feed, symbol, pin)
    })?;
    // A live strategy's swaps spend its wallet: they count towards the hourly outflow.
    if record.mode == crate::strategy::StrategyMode::Live {
        engine.risk_mut().count_outflow(ix);
    }
    Ok(ix)
}

fn add_strategy_priced(
    engine: &mut DaemonEngine,
    registry: &Mutex<Registry>,
    record: &StrategyRecord,
    symbol_ix: impl FnOnce(&mut Registry, &mut DaemonEngine, &Symbol) -> usize,
) -> Result<usize, String> {
    let params = StrategyParams::parse(&record.kind, &record.params).map_err(|e| e.to_string())?;
    let symbol: Symbol = record
        .symbol
        .parse()
        .map_err(|e: crate::model::SymbolError| e.to_string())?;
    let mut risk_state = None;
    let (strategy, ledger) = match &record.state {
        Some(text) => {
            let doc: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("state: {e}"))?;
            risk_state = serde_json::from_value(doc["risk"].clone()).unwrap_or(None);
            let mut ledger: Ledger = serde_json::from_value(doc["ledger"].clone())
                .map_err(|e| format!("ledger: {e}"))?;
            // The simulated venue's orders in flight do not outlive the process: nothing they
            // reserved was spent, and the strategy re-issues its orders from its state.
            ledger.reserved_quote = Decimal::ZERO;
            ledger.reserved_base = Decimal::ZERO;
            (params.restore_on_record(&doc["strategy"])?, Some(ledger))
        }
        None => (params.build(), None),
    };
    let mut reg = registry
        .lock()
        .map_err(|_| "registry poisoned".to_string())?;
    let sym_ix = symbol_ix(&mut reg, engine, &symbol);
    // The recorder must know the id before the engine reports the restored orders.
    engine.recorder_mut().register_strategy(record.id);
    // Its limits and loss tracking first: a restored strategy may place orders as it is added.
    let next = engine.strategy_count();
    let limits = reg.risk.for_strategy(&params.risk_overrides());
    engine.risk_mut().set_strategy_limits(next, limits);
    if let Some(state) = risk_state {
        engine.risk_mut().restore(next, state);
    }
    let ix = engine.add_strategy(strategy, sym_ix, params.fee_bps(), record.status, ledger);
    reg.strategies.insert(record.id, ix);
    reg.applied.insert(record.id, record.status);
    Ok(ix)
}
