//! An SVG heatmap of a sweep's metric over two varied parameters: each cell shows the best grid
//! with those two values (best over every other varied parameter), red for the worst, green for
//! the best. Plain text, no clock: the same sweep gives the same bytes.

use std::fmt::Write as _;

use serde_json::Value;

use super::chart::esc;
use super::sweep::{Metric, SweepRow, Vary};

const CELL_W: usize = 84;
const CELL_H: usize = 28;
const LEFT: usize = 110;
const TOP: usize = 60;

/// Red (0) through yellow (0.5) to green (1).
fn colour(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let (a, b, u) = if t < 0.5 {
        ((215.0, 48.0, 39.0), (254.0, 224.0, 139.0), t * 2.0)
    } else {
        ((254.0, 224.0, 139.0), (26.0, 152.0, 80.0), (t - 0.5) * 2.0)
    };
    let mix = |x: f64, y: f64| (x + (y - x) * u).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// `rows` must be ranked (best first): the first row met for a cell is its best.
pub fn render_heatmap(
    x: &Vary,
    y: &Vary,
    rows: &[SweepRow],
    metric: Metric,
    title: &str,
) -> String {
    let value_of = |r: &SweepRow, key: &str| {
        r.values
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut best: Vec<Vec<Option<&SweepRow>>> = vec![vec![None; x.values.len()]; y.values.len()];
    for r in rows {
        let (xv, yv) = (value_of(r, &x.key), value_of(r, &y.key));
        let (Some(i), Some(j)) = (
            x.values.iter().position(|v| *v == xv),
            y.values.iter().position(|v| *v == yv),
        ) else {
            continue;
        };
        if best[j][i].is_none() {
            best[j][i] = Some(r);
        }
    }
    let scores: Vec<f64> = best
        .iter()
        .flatten()
        .flatten()
        .map(|r| metric.score(&r.figures))
        .filter(|s| s.is_finite())
        .collect();
    let lo = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = LEFT + CELL_W * x.values.len() + 20;
    let height = TOP + CELL_H * y.values.len() + 50;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{width}" height="{height}" fill="white"/><text x="10" y="20" font-size="14">{}</text><text x="10" y="38" fill="grey">{} (best over the other parameters; green is better)</text>"#,
        esc(title),
        metric.name()
    );
    for (j, row) in best.iter().enumerate() {
        // The first y value at the bottom, as on a chart's axis.
        let top = TOP + CELL_H * (y.values.len() - 1 - j);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LEFT - 6,
            top + CELL_H / 2 + 4,
            esc(&y.values[j])
        );
        for (i, cell) in row.iter().enumerate() {
            let left = LEFT + CELL_W * i;
            let (fill, label) = match cell {
                Some(r) => {
                    let s = metric.score(&r.figures);
                    let t = if hi > lo { (s - lo) / (hi - lo) } else { 1.0 };
                    let t = if s == f64::NEG_INFINITY { 0.0 } else { t };
                    let shown = metric.shown(&r.figures);
                    // Two decimals are what a cell has room for; the CSV has them all.
                    let short = shown
                        .parse::<rust_decimal::Decimal>()
                        .map(|d| d.round_dp(2).to_string())
                        .unwrap_or(shown);
                    (colour(t), short)
                }
                None => ("#eeeeee".to_string(), "-".to_string()),
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{left}" y="{top}" width="{CELL_W}" height="{CELL_H}" fill="{fill}" stroke="white"/><text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                left + CELL_W / 2,
                top + CELL_H / 2 + 4,
                esc(&label)
            );
        }
    }
    let axis_y = TOP + CELL_H * y.values.len();
    for (i, v) in x.values.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + CELL_W * i + CELL_W / 2,
            axis_y + 16,
            esc(v)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">{}</text><text x="12" y="{}" font-size="12">{}</text>"#,
        LEFT + CELL_W * x.values.len() / 2,
        axis_y + 36,
        esc(&x.key),
        TOP - 6,
        esc(&y.key)
    );
    svg.push_str("</svg>\n");
    svg
}
