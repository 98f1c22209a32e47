//! The Prometheus text exposition of [`Metrics`] (version 0.0.4), what `GET /metrics` answers.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rust_decimal::Decimal;

use super::{Metrics, PnlGauges, StrategyMetrics, EDGES};
use crate::market::feed::{FeedState, SymbolStatus};

impl Metrics {
    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self, feed: &FeedState, stale_after_ms: i64, now_ms: i64) -> String {
        let mut s = String::with_capacity(8 * 1024);
        let symbols = feed.symbol_status(now_ms, stale_after_ms);
        let per_symbol = |value: &dyn Fn(&SymbolStatus) -> String| {
            symbols
                .iter()
                .map(|sym| (format!("symbol=\"{}\"", sym.stream), value(sym)))
                .collect::<Vec<_>>()
        };
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed).to_string();
        family(
            &mut s,
            COUNTER,
            "bsc_bot_ticks_received_total",
            "Trades received from the market feed.",
            per_symbol(&|sym| sym.ticks.to_string()),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_last_tick_age_seconds",
            "Seconds since the symbol's last trade (-1: none yet).",
            per_symbol(&|sym| {
                sym.last_tick_age_ms
                    .map(|a| a as f64 / 1000.0)
                    .unwrap_or(-1.0)
                    .to_string()
            }),
        );
        family(
            &mut s,
            COUNTER,
            "bsc_bot_trades_dropped_stale_total",
            "Trades not traded on: they arrived more than market.stale_after_secs behind their exchange time.",
            per_symbol(&|sym| sym.stale_dropped.to_string()),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_feed_clock_offset_seconds",
            "Receive time minus exchange time of the symbol's last trade (link delay plus host clock offset).",
            symbols
                .iter()
                .filter_map(|sym| {
                    Some((
                        format!("symbol=\"{}\"", sym.stream),
                        (sym.clock_offset_ms? as f64 / 1000.0).to_string(),
                    ))
                })
                .collect::<Vec<_>>(),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_feed_stale",
            "1 when the symbol's feed is stale.",
            per_symbol(&|sym| u8::from(sym.stale).to_string()),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_websocket_connections",
            "Open market-data WebSocket connections.",
            unlabelled(u8::from(feed.connected.load(Ordering::Relaxed))),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_persist_backlog",
            "Engine writes (events) waiting for the database.",
            unlabelled(self.persist_backlog()),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_store_down",
            "1 while the database cannot be written (no orders are placed meanwhile).",
            unlabelled(load(&self.store_down)),
        );
        family(
            &mut s,
            COUNTER,
            "bsc_bot_persist_failures_total",
            "Failed database write attempts (every batch is retried until it commits).",
            unlabelled(load(&self.persist_failures)),
        );
        family(
            &mut s,
            COUNTER,
            "bsc_bot_orders_failed_total",
            "Orders the venue answered with a failure.",
            vec![
                (
                    "retryable=\"true\"".to_string(),
                    load(&self.orders_failed_retryable),
                ),
                (
                    "retryable=\"false\"".to_string(),
                    load(&self.orders_failed_permanent),
                ),
            ],
        );
        family(
            &mut s,
            COUNTER,
            "bsc_bot_feed_reconnects_total",
            "Market feed reconnections.",
            unlabelled(load(&feed.reconnects)),
        );
        family(
            &mut s,
            COUNTER,
            "bsc_bot_feed_malformed_frames_total",
            "Frames that could not be parsed (skipped).",
            unlabelled(load(&feed.malformed_frames)),
        );
        let markets = self.markets_now();
        let per_market =
            |value: &dyn Fn(&crate::model::divergence::MarketPrices) -> Option<Decimal>| {
                markets
                    .iter()
                    .filter_map(|(sym, m)| {
                        Some((format!("symbol=\"{sym}\""), value(m)?.to_string()))
                    })
                    .collect::<Vec<_>>()
            };
        family(
            &mut s,
            GAUGE,
            "bsc_bot_dex_price",
            "A live market's pool price (quote per base): what its swaps get.",
            per_market(&|m| m.dex_price),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_reference_price",
            "The reference exchange's last trade price for a live market.",
            per_market(&|m| m.reference_price),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_dex_divergence_bps",
            "(pool price - reference price) / reference price, in basis points.",
            per_market(&|m| m.divergence_bps),
        );
        let strategies: Vec<(i64, Arc<StrategyMetrics>)> = self
            .strategies
            .lock()
            .map(|m| m.iter().map(|(id, sm)| (*id, sm.clone())).collect())
            .unwrap_or_default();
        let per_strategy = |pairs: &dyn Fn(&StrategyMetrics) -> Vec<(String, String)>| {
            strategies
                .iter()
                .flat_map(|(sid, sm)| {
                    pairs(sm)
                        .into_iter()
                        .map(move |(label, v)| (format!("strategy=\"{sid}\",{label}"), v))
                })
                .collect::<Vec<_>>()
        };
        family(
            &mut s,
            COUNTER,
            "bsc_bot_orders_total",
            "Orders by strategy and status.",
            per_strategy(&|sm| {
                vec![
                    ("status=\"placed\"".into(), load(&sm.orders_placed)),
                    ("status=\"cancelled\"".into(), load(&sm.orders_cancelled)),
                    ("status=\"failed\"".into(), load(&sm.orders_failed)),
                ]
            }),
        );
        family(
            &mut s,
            COUNTER,
            "bsc_bot_fills_total",
            "Fills by strategy and side.",
            per_strategy(&|sm| {
                vec![
                    ("side=\"buy\"".into(), load(&sm.fills_buy)),
                    ("side=\"sell\"".into(), load(&sm.fills_sell)),
                ]
            }),
        );
        type Pick = fn(&PnlGauges) -> Decimal;
        let gauges: [(&str, &str, Pick); 6] = [
            (
                "bsc_bot_strategy_realized_pnl",
                "Realized PnL in quote.",
                |g| g.realized,
            ),
            (
                "bsc_bot_strategy_unrealized_pnl",
                "Unrealized PnL at the last price, in quote.",
                |g| g.unrealized,
            ),
            ("bsc_bot_strategy_inventory", "Base held.", |g| g.inventory),
            (
                "bsc_bot_strategy_equity",
                "Quote + base x last price.",
                |g| g.equity,
            ),
            (
                "bsc_bot_strategy_daily_loss",
                "Loss since 00:00 UTC in quote, realized + unrealized (negative: a gain); \
                 risk.daily_loss_limit pauses the strategy above it.",
                |g| g.daily_loss,
            ),
            (
                "bsc_bot_strategy_error_rate",
                "Failed / answered orders within risk.error_rate_window_secs (0..1).",
                |g| g.error_rate,
            ),
        ];
        // One consistent reading per strategy for all the gauges.
        let pnl: Vec<(i64, PnlGauges)> = strategies
            .iter()
            .map(|(sid, sm)| (*sid, sm.gauges()))
            .collect();
        for (name, help, pick) in gauges {
            family(
                &mut s,
                GAUGE,
                name,
                help,
                pnl.iter()
                    .map(|(sid, g)| (format!("strategy=\"{sid}\""), pick(g).to_string())),
            );
        }
        if let Some(c) = self.cluster.lock().ok().and_then(|c| c.clone()) {
            let node = format!("node=\"{}\"", c.node);
            family(
                &mut s,
                GAUGE,
                "bsc_bot_cluster_units",
                "Units of work (a wallet with its live strategies, a paper strategy, funds, rollouts) this daemon holds.",
                [(node.clone(), c.units.len().to_string())],
            );
            family(
                &mut s,
                GAUGE,
                "bsc_bot_cluster_unit_lease_seconds",
                "Seconds left on each held unit's lease (database clock), labelled with its fencing epoch.",
                c.units.iter().map(|(unit, (epoch, left))| {
                    (
                        format!("{node},unit=\"{unit}\",epoch=\"{epoch}\""),
                        format!("{left:.3}"),
                    )
                }),
            );
            family(
                &mut s,
                GAUGE,
                "bsc_bot_lease_renew_seconds",
                "How long the last renewal of this daemon's leases took.",
                [(node.clone(), format!("{:.6}", c.last_renew_seconds))],
            );
            family(
                &mut s,
                COUNTER,
                "bsc_bot_lease_renewals_total",
                "Lease renewals, by outcome.",
                [
                    (format!("{node},outcome=\"ok\""), c.renewals.to_string()),
                    (
                        format!("{node},outcome=\"failed\""),
                        c.renew_failures.to_string(),
                    ),
                ],
            );
            family(
                &mut s,
                COUNTER,
                "bsc_bot_cluster_failovers_total",
                "Units this daemon took over from a daemon that stopped renewing its lease.",
                [(node.clone(), c.failovers.to_string())],
            );
            family(
                &mut s,
                COUNTER,
                "bsc_bot_cluster_units_lost_total",
                "Units taken from this daemon by another (it could not renew in time).",
                [(node.clone(), c.lost.to_string())],
            );
            family(
                &mut s,
                GAUGE,
                "bsc_bot_cluster_unowned_units",
                "Units on record that no live daemon holds (nothing trades them).",
                [(node.clone(), c.unowned.to_string())],
            );
            family(
                &mut s,
                GAUGE,
                "bsc_bot_cluster_lease_lapsed",
                "1 while this daemon could not renew its leases in time and trades nothing.",
                [(node, u8::from(c.lapsed).to_string())],
            );
        }
        let outflow = self.hourly_outflow.lock().map(|o| *o).unwrap_or_default();
        family(
            &mut s,
            GAUGE,
            "bsc_bot_funds_hourly_outflow",
            "Quote value that left the trading wallets within the last hour (live swap inputs).",
            unlabelled(outflow.normalize().to_string()),
        );
        let wallets: Vec<(String, String)> = self
            .wallet_bnb
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((name, address), bnb)| {
                        (
                            format!("wallet=\"{name}\",address=\"{address}\""),
                            bnb.normalize().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        family(
            &mut s,
            GAUGE,
            "bsc_bot_wallet_bnb_balance",
            "BNB held by each live trading wallet (gas), as last read from the chain.",
            wallets,
        );
        let canary = self.canary.lock().map(|c| c.clone()).unwrap_or_default();
        family(
            &mut s,
            GAUGE,
            "bsc_bot_canary_stage",
            "The stage a canary rollout is in (0 backtest, 1 paper, 2 the live canary, then each scale step).",
            canary
                .iter()
                .map(|(r, g)| (format!("rollout=\"{r}\""), g.stage.to_string())),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_canary_running",
            "1 while a canary rollout runs, 0 when it is held, paused, aborted or done (state label).",
            canary.iter().map(|(r, g)| {
                (
                    format!("rollout=\"{r}\",state=\"{}\"", g.state),
                    u8::from(g.state == "running").to_string(),
                )
            }),
        );
        let measure_label = |m: &str| {
            m.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
        };
        family(
            &mut s,
            GAUGE,
            "bsc_bot_canary_gate_value",
            "A canary gate's last measured value, by rollout, gate and measure.",
            canary.iter().flat_map(|(r, g)| {
                g.gates.iter().filter_map(move |(gate, m, v, _)| {
                    Some((
                        format!(
                            "rollout=\"{r}\",gate=\"{gate}\",measure=\"{}\"",
                            measure_label(m)
                        ),
                        v.as_ref()?.to_string(),
                    ))
                })
            }),
        );
        family(
            &mut s,
            GAUGE,
            "bsc_bot_canary_gate_passed",
            "1 when a canary gate's measure met its threshold at its last measurement.",
            canary.iter().flat_map(|(r, g)| {
                g.gates.iter().map(move |(gate, m, _, passed)| {
                    (
                        format!(
                            "rollout=\"{r}\",gate=\"{gate}\",measure=\"{}\"",
                            measure_label(m)
                        ),
                        u8::from(*passed).to_string(),
                    )
                })
            }),
        );
        let mut risk: Vec<(String, u64)> = self
            .risk_events
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect();
        risk.sort();
        family(
            &mut s,
            COUNTER,
            "bsc_bot_risk_events_total",
            "Risk events by kind.",
            risk.into_iter()
                .map(|(kind, n)| (format!("kind=\"{kind}\""), n.to_string())),
        );
        family(
            &mut s,
            COUNTER,
            "bsc_bot_alerts_total",
            "Alert deliveries by outcome.",
            [
                ("sent", &self.alerts_sent),
                ("failed", &self.alerts_failed),
                ("deduplicated", &self.alerts_deduplicated),
                ("dropped", &self.alerts_dropped),
            ]
            .map(|(outcome, v)| (format!("outcome=\"{outcome}\""), load(v))),
        );
        let h = &self.tick_to_decision;
        let count = h.count();
        let _ = writeln!(
            s,
            "# HELP bsc_bot_tick_to_decision_seconds Frame received to engine decision, per tick.\n# TYPE bsc_bot_tick_to_decision_seconds histogram"
        );
        for edge in EDGES {
            let _ = writeln!(
                s,
                "bsc_bot_tick_to_decision_seconds_bucket{{le=\"{edge}\"}} {}",
                h.cumulative_below((edge * 1e9) as u64)
            );
        }
        let _ = writeln!(
            s,
            "bsc_bot_tick_to_decision_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "bsc_bot_tick_to_decision_seconds_sum {}",
            h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(s, "bsc_bot_tick_to_decision_seconds_count {count}");
        family(
            &mut s,
            GAUGE,
            "bsc_bot_tick_to_decision_quantile_seconds",
            "Tick-to-decision latency quantiles since start.",
            [0.5, 0.9, 0.99].map(|q| {
                let v = h.quantile_ns(q).map(|ns| ns as f64 / 1e9).unwrap_or(0.0);
                (format!("quantile=\"{q}\""), v.to_string())
            }),
        );
        s
    }
}

impl Metrics {
    /// The node and database series runbook 002 reads: each RPC endpoint's request durations,
    /// the chain head's lag, and the database pool's connections (`in_use`, `idle`, `max`).
    pub fn render_infrastructure(&self, s: &mut String, pool: (u32, u32, u32)) {
        let (size, idle, max) = pool;
        family(
            s,
            GAUGE,
            "bsc_bot_db_pool_connections",
            "Database pool connections by state (max: database.max_connections).",
            [
                (
                    "state=\"in_use\"".to_string(),
                    size.saturating_sub(idle).to_string(),
                ),
                ("state=\"idle\"".to_string(), idle.to_string()),
                ("state=\"max\"".to_string(), max.to_string()),
            ],
        );
        if let Some(lag) = self.chain_head_lag_secs.lock().ok().and_then(|l| *l) {
            family(
                s,
                GAUGE,
                "bsc_bot_chain_head_lag_seconds",
                "The latest block's age by the host's clock (a node behind the chain, or a stalled chain).",
                unlabelled(lag),
            );
        }
        let latency = self
            .rpc
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|c| c.rpc_latency()))
            .unwrap_or_default();
        if latency.is_empty() {
            return;
        }
        let name = "bsc_bot_rpc_request_duration_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} RPC request duration per endpoint (every attempt, answered or not).\n# TYPE {name} histogram"
        );
        for e in &latency {
            let host = &e.host;
            for (edge, n) in crate::chain::failover::RPC_LATENCY_EDGES
                .iter()
                .zip(&e.cumulative)
            {
                let _ = writeln!(s, "{name}_bucket{{endpoint=\"{host}\",le=\"{edge}\"}} {n}");
            }
            let _ = writeln!(
                s,
                "{name}_bucket{{endpoint=\"{host}\",le=\"+Inf\"}} {}",
                e.count
            );
            let _ = writeln!(s, "{name}_sum{{endpoint=\"{host}\"}} {}", e.sum_secs);
            let _ = writeln!(s, "{name}_count{{endpoint=\"{host}\"}} {}", e.count);
        }
    }
}

const COUNTER: &str = "counter";
const GAUGE: &str = "gauge";

/// One metric family: its HELP and TYPE lines, then one sample per `(labels, value)`; labels
/// are `key="value"` pairs already joined, empty for an unlabelled sample.
fn family(
    s: &mut String,
    kind: &str,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(s, "{name} {value}");
        } else {
            let _ = writeln!(s, "{name}{{{labels}}} {value}");
        }
    }
}

fn unlabelled(value: impl std::fmt::Display) -> [(String, String); 1] {
    [(String::new(), value.to_string())]
}
