//! The equity-curve chart of a backtest as a self-contained SVG: equity (left axis), price (right
//! axis), buys and sells as ticks along the price, dated x axis, and the headline figures.

use std::fmt::Write;

use crate::clock::format_ms;
use crate::model::order::Side;

use super::report::CurvePoint;

const W: f64 = 1000.0;
const H: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 80.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 60.0;

pub struct ChartText<'a> {
    pub title: &'a str,
    pub subtitle: &'a str,
}

fn nice_range(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON * hi.abs().max(1.0) {
        let pad = hi.abs().max(1.0) * 0.01;
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad, hi + pad)
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}", v)
    } else if a >= 100.0 {
        format!("{:.1}", v)
    } else {
        format!("{:.4}", v)
    }
}

/// Text made safe inside an SVG element or attribute.
pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG path through the curve's points, placed by `at`.
fn polyline(curve: &[CurvePoint], at: impl Fn(&CurvePoint) -> (f64, f64)) -> String {
    let mut path = String::with_capacity(curve.len() * 16);
    for (i, p) in curve.iter().enumerate() {
        let (px, py) = at(p);
        let _ = write!(path, "{}{px:.1},{py:.1}", if i == 0 { "M" } else { " L" });
    }
    path
}

pub fn render_svg(
    curve: &[CurvePoint],
    fills: &[(i64, Side, f64)],
    text: &ChartText<'_>,
) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{LEFT}" y="28" font-size="18" font-weight="bold" fill="#222">{}</text>
<text x="{LEFT}" y="48" font-size="12" fill="#555">{}</text>
"##,
        esc(text.title),
        esc(text.subtitle)
    );
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    if curve.len() < 2 {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" font-size="14" fill="#888">not enough data for a curve</text></svg>"##,
            LEFT + 20.0,
            TOP + 40.0
        );
        return s;
    }
    let t0 = curve[0].ts_us as f64;
    let t1 = curve[curve.len() - 1].ts_us as f64;
    let span = (t1 - t0).max(1.0);
    let (emin, emax) = curve.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.equity), b.max(p.equity))
    });
    let (pmin, pmax) = curve.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.price), b.max(p.price))
    });
    let (emin, emax) = nice_range(emin, emax);
    let (pmin, pmax) = nice_range(pmin, pmax);
    let x = |t: f64| LEFT + (t - t0) / span * pw;
    let ye = |e: f64| TOP + ph - (e - emin) / (emax - emin) * ph;
    let yp = |p: f64| TOP + ph - (p - pmin) / (pmax - pmin) * ph;

    // Grid lines and axis labels.
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let y = TOP + ph - f * ph;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/>
<text x="{:.1}" y="{:.1}" font-size="11" fill="#1f5fbf" text-anchor="end">{}</text>
<text x="{:.1}" y="{:.1}" font-size="11" fill="#999">{}</text>
"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(emin + f * (emax - emin)),
            LEFT + pw + 6.0,
            y + 4.0,
            fmt_num(pmin + f * (pmax - pmin))
        );
    }
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let t = t0 + f * span;
        let label = format_ms((t / 1000.0) as i64);
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#555" text-anchor="middle">{}</text>"##,
            x(t),
            TOP + ph + 18.0,
            esc(&label[..16.min(label.len())].replace('T', " "))
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>
<text x="16" y="{:.1}" font-size="12" fill="#1f5fbf" transform="rotate(-90 16 {:.1})" text-anchor="middle">equity (quote)</text>
<text x="{:.1}" y="{:.1}" font-size="12" fill="#999" transform="rotate(90 {:.1} {:.1})" text-anchor="middle">price</text>
"##,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        W - 14.0,
        TOP + ph / 2.0,
        W - 14.0,
        TOP + ph / 2.0
    );
    // Price, then fills on it, then equity on top.
    let path = polyline(curve, |p| (x(p.ts_us as f64), yp(p.price)));
    let _ = writeln!(
        s,
        r##"<path d="{path}" fill="none" stroke="#bbb" stroke-width="1"/>"##
    );
    for (ts, side, price) in fills {
        let (color, dy) = match side {
            Side::Buy => ("#2a9d4b", 5.0),
            Side::Sell => ("#d1453b", -5.0),
        };
        let (cx, cy) = (x(*ts as f64), yp(*price));
        let _ = writeln!(
            s,
            r##"<line x1="{cx:.1}" y1="{cy:.1}" x2="{cx:.1}" y2="{:.1}" stroke="{color}" stroke-width="1.5"/>"##,
            cy + dy
        );
    }
    let path = polyline(curve, |p| (x(p.ts_us as f64), ye(p.equity)));
    let _ = write!(
        s,
        r##"<path d="{path}" fill="none" stroke="#1f5fbf" stroke-width="2"/>
<g font-size="12"><rect x="{:.1}" y="{:.1}" width="12" height="3" fill="#1f5fbf"/><text x="{:.1}" y="{:.1}">equity</text>
<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="#bbb"/><text x="{:.1}" y="{:.1}">price</text>
<rect x="{:.1}" y="{:.1}" width="3" height="10" fill="#2a9d4b"/><text x="{:.1}" y="{:.1}">buy</text>
<rect x="{:.1}" y="{:.1}" width="3" height="10" fill="#d1453b"/><text x="{:.1}" y="{:.1}">sell</text></g>
</svg>
"##,
        W - RIGHT - 260.0,
        TOP - 12.0,
        W - RIGHT - 244.0,
        TOP - 7.0,
        W - RIGHT - 185.0,
        TOP - 12.0,
        W - RIGHT - 169.0,
        TOP - 7.0,
        W - RIGHT - 115.0,
        TOP - 16.0,
        W - RIGHT - 107.0,
        TOP - 7.0,
        W - RIGHT - 60.0,
        TOP - 16.0,
        W - RIGHT - 52.0,
        TOP - 7.0
    );
    s
}
