// The bsc-bot operator console. Everything it shows comes from the daemon's API with the
// bearer token the operator typed (kept in sessionStorage: this tab only); everything it does
// goes through the API's controls with a reason and the operator's name. Text from the API is
// only ever set as text (never parsed as HTML).
"use strict";
(function () {
  const KEY_TOKEN = "bsc-bot-token", KEY_OPERATOR = "bsc-bot-operator";
  const $ = id => document.getElementById(id);
  const app = $("app");
  let token = sessionStorage.getItem(KEY_TOKEN);
  let operator = sessionStorage.getItem(KEY_OPERATOR);
  let loginForm = $("login");
  let streamAbort = null, startedAt = null, reconnectDelay = 500, connected = false;
  let page = null; // {name, id, data, prices, ...}
  // The newest pushed price per market: a page drawn from an older snapshot shows it instead.
  const lastPrices = {};
  // The overview's line of the strategy page's strategy, as last pushed.
  let strategySeen = null;
  let refreshTimer = null, pendingAction = null;
  // When the stream last brought anything (keep-alives included): a silent one is dead.
  let lastByteAt = 0;

  // ---------- DOM helpers ----------
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k.startsWith("data-")) el.setAttribute(k, v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  // The page's content; absent parts (null) are left out, never shown as "null".
  const show = (...kids) => app.replaceChildren(...kids.flat().filter(k => k !== null && k !== undefined && k !== false));
  const str = v => v === null || v === undefined ? "—" : (typeof v === "object" ? JSON.stringify(v) : String(v));
  const num = v => v === null || v === undefined || v === "" ? NaN : Number(v);
  function money(v, dp) {
    const n = num(v);
    if (!isFinite(n)) return "—";
    return n.toLocaleString("en-US", { maximumFractionDigits: dp === undefined ? 4 : dp });
  }
  const time = ms => ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z" : "—";
  const cls = v => { const n = num(v); return !isFinite(n) || n === 0 ? "" : (n > 0 ? "ok" : "bad"); };
  function table(headers, rows, attrs) {
    return h("div", { class: "scroll" }, h("table", attrs || {},
      h("thead", {}, h("tr", {}, headers.map(c => h("th", { text: c })))),
      h("tbody", {}, rows)));
  }
  function td(v, c) { return h("td", { class: c || "", text: str(v) }); }
  function tdNum(v, c) { return h("td", { class: "num " + (c || ""), text: v }); }
  function explorerLink(tx, explorer, none) {
    if (!tx) return h("span", { class: "muted", text: none || "—" });
    const url = (explorer || "").replace("{tx}", tx);
    return /^https?:\/\//.test(url) ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: tx.slice(0, 10) + "…", title: tx }) : h("span", { text: tx });
  }

  // ---------- API ----------
  class Unauthorized extends Error {}
  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: "Bearer " + token }, opts.headers);
    const r = await fetch(path, opts);
    if (r.status === 401) throw new Unauthorized("the daemon refused the token");
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: { message: text } }; }
    if (!r.ok) throw new Error((body && body.error && body.error.message) || ("HTTP " + r.status));
    return body;
  }
  async function apiBlob(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
    if (r.status === 401) throw new Unauthorized("the daemon refused the token");
    if (!r.ok) throw new Error("HTTP " + r.status);
    return URL.createObjectURL(await r.blob());
  }

  // ---------- login ----------
  function showLogin(message) {
    stopStream();
    token = null; operator = null; page = null; startedAt = null;
    if (refreshTimer) { clearTimeout(refreshTimer); refreshTimer = null; }
    $("dialog").hidden = true; pendingAction = null;
    sessionStorage.removeItem(KEY_TOKEN);
    $("nav").hidden = true; $("who").hidden = true; $("logout").hidden = true;
    $("banner").hidden = true;
    show(loginForm);
    loginForm.hidden = false;
    $("login-error").textContent = message || "";
    if (!$("operator").value) $("operator").value = sessionStorage.getItem(KEY_OPERATOR) || "";
  }
  loginForm.addEventListener("submit", async e => {
    e.preventDefault();
    const t = $("token").value.trim(), who = $("operator").value.trim();
    if (!t || !who) { $("login-error").textContent = "token and name are both needed"; return; }
    token = t;
    try {
      await api("/api/v1/overview");
    } catch (err) {
      token = null;
      $("login-error").textContent = err instanceof Unauthorized ? "Wrong token: the daemon refused it." : ("Cannot reach the daemon: " + err.message);
      return;
    }
    operator = who;
    sessionStorage.setItem(KEY_TOKEN, t);
    sessionStorage.setItem(KEY_OPERATOR, who);
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", () => showLogin("Logged out."));

  function start() {
    $("nav").hidden = false; $("logout").hidden = false;
    $("who").hidden = false; $("who").textContent = "operator: " + operator;
    startStream();
    route();
  }

  // ---------- routing ----------
  window.addEventListener("hashchange", () => { if (token) route(); });
  function route() {
    const hash = location.hash || "#/";
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === hash);
    let m;
    if ((m = hash.match(/^#\/strategy\/(\d+)$/))) return load({ name: "strategy", id: Number(m[1]) });
    if (hash === "#/funds") return load({ name: "funds" });
    if (hash === "#/backtests") return load({ name: "backtests" });
    return load({ name: "overview" });
  }
  const PAGES = {
    overview: { path: () => "/api/v1/overview", render: renderOverview },
    strategy: { path: p => "/api/v1/strategies/" + p.id + "/page", render: renderStrategy },
    funds: { path: () => "/api/v1/funds", render: renderFunds },
    backtests: { path: () => "/api/v1/backtests", render: renderBacktests },
  };
  async function load(p) {
    if (!page || page.name !== p.name || page.id !== p.id) strategySeen = null;
    page = p;
    app.setAttribute("data-page", p.name);
    app.setAttribute("data-loaded", "false");
    try {
      const data = await api(PAGES[p.name].path(p));
      if (page !== p) return;
      p.data = data;
      PAGES[p.name].render(p);
      app.setAttribute("data-loaded", "true");
    } catch (err) {
      if (err instanceof Unauthorized) return showLogin("The daemon refused the token (was it changed?). Log in again.");
      if (page !== p) return;
      show(h("p", { class: "error", id: "page-error", text: "Could not load this page: " + err.message }));
    }
  }
  const reload = () => { if (page) load({ name: page.name, id: page.id }); };

  // ---------- controls ----------
  function confirmAction(title, text, run) {
    pendingAction = run;
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-actor").textContent = operator;
    $("confirm-reason").value = "";
    $("confirm-error").textContent = "";
    $("dialog").hidden = false;
    $("confirm-reason").focus();
  }
  $("confirm-cancel").addEventListener("click", () => { $("dialog").hidden = true; pendingAction = null; });
  $("confirm").addEventListener("submit", async e => {
    e.preventDefault();
    const reason = $("confirm-reason").value.trim();
    if (!reason) { $("confirm-error").textContent = "A reason is required: it goes to the audit log."; return; }
    if (!pendingAction) return;
    $("confirm-ok").disabled = true;
    try {
      await pendingAction({ reason, actor: operator, via: "console" });
      $("dialog").hidden = true; pendingAction = null;
      reload();
    } catch (err) {
      if (err instanceof Unauthorized) { $("dialog").hidden = true; return showLogin("The daemon refused the token."); }
      $("confirm-error").textContent = "Refused: " + err.message;
    } finally { $("confirm-ok").disabled = false; }
  });
  const post = (path, body) => api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  function strategyButtons(s) {
    const act = (action, label) => h("button", {
      type: "button", "data-action": action, "data-strategy": String(s.id), class: action === "stop" ? "danger" : "",
      onclick: () => confirmAction(label + " strategy " + s.id + " (" + s.name + ")",
        action === "stop" ? "Stopping cancels its conditional orders; a stopped strategy does not come back." : "The daemon applies it within a moment.",
        body => post("/api/v1/strategies/" + s.id + "/" + action, body)),
    }, label);
    if (s.status === "active") return [act("pause", "Pause"), " ", act("stop", "Stop")];
    if (s.status === "paused") return [act("resume", "Resume"), " ", act("stop", "Stop")];
    return [];
  }

  // ---------- overview ----------
  function pill(text, kind) { return h("span", { class: "pill " + (kind || ""), text }); }
  function healthKind(s) { return s === "ok" ? "ok" : (s === "degraded" ? "warn" : "bad"); }
  function priceCell(s) {
    const stream = s.price_stream;
    const pushed = lastPrices[stream];
    const price = pushed ? pushed.price : s.price;
    const attrs = { "data-price-stream": stream, "data-price": price === null || price === undefined ? null : String(price) };
    return h("td", { class: "num" }, h("span", attrs, price ? money(price, 8) : "—"));
  }
  function perfCell(s, key, text, c) {
    return h("td", { class: "num " + c, "data-perf-of": String(s.id), "data-perf": key, text });
  }
  function renderOverview(p) {
    const d = p.data;
    const ks = d.kill_switch || {}, mode = d.trading_mode || {};
    const modeSelect = h("select", { id: "mode-select" }, ["active", "reducing", "halted"].map(m => h("option", { value: m, selected: m === mode.mode, text: m })));
    const cards = h("div", { class: "cards" },
      h("div", { class: "card", id: "health" }, h("div", { class: "label", text: "daemon health" }),
        pill(d.health, healthKind(d.health)),
        h("span", { class: "muted", id: "uptime", text: "  pid " + d.daemon.pid + " · up " + d.daemon.uptime_secs + " s · v" + d.daemon.version }),
        h("ul", { id: "reasons" }, (d.reasons || []).map(r => h("li", { text: r })))),
      h("div", { class: "card" }, h("div", { class: "label", text: "services" }),
        h("div", {}, Object.entries(d.services || {}).map(([k, v]) => h("div", {}, h("span", { class: "muted", text: k + ": " }), str(v))))),
      h("div", { class: "card", id: "feeds" }, h("div", { class: "label", text: "market feed" }),
        pill(d.feed.connected ? "connected" : "disconnected", d.feed.connected ? "ok" : "bad"),
        h("div", { class: "muted", text: d.feed.url || "" }),
        (d.feed.symbols || []).map(s => h("div", {}, s.stream + " ",
          h("strong", { "data-price-stream": s.stream, text: lastPrices[s.stream] ? money(lastPrices[s.stream].price, 8) : (s.last || "—") }),
          s.stale ? h("span", { class: "warn", text: " stale" }) : null)),
        Object.entries(d.pools || {}).map(([market, m]) => h("div", { "data-pool": market },
          market + " pool " + money(m.dex_price, 8) + " · reference " + money(m.reference_price, 8) + " · " + str(m.divergence_bps) + " bps",
          h("span", { class: "muted", text: " (" + time(m.at_ms) + ")" })))),
      h("div", { class: "card", id: "kill-switch" }, h("div", { class: "label", text: "kill switch" }),
        pill(ks.engaged ? "ENGAGED" : "off", ks.engaged ? "bad" : "ok"),
        ks.engaged ? h("div", { class: "muted", text: ks.reason || "" }) : null,
        h("div", {}, ks.engaged
          ? h("button", { type: "button", id: "emergency-clear", onclick: () => confirmAction("Clear the kill switch", "Strategies stay stopped; new ones may be started again.", b => post("/api/v1/emergency/clear", b)) }, "Clear")
          : h("button", { type: "button", id: "emergency-stop-all", class: "danger", onclick: () => confirmAction("EMERGENCY: stop everything", "Engages the kill switch and stops every strategy.", b => post("/api/v1/emergency/stop-all", b)) }, "Emergency stop-all"))),
      h("div", { class: "card", id: "trading-mode" }, h("div", { class: "label", text: "trading mode" }),
        pill(mode.mode || "?", mode.mode === "active" ? "ok" : "warn"),
        mode.reason ? h("div", { class: "muted", text: mode.reason }) : null,
        h("div", {}, modeSelect, " ", h("button", { type: "button", id: "set-mode", onclick: () => {
          const m = modeSelect.value;
          confirmAction("Set the trading mode to " + m, "Applies to every strategy.", b => post("/api/v1/risk/mode", Object.assign({ mode: m }, b)));
        } }, "Set"))));
    const rows = (d.strategies || []).slice().sort((a, b) => (a.status === "stopped") - (b.status === "stopped") || a.id - b.id).map(s => {
      const perf = s.performance || {};
      const [base, quote] = (s.symbol || "/").split("/");
      const why = s.not_running || s.status_reason;
      return h("tr", { "data-strategy-id": String(s.id), "data-status": s.status },
        td(s.id),
        h("td", {}, h("a", { href: "#/strategy/" + s.id, text: s.name })),
        td(s.mode),
        h("td", {}, pill(s.status, s.status === "active" ? "ok" : (s.status === "paused" ? "warn" : "")), why ? h("div", { class: "muted", text: why }) : null),
        td(s.symbol),
        priceCell(s),
        h("td", {}, s.range.lower ? money(s.range.lower) + " – " + money(s.range.upper) + " " : "—", s.price_vs_range ? pill(s.price_vs_range, s.price_vs_range === "inside" ? "ok" : "warn") : null),
        perfCell(s, "inventory", money(perf.inventory, 8) + " " + base, ""),
        perfCell(s, "realized_pnl", money(perf.realized_pnl), cls(perf.realized_pnl)),
        perfCell(s, "unrealized_pnl", money(perf.unrealized_pnl), cls(perf.unrealized_pnl)),
        perfCell(s, "total_pnl_net_of_gas", money(perf.total_pnl_net_of_gas) + " " + quote, cls(perf.total_pnl_net_of_gas)),
        tdNum(String(s.fills_today)),
        tdNum(String(s.orders_in_flight)),
        h("td", {}, strategyButtons(s)));
    });
    const rollouts = (d.rollouts || []).length ? [h("h2", { text: "Canary rollouts" }),
      table(["rollout", "stage", "state", "summary"], d.rollouts.map(r => h("tr", {}, td(r.name), td(r.stage), td(r.state), td(r.line || ""))), { id: "rollouts" })] : [];
    show(h("h1", { text: "Overview" }), cards,
      h("h2", { text: "Strategies" }),
      table(["id", "name", "mode", "status", "symbol", "price", "grid range", "position", "realized", "unrealized", "net of gas", "fills today", "in flight", ""], rows, { id: "strategies" }),
      rollouts);
  }

  // ---------- strategy ----------
  function renderStrategy(p) {
    const d = p.data, s = d.strategy, perf = s.performance || {};
    const [base, quote] = (s.symbol || "/").split("/");
    p.stream = d.price_stream;
    p.prices = (d.prices || []).map(([t, v]) => [t, num(v)]);
    p.fills = (d.trades || []).filter(t => t.status === "filled").reverse();
    const canvas = h("canvas", { class: "chart", id: "price-chart" });
    const equity = h("canvas", { class: "chart small", id: "equity-chart" });
    p.canvas = canvas; p.equityCanvas = equity;
    ConsoleChart.attachTooltip(canvas, $("tooltip"));
    const card = (label, value, c, attrs) => h("div", Object.assign({ class: "card" }, attrs || {}), h("div", { class: "label", text: label }), h("div", { class: c || "", text: value }));
    const why = s.not_running || s.status_reason;
    show(
      h("h1", {}, s.name + " ", h("span", { class: "muted", text: "#" + s.id + " · " + s.type + " · " + s.mode + " · " + s.symbol }), " ",
        pill(s.status, s.status === "active" ? "ok" : "warn"), " ", strategyButtons(s)),
      why ? h("p", { class: "muted", id: "why", text: why }) : null,
      h("div", { class: "cards" },
        h("div", { class: "card" }, h("div", { class: "label", text: "price" }), h("strong", { id: "strategy-price", "data-price-stream": p.stream, text: lastPrices[p.stream] ? money(lastPrices[p.stream].price, 8) : (perf.last_price ? money(perf.last_price, 8) : "—") })),
        card("position", money(perf.inventory, 8) + " " + base),
        card("realized PnL", money(perf.realized_pnl) + " " + quote, cls(perf.realized_pnl)),
        card("unrealized PnL", money(perf.unrealized_pnl) + " " + quote, cls(perf.unrealized_pnl)),
        card("total, net of gas", money(perf.total_pnl) + " / " + money(perf.total_pnl_net_of_gas) + " " + quote, cls(perf.total_pnl_net_of_gas)),
        card("fees · gas", money(perf.fees) + " " + quote + " · " + money(perf.gas) + " " + quote + " (" + money(perf.gas_bnb, 8) + " BNB)"),
        card("fills · round trips", str(d.fills) + " · " + str(perf.round_trips), "", { id: "fills-card", "data-fills": str(d.fills) })),
      h("h2", { text: "Price, grid levels and fills" }), canvas,
      h("ul", { class: "fills", id: "chart-fills" }),
      h("h2", { text: "Equity: gross (green) and net of gas (amber)" }), equity,
      h("div", { class: "row" },
        h("div", {}, h("h2", { text: "Cells" }), table(["cell", "from", "to", "state", "holding"],
          (d.cells || []).map(c => h("tr", { "data-cell": String(c.index) }, td(c.index), tdNum(money(c.lower, 8)), tdNum(money(c.upper, 8)), td(c.state), tdNum(c.base ? money(c.base, 8) : ""))), { id: "cells" })),
        h("div", {}, h("h2", { text: "Orders in flight (" + d.orders_in_flight.length + "), resting (" + d.orders_resting.length + ")" }),
          table(["order", "side", "trigger", "amount", "status", "venue ref"],
            d.orders_in_flight.concat(d.orders_resting).map(o => h("tr", { "data-order": String(o.id) }, td(o.id), td(o.side, o.side), tdNum(o.trigger_price || "market"),
              tdNum(o.quote_amount || o.base_amount || "—"), td(o.status), h("td", {}, o.venue_ref ? explorerLink(o.venue_ref, d.explorer_tx_url) : "—"))), { id: "orders" }))),
      h("h2", { text: "Recent trades" }),
      table(["time", "side", "price", "size", "quote", "fee", "gas", "impact bps", "status", "tx"], [], { id: "trades" }),
      h("h2", { text: "Risk events" }),
      table(["time", "kind", "severity", "message"], (d.risk_events || []).map(e => h("tr", {}, td(time(e.created_at)), td(e.kind), td(e.severity), td(e.message))), { id: "risk-events" }));
    for (const t of d.trades || []) addTradeRow(p, t, false);
    for (const f of p.fills) addFillMarker(p, f);
    drawStrategy(p);
  }
  function tradeRow(p, t) {
    const [base, quote] = (t.symbol || "/").split("/");
    const gas = t.gas_fee ? money(t.gas_fee, 8) + " BNB" + (t.gas_quote ? " (" + money(t.gas_quote) + " " + quote + ")" : "") : (t.gas_quote ? money(t.gas_quote) + " " + quote : "—");
    return h("tr", { "data-trade": str(t.id), "data-side": t.side },
      td(time(t.executed_at)), td(t.side, t.side), tdNum(money(t.price, 8)), tdNum(money(t.base_amount, 8) + " " + base),
      tdNum(money(t.quote_amount) + " " + quote), tdNum(money(t.fee_quote, 6)), tdNum(gas), tdNum(t.price_impact_bps || "—"),
      td(t.status + (t.reason ? ": " + t.reason : "")), h("td", {}, explorerLink(t.tx_hash, p.data.explorer_tx_url, "paper")));
  }
  function addTradeRow(p, t, newest) {
    const body = document.querySelector("#trades tbody");
    if (!body) return;
    if (newest) body.prepend(tradeRow(p, t)); else body.append(tradeRow(p, t));
  }
  function addFillMarker(p, f) {
    const list = $("chart-fills");
    if (!list) return;
    const [base] = (f.symbol || "/").split("/");
    list.prepend(h("li", { "data-fill": str(f.id), class: f.side },
      time(f.executed_at) + " " + f.side + " " + money(f.base_amount, 8) + " " + base + " @ " + money(f.price, 8) + " ",
      explorerLink(f.tx_hash, p.data.explorer_tx_url, "paper")));
  }
  function drawStrategy(p) {
    if (!p.canvas) return;
    const levels = (p.data.levels || []).map(v => ({ value: num(v), color: "#58a6ff66" }));
    const markers = p.fills.map(f => ({ at: f.executed_at, value: num(f.price), side: f.side,
      label: f.side + " " + f.base_amount + " @ " + f.price + (f.tx_hash ? " · " + f.tx_hash : " · paper") }));
    ConsoleChart.draw(p.canvas, { series: [{ points: p.prices, color: "#d8dee4" }], levels, markers, empty: "no price yet: waiting for the market" });
    const eq = (p.data.equity || []).map(e => [e.at, num(e.equity)]);
    const net = (p.data.equity || []).map(e => [e.at, num(e.equity_net_of_gas)]);
    ConsoleChart.draw(p.equityCanvas, { series: [{ points: eq, color: "#3fb950" }, { points: net, color: "#d29922" }], empty: "no fills yet" });
  }

  // ---------- funds ----------
  function renderFunds(p) {
    const d = p.data;
    const assets = new Set();
    for (const w of d.wallets || []) for (const k of Object.keys(w.balances || {})) assets.add(k);
    const cols = ["BNB"].concat([...assets].filter(a => a !== "BNB").sort());
    const outflow = [h("tr", {}, td("all, in quote (swaps, drips, sweeps)"), tdNum(money(d.hourly_outflow_quote.used)), tdNum(d.hourly_outflow_quote.limit === null ? "no limit" : money(d.hourly_outflow_quote.limit)))]
      .concat((d.hourly_outflow || []).map(o => h("tr", {}, td(o.asset), tdNum(money(o.used, 8)), tdNum(money(o.limit, 8)))));
    const ops = list => (list || []).map(o => h("tr", {}, td(time(o.created_at)), td(o.wallet), td(o.destination), tdNum(money(o.amount, 8) + " " + o.asset), td(o.status + (o.error ? ": " + o.error : "")), h("td", {}, explorerLink(o.tx_hash, d.explorer_tx_url, "not sent"))));
    show(h("h1", { text: "Funds" }),
      h("p", {}, h("span", { class: "muted", text: "funds manager: " }), h("span", { id: "funds-manager", text: d.manager }), " · treasury ", d.treasury || "none configured"),
      d.balances_error ? h("p", { class: "warn", id: "balances-error", text: "Balances not read: " + d.balances_error }) : null,
      h("h2", { text: "Wallets" }),
      table(["holder", "address"].concat(cols).concat(["gas 24 h (BNB)", "gas runway"]), (d.wallets || []).map(w => h("tr", { "data-holder": w.holder },
        td(w.holder), td(w.address), cols.map(c => tdNum(money(w.balances[c], 8), c === "BNB" && w.below_gas_min ? "bad" : "")),
        tdNum(money(w.gas_spent_24h_bnb, 8)), tdNum(w.gas_runway_days ? w.gas_runway_days + " days" : "—"))), { id: "wallets" }),
      h("h2", { text: "Outflow in the last hour, against the limits" }),
      table(["what", "used", "limit"], outflow, { id: "outflow" }),
      h("div", { class: "row" },
        h("div", {}, h("h2", { text: "Drips (gas top-ups)" }), table(["time", "from", "to", "amount", "status", "tx"], ops(d.drips), { id: "drips" })),
        h("div", {}, h("h2", { text: "Sweeps" }), table(["time", "from", "to", "amount", "status", "tx"], ops(d.sweeps), { id: "sweeps" }))));
  }

  // ---------- backtests ----------
  const FIGURES = ["total_return_pct", "total_pnl", "total_pnl_net_of_gas", "max_drawdown_pct", "sharpe", "fills", "round_trips"];
  function figure(result, key) {
    if (!result || typeof result !== "object") return undefined;
    if (key in result && typeof result[key] !== "object") return result[key];
    for (const v of Object.values(result)) if (v && typeof v === "object" && !Array.isArray(v) && key in v && typeof v[key] !== "object") return v[key];
    return undefined;
  }
  function renderBacktests(p) {
    const d = p.data;
    const detail = h("div", { id: "backtest-detail" });
    const rows = (d.backtests || []).map(b => h("tr", { "data-backtest": String(b.id) },
      h("td", {}, h("a", { href: "#/backtests", onclick: e => { e.preventDefault(); showBacktest(b, detail); }, text: "#" + b.id })),
      td(b.type), td(b.symbol), td(time(b.created_at)), FIGURES.map(k => tdNum(str(figure(b.result, k))))));
    const sweeps = (d.sweeps || []).map(s => {
      const img = h("img", { class: "heatmap", alt: "heat map of sweep " + s.name });
      if (s.heatmap) apiBlob("/api/v1/sweeps/" + encodeURIComponent(s.name) + "/heatmap").then(u => { img.src = u; }).catch(() => { img.alt = "heat map not readable"; });
      const keys = s.top_rows.length ? Object.keys(s.top_rows[0]).filter(k => typeof s.top_rows[0][k] !== "object").slice(0, 10) : [];
      return h("div", { class: "card", "data-sweep": s.name }, h("h2", { text: "Sweep " + s.name }), s.heatmap ? img : h("p", { class: "muted", text: "no heat map (run the sweep with --heatmap X,Y)" }),
        keys.length ? table(keys, s.top_rows.map(r => h("tr", {}, keys.map(k => td(r[k]))))) : null);
    });
    show(h("h1", { text: "Backtests" }),
      table(["run", "type", "symbol", "stored"].concat(FIGURES), rows, { id: "backtests" }), detail,
      h("h2", { text: "Sweeps" }), sweeps.length ? sweeps : h("p", { class: "muted", text: "no sweeps in data/sweeps" }));
  }
  function showBacktest(b, into) {
    const img = h("img", { class: "chart-img", alt: "chart of backtest " + b.id });
    if (b.chart) apiBlob("/api/v1/backtests/" + b.id + "/chart").then(u => { img.src = u; }).catch(err => { img.alt = "chart not readable: " + err.message; });
    const scalars = Object.entries(b.result || {}).filter(([, v]) => v === null || typeof v !== "object");
    into.replaceChildren(h("h2", { text: "Backtest #" + b.id + " · " + b.symbol }),
      h("div", { class: "row" },
        b.chart ? img : h("p", { class: "muted", text: "no chart stored" }),
        h("div", {}, table(["figure", "value"], scalars.map(([k, v]) => h("tr", {}, td(k), tdNum(str(v))))))));
  }

  // ---------- live pushes ----------
  function setBanner(text) {
    const b = $("banner");
    if (text) { b.textContent = text; b.hidden = false; } else b.hidden = true;
  }
  function stopStream() { if (streamAbort) { streamAbort.abort(); streamAbort = null; } connected = false; }
  async function startStream() {
    stopStream();
    const ctl = new AbortController();
    streamAbort = ctl;
    lastByteAt = Date.now();
    try {
      const r = await fetch("/api/v1/events", { headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" }, signal: ctl.signal, cache: "no-store" });
      if (r.status === 401) return showLogin("The daemon refused the token (was it changed?). Log in again.");
      if (!r.ok || !r.body) throw new Error("HTTP " + r.status);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        lastByteAt = Date.now();
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i); buf = buf.slice(i + 2);
          let event = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).replace(/^ /, "");
          }
          if (data) onPush(event, data);
        }
      }
      throw new Error("the daemon closed the stream");
    } catch (err) {
      if (ctl.signal.aborted) return;
      connected = false;
      document.body.setAttribute("data-connected", "false");
      setBanner("Connection to the daemon lost (" + err.message + "). Reconnecting…");
      const delay = reconnectDelay;
      reconnectDelay = Math.min(reconnectDelay * 2, 5000);
      setTimeout(() => { if (token && streamAbort === ctl) startStream(); }, delay);
    }
  }
  // The daemon sends a keep-alive every 10 s: 25 s of silence is a connection that died without
  // closing (a cut network, a laptop that slept). Drop it and connect again.
  setInterval(() => {
    if (!token || !streamAbort || Date.now() - lastByteAt < 25000) return;
    const dead = streamAbort;
    streamAbort = null;
    dead.abort();
    connected = false;
    document.body.setAttribute("data-connected", "false");
    setBanner("No word from the daemon for 25 s. Reconnecting…");
    startStream();
  }, 5000);
  function onPush(event, data) {
    let d;
    try { d = JSON.parse(data); } catch (_) { return; }
    if (event === "hello") {
      const restarted = startedAt !== null && d.started_at !== startedAt;
      const wasDown = !connected;
      startedAt = d.started_at; connected = true; reconnectDelay = 500;
      document.body.setAttribute("data-connected", "true");
      document.body.setAttribute("data-daemon-started", String(d.started_at));
      setBanner(null);
      // Back after a gap (or a new daemon): what the page shows may have moved meanwhile.
      if (page && (restarted || wasDown)) reload();
    } else if (event === "price") onPrice(d);
    else if (event === "fill") onFill(d);
    else if (event === "overview") onOverview(d); else if (event === "resync") reload();
  }
  // What an overview push changes on the page; the uptime and feed counters alone do not
  // redraw it (a redraw under the operator's pointer would move the buttons).
  // (Prices and PnL are written in place; ages in the reasons change every second.)
  const overviewSignature = d => JSON.stringify([d.health, (d.reasons || []).map(r => r.replace(/[0-9.]+/g, "#")), d.services,
    d.kill_switch, d.trading_mode, d.feed.connected, d.rollouts.map(r => [r.name, r.stage, r.state]),
    (d.strategies || []).map(s => [s.id, s.name, s.status, s.status_reason, s.not_running, s.mode, s.price_vs_range,
      s.fills_today, s.orders_in_flight, s.orders_resting, s.engine])]);
  const PERF = ["inventory", "realized_pnl", "unrealized_pnl", "total_pnl_net_of_gas"];
  function overviewInPlace(d) {
    for (const s of d.strategies || []) {
      const perf = s.performance || {};
      for (const k of PERF) {
        const el = document.querySelector(`[data-perf-of="${s.id}"][data-perf="${k}"]`);
        if (!el) continue;
        const [base, quote] = (s.symbol || "/").split("/");
        el.textContent = k === "inventory" ? money(perf[k], 8) + " " + base : money(perf[k]) + (k === "total_pnl_net_of_gas" ? " " + quote : "");
        el.className = "num " + (k === "inventory" ? "" : cls(perf[k]));
      }
    }
    const up = $("uptime");
    if (up) up.textContent = "  pid " + d.daemon.pid + " · up " + d.daemon.uptime_secs + " s · v" + d.daemon.version;
    const reasons = $("reasons");
    if (reasons) reasons.replaceChildren(...(d.reasons || []).map(r => h("li", { text: r })));
  }
  function onOverview(d) {
    if (page && page.name === "strategy" && page.data) {
      // Its orders in flight, status or fills moved: read its page again.
      const s = (d.strategies || []).find(x => x.id === page.id);
      const sig = s ? JSON.stringify([s.status, s.status_reason, s.not_running, s.orders_in_flight, s.orders_resting, s.fills_today]) : null;
      if (strategySeen !== null && sig !== strategySeen) refreshSoon();
      strategySeen = sig;
      return;
    }
    strategySeen = null;
    if (!page || page.name !== "overview" || !page.data) return;
    if (!$("dialog").hidden || (document.activeElement && document.activeElement.id === "mode-select")) return;
    const same = overviewSignature(d) === overviewSignature(page.data);
    page.data = d;
    if (same) overviewInPlace(d); else renderOverview(page);
  }
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = null; if ($("dialog").hidden) reload(); }, 1500);
  }
  function onPrice(d) {
    lastPrices[d.stream] = d;
    for (const el of document.querySelectorAll('[data-price-stream="' + CSS.escape(d.stream) + '"]')) {
      el.textContent = money(d.price, 8);
      el.setAttribute("data-price", String(d.price));
    }
    if (page && page.name === "strategy" && page.stream === d.stream && page.canvas) {
      page.prices.push([d.at, num(d.price)]);
      if (page.prices.length > 36000) page.prices.shift();
      drawStrategy(page);
    }
  }
  function onFill(f) {
    if (page && page.name === "strategy" && page.id === f.strategy_id && page.data
        && !page.fills.some(x => x.id === f.id)) {
      page.fills.push(f);
      addFillMarker(page, f);
      addTradeRow(page, f, true);
      drawStrategy(page);
      // Balances, cells and the equity curve moved with it: read the page again shortly.
      refreshSoon();
    }
  }

  window.addEventListener("resize", () => { if (page && page.name === "strategy") drawStrategy(page); });

  // ---------- start ----------
  if (token && operator) start(); else showLogin("");
})();
