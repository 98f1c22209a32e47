//! `/api/v1/events`: the console's push stream (server-sent events, behind the token like every
//! other route). First a `hello` (when this daemon started: a page that sees it change knows
//! the daemon restarted and reloads what it shows), then the latest overview and prices, then
//! what the hub broadcasts. A console too slow to keep up is sent `resync` (it re-reads its
//! page) instead of being buffered for without end. The stream ends when the daemon stops, so
//! a graceful shutdown never waits on an open console.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::super::ApiState;
use super::hub::Push;

fn event(p: &Push) -> Event {
    Event::default().event(p.event).data(p.data.as_str())
}

pub async fn events(
    State(st): State<ApiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel::<Event>(64);
    let mut pushes = st.hub.subscribe(&st.store).await;
    let mut shutdown = st.shutdown.subscribe();
    let hello = json!({
        "started_at": st.started_at_ms,
        "pid": std::process::id(),
        "explorer_tx_url": st.config.api.explorer_tx_url,
    })
    .to_string();
    let first = st.hub.snapshot();
    tokio::spawn(async move {
        if tx
            .send(Event::default().event("hello").data(hello))
            .await
            .is_err()
        {
            return;
        }
        for p in &first {
            if tx.send(event(p)).await.is_err() {
                return;
            }
        }
        loop {
            let next = tokio::select! {
                p = pushes.recv() => p,
                _ = shutdown.wait_for(|s| *s) => return,
                // The page is gone (its stream dropped): stop reading for it.
                _ = tx.closed() => return,
            };
            let out = match next {
                Ok(p) => event(&p),
                Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                    .event("resync")
                    .data(json!({"missed": n}).to_string()),
                Err(broadcast::error::RecvError::Closed) => return,
            };
            // A page that stopped reading holds this send; the daemon's stop must not wait on it.
            tokio::select! {
                sent = tx.send(out) => if sent.is_err() { return },
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    });
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}
