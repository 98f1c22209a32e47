//! The Backtests page: stored runs (`/api/v1/backtests`, one with its chart) and the sweeps in
//! `data/sweeps/` with their heat maps. The drawings are files the bot wrote; they are served
//! only from beneath their own folders.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::super::parse_id;
use super::super::{ApiError, ApiState};
use super::pages::{limit_of, HistoryLimit};
use crate::backtest::record::{outputs_root, sweeps_root};

/// A stored chart or heat map larger than this is not served (they are tens of KB).
const MAX_SVG_BYTES: u64 = 8 * 1024 * 1024;
/// A sweep's rows.json read for its best rows (larger ones are listed without them).
const MAX_ROWS_BYTES: u64 = 1024 * 1024;

/// A sweep's folder name as the API takes it: the digits and letters `backtest sweep` names
/// them with, never a path.
fn sweep_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Sweep folders (`<root>/<name>/`), newest first, with their best rows.
fn list_sweeps(root: &FsPath) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| sweep_name_ok(n))
        .collect();
    names.sort_by(|a, b| b.cmp(a));
    names.truncate(20);
    names
        .into_iter()
        .map(|name| {
            let dir = root.join(&name);
            let rows: Value =
                crate::private_files::read_own(&dir.join("rows.json"), MAX_ROWS_BYTES)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or(Value::Null);
            let top: Vec<Value> = rows
                .get("rows")
                .or(Some(&rows))
                .and_then(Value::as_array)
                .map(|r| r.iter().take(10).cloned().collect())
                .unwrap_or_default();
            json!({
                "name": name,
                "heatmap": dir.join("heatmap.svg").is_file(),
                "top_rows": top,
            })
        })
        .collect()
}

/// The stored backtests with their figures, and the sweeps with their heat maps.
pub async fn backtests(
    State(st): State<ApiState>,
    q: Result<Query<HistoryLimit>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q?;
    let limit = limit_of(&q, 50, 1000)?;
    let runs = st.store.list_backtests(limit).await?;
    let root = sweeps_root(&st.config.base_dir);
    // File reads off the runtime's workers (the engine's neighbours).
    let sweeps = tokio::task::spawn_blocking(move || list_sweeps(&root))
        .await
        .unwrap_or_default();
    Ok(Json(json!({"backtests": runs, "sweeps": sweeps})))
}

pub async fn backtest(
    State(st): State<ApiState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let run = st.store.get_backtest(parse_id(&id, "backtest id")?).await?;
    Ok(Json(json!(run)))
}

/// A file the bot wrote under `root`, read only when it resolves there and no link is on the
/// way (a folder made a link to elsewhere included).
fn read_beneath(root: &FsPath, path: &FsPath) -> Result<Vec<u8>, String> {
    let outside = || {
        format!(
            "{} is not a file of the bot's under {}",
            path.display(),
            root.display()
        )
    };
    // Links above `root` (a home folder on another disk) are the operator's; beneath it none.
    let rel = path.strip_prefix(root).map_err(|_| outside())?;
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(outside());
    }
    let croot = std::fs::canonicalize(root).map_err(|e| e.to_string())?;
    let real = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    if real != croot.join(rel) {
        return Err(outside());
    }
    crate::private_files::read_own(&real, MAX_SVG_BYTES).map_err(|e| e.to_string())
}

fn svg(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            // Opened on its own, the drawing may run nothing and load nothing.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            ),
        ],
        bytes,
    )
        .into_response()
}

/// A stored backtest's chart (SVG), read from the backtests' own folder only.
pub async fn backtest_chart(
    State(st): State<ApiState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let run = st.store.get_backtest(parse_id(&id, "backtest id")?).await?;
    let Some(path) = run.chart.as_deref().map(PathBuf::from) else {
        return Err(ApiError::NotFound(format!(
            "backtest {} has no chart",
            run.id
        )));
    };
    let root = outputs_root(&st.config.base_dir);
    let id = run.id;
    let bytes = tokio::task::spawn_blocking(move || read_beneath(&root, &path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::NotFound(format!("backtest {id}'s chart: {e}")))?;
    Ok(svg(bytes))
}

/// A sweep's heat map (SVG).
pub async fn sweep_heatmap(
    State(st): State<ApiState>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = name?;
    if !sweep_name_ok(&name) {
        return Err(ApiError::BadRequest(format!(
            "sweep {name:?}: not a sweep's name"
        )));
    }
    let root = sweeps_root(&st.config.base_dir);
    let path = root.join(&name).join("heatmap.svg");
    let bytes = tokio::task::spawn_blocking(move || read_beneath(&root, &path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|_| ApiError::NotFound(format!("sweep {name} has no heat map")))?;
    Ok(svg(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_beneath_the_root_is_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("backtests");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(root.join("1")).expect("dir");
        std::fs::create_dir_all(&elsewhere).expect("dir");
        std::fs::write(root.join("1/chart.svg"), "<svg/>").expect("write");
        std::fs::write(elsewhere.join("chart.svg"), "secret").expect("write");
        assert_eq!(
            read_beneath(&root, &root.join("1/chart.svg"))
                .ok()
                .as_deref(),
            Some(&b"<svg/>"[..])
        );
        std::os::unix::fs::symlink(&elsewhere, root.join("2")).expect("link");
        assert!(
            read_beneath(&root, &root.join("2/chart.svg")).is_err(),
            "a linked folder"
        );
        std::os::unix::fs::symlink(elsewhere.join("chart.svg"), root.join("1/link.svg"))
            .expect("link");
        assert!(
            read_beneath(&root, &root.join("1/link.svg")).is_err(),
            "a linked file"
        );
        assert!(read_beneath(&root, &root.join("1/../../elsewhere/chart.svg")).is_err());
        assert!(read_beneath(&root, &elsewhere.join("chart.svg")).is_err());
    }

    #[test]
    fn sweep_names_are_never_paths() {
        assert!(sweep_name_ok("1765000000000"));
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "x y", &"9".repeat(65)] {
            assert!(!sweep_name_ok(bad), "{bad:?}");
        }
    }
}
