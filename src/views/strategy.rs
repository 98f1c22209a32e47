//! A strategy as the operator sees it, in `strategy list|status --json` and the API alike.

use serde_json::json;

use crate::store::StrategyRecord;

/// What the running daemon says about live strategies (`None`: no daemon is running).
pub type LiveStatus = std::collections::BTreeMap<i64, String>;

/// A strategy with its performance, as `strategy status --json` and the API show it.
pub fn strategy_document(s: &StrategyRecord, live: Option<&LiveStatus>) -> serde_json::Value {
    let mut v = listed(s, live);
    if let Some(o) = v.as_object_mut() {
        o.insert("performance".into(), performance(s));
    }
    v
}

/// A strategy as lists show it: its record, and whether anything runs it.
pub fn listed(s: &StrategyRecord, live: Option<&LiveStatus>) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    if let (Some(o), Some(why)) = (v.as_object_mut(), s.not_running_reason(live)) {
        o.insert("running".into(), json!(false));
        o.insert("not_running".into(), json!(why));
    }
    v
}

/// Performance from the strategy's persisted state (written by the daemon): balances, inventory,
/// realized and unrealized PnL at the last price, fees, fills and round trips.
pub fn performance(s: &StrategyRecord) -> serde_json::Value {
    let Some(doc) = s
        .state
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    else {
        return serde_json::Value::Null;
    };
    let Ok(ledger) = serde_json::from_value::<crate::engine::Ledger>(doc["ledger"].clone()) else {
        return serde_json::Value::Null;
    };
    let price = doc["last_price"]
        .as_str()
        .and_then(|p| p.parse::<rust_decimal::Decimal>().ok());
    json!({
        "initial_quote": ledger.initial_quote.normalize(),
        "quote": ledger.quote.normalize(),
        "inventory": ledger.base.normalize(),
        "realized_pnl": ledger.realized_pnl.normalize(),
        "unrealized_pnl": price.map(|p| ledger.unrealized_pnl(p).normalize()),
        "equity": price.map(|p| ledger.equity(p).normalize()),
        "last_price": price,
        "fees": ledger.fees.normalize(),
        "fills": ledger.fills,
        "round_trips": ledger.round_trips,
        "winning_round_trips": ledger.winning_round_trips,
        "win_rate_pct": (ledger.round_trips > 0).then(|| {
            (rust_decimal::Decimal::from(ledger.winning_round_trips * 100)
                / rust_decimal::Decimal::from(ledger.round_trips))
            .round_dp(1)
        }),
        // Gross of gas (fees included), and net of the gas the fills paid (in quote, each at
        // its conversion price): one definition for live, paper and backtests.
        "total_pnl": price.map(|p| (ledger.equity(p) - ledger.initial_quote).normalize()),
        "gas": ledger.gas.normalize(),
        "gas_bnb": ledger.gas_bnb.normalize(),
        "total_pnl_net_of_gas": price
            .map(|p| (ledger.equity(p) - ledger.initial_quote - ledger.gas).normalize()),
    })
}
