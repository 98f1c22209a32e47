//! Alerts (floor 8, may use floors 0–7) to Slack, Telegram and a JSON webhook.
//!
//! Alerts to Slack, Telegram and a generic JSON webhook.
//!
//! Raising an alert never waits: it is a `try_send` into a bounded queue (a full queue drops
//! and counts). Delivery runs in its own tasks with retries and exponential backoff, and the same
//! alert (kind + message) is sent at most once per dedupe window.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::clock::wall_clock_ms;
use crate::config::AlertsConfig;
use crate::metrics::Metrics;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub kind: String,
    pub severity: String,
    pub message: String,
    pub timestamp: i64,
}

/// The handle the rest of the daemon raises alerts with.
#[derive(Clone)]
pub struct Alerter {
    tx: mpsc::Sender<Alert>,
    metrics: Arc<Metrics>,
}

impl Alerter {
    pub fn raise(&self, kind: &str, severity: &str, message: impl Into<String>) {
        let alert = Alert {
            kind: kind.to_string(),
            severity: severity.to_string(),
            message: message.into(),
            timestamp: wall_clock_ms(),
        };
        if self.tx.try_send(alert).is_err() {
            self.metrics.alerts_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Clone)]
enum Destination {
    Slack(String),
    Telegram { url: String, chat_id: String },
    Webhook(String),
}

impl Destination {
    fn name(&self) -> &'static str {
        match self {
            Destination::Slack(_) => "slack",
            Destination::Telegram { .. } => "telegram",
            Destination::Webhook(_) => "webhook",
        }
    }

    fn request(&self, client: &reqwest::Client, a: &Alert) -> reqwest::RequestBuilder {
        let text = format!("[bsc-bot {}] {}: {}", a.severity, a.kind, a.message);
        match self {
            Destination::Slack(url) => client.post(url).json(&serde_json::json!({ "text": text })),
            Destination::Telegram { url, chat_id } => client
                .post(url)
                .json(&serde_json::json!({ "chat_id": chat_id, "text": text })),
            Destination::Webhook(url) => client.post(url).json(a),
        }
    }
}

fn destinations(config: &AlertsConfig) -> Vec<Destination> {
    let mut out = Vec::new();
    if let Ok(url) = std::env::var("BSC_BOT_SLACK_WEBHOOK_URL") {
        if !url.is_empty() {
            out.push(Destination::Slack(url));
        }
    }
    if let Ok(token) = std::env::var("BSC_BOT_TELEGRAM_BOT_TOKEN") {
        if !token.is_empty() && !config.telegram_chat_id.is_empty() {
            out.push(Destination::Telegram {
                url: format!(
                    "{}/bot{token}/sendMessage",
                    config.telegram_api_url.trim_end_matches('/')
                ),
                chat_id: config.telegram_chat_id.clone(),
            });
        }
    }
    if !config.webhook_url.is_empty() {
        out.push(Destination::Webhook(config.webhook_url.clone()));
    }
    out
}

/// Start the alert task; returns the handle to raise alerts with.
pub fn start(config: &AlertsConfig, metrics: Arc<Metrics>) -> Alerter {
    let (tx, rx) = mpsc::channel(256);
    let dests = destinations(config);
    let window = Duration::from_secs(config.dedupe_window_secs);
    let attempts = config.max_attempts.max(1);
    tokio::spawn(deliver(rx, dests, window, attempts, metrics.clone()));
    Alerter { tx, metrics }
}

async fn deliver(
    mut rx: mpsc::Receiver<Alert>,
    dests: Vec<Destination>,
    window: Duration,
    attempts: u32,
    metrics: Arc<Metrics>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "alerts disabled: cannot build an HTTP client");
            return;
        }
    };
    let mut last_sent: HashMap<(String, String), Instant> = HashMap::new();
    // Deliveries in flight are bounded so a dead endpoint cannot pile up tasks.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(16));
    while let Some(alert) = rx.recv().await {
        tracing::warn!(kind = %alert.kind, severity = %alert.severity, message = %alert.message, "alert");
        let key = (alert.kind.clone(), alert.message.clone());
        let now = Instant::now();
        if last_sent
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < window)
        {
            metrics.alerts_deduplicated.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        last_sent.insert(key, now);
        last_sent.retain(|_, t| now.duration_since(*t) < window);
        for dest in &dests {
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                metrics.alerts_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let (client, dest, alert, metrics) =
                (client.clone(), dest.clone(), alert.clone(), metrics.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let mut delay = Duration::from_millis(200);
                for attempt in 1..=attempts {
                    match dest.request(&client, &alert).send().await {
                        Ok(r) if r.status().is_success() => {
                            metrics.alerts_sent.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Ok(r) => {
                            tracing::warn!(dest = dest.name(), status = %r.status(), attempt, "alert delivery failed")
                        }
                        // without_url: a webhook URL or bot token must never reach the log.
                        Err(e) => {
                            tracing::warn!(dest = dest.name(), error = %e.without_url(), attempt, "alert delivery failed")
                        }
                    }
                    if attempt < attempts {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
                metrics.alerts_failed.fetch_add(1, Ordering::Relaxed);
            });
        }
    }
}
