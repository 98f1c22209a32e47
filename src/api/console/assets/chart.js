// A small line chart on a canvas, written for this console (no third-party code): price or
// equity series, horizontal levels (a grid's), and markers (fills) with a tooltip each.
"use strict";
(function () {
  const PAD = { left: 70, right: 12, top: 10, bottom: 24 };

  function fmt(v) {
    const a = Math.abs(v);
    if (a >= 1000) return v.toFixed(0);
    if (a >= 1) return v.toFixed(2);
    return v.toPrecision(4);
  }

  function timeLabel(ms) {
    const d = new Date(ms);
    return d.toISOString().slice(11, 19);
  }

  // spec: { series: [{points: [[ms, value]], color}], levels: [{value, color}],
  //         markers: [{at, value, side, label}], empty: "text when nothing to draw" }
  function draw(canvas, spec) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    const pts = [];
    for (const s of spec.series || []) for (const p of s.points) pts.push(p);
    for (const m of spec.markers || []) pts.push([m.at, m.value]);
    canvas._hits = [];
    canvas.dataset.markers = String((spec.markers || []).length);
    canvas.dataset.points = String(pts.length);
    if (pts.length === 0) {
      ctx.fillStyle = "#8a97a3";
      ctx.fillText(spec.empty || "no data yet", PAD.left, h / 2);
      return;
    }
    let t0 = Infinity, t1 = -Infinity, v0 = Infinity, v1 = -Infinity;
    for (const [t, v] of pts) {
      if (t < t0) t0 = t; if (t > t1) t1 = t;
      if (v < v0) v0 = v; if (v > v1) v1 = v;
    }
    // Levels widen the range only near the data: a grid far from the price would flatten it.
    const span0 = Math.max(v1 - v0, Math.abs(v1) * 0.002, 1e-12);
    const levels = (spec.levels || []).filter(l => l.value >= v0 - span0 * 1.5 && l.value <= v1 + span0 * 1.5);
    for (const l of levels) { if (l.value < v0) v0 = l.value; if (l.value > v1) v1 = l.value; }
    if (t1 === t0) { t0 -= 30000; t1 += 30000; }
    const pad = (v1 - v0) * 0.06 || Math.abs(v1) * 0.001 || 1;
    v0 -= pad; v1 += pad;
    const X = t => PAD.left + (t - t0) / (t1 - t0) * (w - PAD.left - PAD.right);
    const Y = v => PAD.top + (v1 - v) / (v1 - v0) * (h - PAD.top - PAD.bottom);
    // Axes
    ctx.strokeStyle = "#2a3540"; ctx.fillStyle = "#8a97a3"; ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = v0 + (v1 - v0) * i / 4, y = Y(v);
      ctx.beginPath(); ctx.moveTo(PAD.left, y); ctx.lineTo(w - PAD.right, y); ctx.stroke();
      ctx.fillText(fmt(v), 4, y + 4);
    }
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (t1 - t0) * i / 4;
      ctx.fillText(timeLabel(t), Math.min(Math.max(X(t) - 22, PAD.left - 22), w - 50), h - 6);
    }
    // Levels
    ctx.setLineDash([4, 4]);
    for (const l of levels) {
      ctx.strokeStyle = l.color || "#58a6ff55";
      const y = Y(l.value);
      ctx.beginPath(); ctx.moveTo(PAD.left, y); ctx.lineTo(w - PAD.right, y); ctx.stroke();
    }
    ctx.setLineDash([]);
    // Series
    for (const s of spec.series || []) {
      if (s.points.length === 0) continue;
      ctx.strokeStyle = s.color || "#d8dee4"; ctx.lineWidth = 1.5;
      ctx.beginPath();
      s.points.forEach(([t, v], i) => i === 0 ? ctx.moveTo(X(t), Y(v)) : ctx.lineTo(X(t), Y(v)));
      if (s.points.length === 1) { const [t, v] = s.points[0]; ctx.lineTo(X(t) + 2, Y(v)); }
      ctx.stroke();
    }
    // Markers: up triangles for buys, down for sells.
    for (const m of spec.markers || []) {
      const x = X(m.at), y = Y(m.value), buy = m.side === "buy";
      ctx.fillStyle = buy ? "#3fb950" : "#f85149";
      ctx.beginPath();
      if (buy) { ctx.moveTo(x, y - 7); ctx.lineTo(x - 6, y + 5); ctx.lineTo(x + 6, y + 5); }
      else { ctx.moveTo(x, y + 7); ctx.lineTo(x - 6, y - 5); ctx.lineTo(x + 6, y - 5); }
      ctx.closePath(); ctx.fill();
      canvas._hits.push({ x, y, label: m.label });
    }
  }

  function attachTooltip(canvas, tip) {
    canvas.addEventListener("mousemove", e => {
      const r = canvas.getBoundingClientRect();
      const x = e.clientX - r.left, y = e.clientY - r.top;
      let best = null, bd = 100;
      for (const hit of canvas._hits || []) {
        const d = (hit.x - x) ** 2 + (hit.y - y) ** 2;
        if (d < bd) { bd = d; best = hit; }
      }
      if (best) {
        tip.textContent = best.label;
        tip.style.left = (e.clientX + 12) + "px";
        tip.style.top = (e.clientY + 12) + "px";
        tip.hidden = false;
      } else tip.hidden = true;
    });
    canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  }

  window.ConsoleChart = { draw, attachTooltip };
})();
