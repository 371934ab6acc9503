// The trader's desk: every number on the page comes from the same HTTP API a script uses.
// The token lives in sessionStorage (this tab only) and travels as a Bearer header; it is
// never written into the page. Updates are pushed over /api/stream/ (Server-Sent Events
// read through fetch, since EventSource cannot send an Authorization header).
import uPlot from "./uPlot.esm.js";

const TOKEN_KEY = "robson.token";
const THEME_KEY = "robson.theme";
const PAGE_SIZE = 10;
const $ = (id) => document.getElementById(id);

const state = {
  positions: [],
  prices: {},
  unrealised: {},
  history: [],
  sort: { key: null, dir: 1 },
  page: 0,
  conversation: null,
  stream: null,
  charts: {},
  capital: 0,
  selected: null,
};

// --- API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, { method = "GET", body, idempotent = false } = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotent) headers["Idempotency-Key"] = crypto.randomUUID();
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (response.status === 401) {
    signOut("Your session ended: sign in again.");
    throw new ApiError(401, payload);
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return { status: response.status, data: payload };
}

// --- formatting ---------------------------------------------------------------------------

const num = (s) => (s === null || s === undefined || s === "" ? null : Number(s));

function fmt(value, digits = 2) {
  const n = num(value);
  if (n === null || Number.isNaN(n)) return "–";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function qty(value) {
  const n = num(value);
  if (n === null) return "–";
  return String(value).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

function signed(value) {
  const n = num(value);
  if (n === null) return "–";
  return `${n > 0 ? "+" : ""}${fmt(value)}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function tone(node, value) {
  const n = num(value);
  node.classList.toggle("gain", n !== null && n > 0);
  node.classList.toggle("loss", n !== null && n < 0);
  return node;
}

function explain(error) {
  if (!(error instanceof ApiError)) return [String(error.message || error)];
  const lines = [error.message];
  for (const v of error.body.violations || []) lines.push(`${v.rule}: ${v.reason}`);
  for (const e of error.body.errors || []) lines.push(`${e.field}: ${e.reason}`);
  return lines;
}

function showResult(node, lines, ok) {
  node.replaceChildren(...lines.map((line) => el("p", { text: line })));
  node.classList.toggle("ok", ok);
  node.classList.toggle("error", !ok);
}

// --- theme --------------------------------------------------------------------------------

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const button = $("theme");
  button.setAttribute("aria-pressed", String(theme === "dark"));
  button.textContent = theme === "dark" ? "Light theme" : "Dark theme";
  for (const chart of Object.values(state.charts)) chart.redraw(false);
}

function initialTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === "dark" || saved === "light") return saved;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

// --- session ------------------------------------------------------------------------------

async function signIn(candidate) {
  sessionStorage.setItem(TOKEN_KEY, candidate);
  try {
    const { data } = await api("/api/trade/status/");
    $("who").textContent = data.user;
    return true;
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("signin-error").textContent =
      error instanceof ApiError && error.status === 401 ? "That token was refused." : explain(error)[0];
    return false;
  }
}

function showDesk(signedIn) {
  $("signin-view").hidden = signedIn;
  $("desk").hidden = !signedIn;
  $("signout").hidden = !signedIn;
  $("who").hidden = !signedIn;
  $("live").hidden = !signedIn;
  $("chat-open").hidden = !signedIn;
  if (!signedIn) $("chat").hidden = true;
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.stream) state.stream.abort();
  state.stream = null;
  state.conversation = null;
  $("chat-log").replaceChildren();
  $("who").textContent = "";
  $("signin-error").textContent = message;
  showDesk(false);
}

// --- live stream --------------------------------------------------------------------------

function setLive(live) {
  const badge = $("live");
  badge.textContent = live ? "live" : "reconnecting…";
  badge.classList.toggle("on", live);
}

async function follow() {
  const controller = new AbortController();
  state.stream = controller;
  while (!controller.signal.aborted && token()) {
    try {
      const response = await fetch("/api/stream/", {
        headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" },
        signal: controller.signal,
        cache: "no-store",
      });
      if (response.status === 401) return signOut("Your session ended: sign in again.");
      if (!response.ok || !response.body) throw new Error(`stream ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const name = /^event: (.+)$/m.exec(block)?.[1];
          if (name === "ready") {
            setLive(true);
            refreshAll();
          } else if (name === "changed") {
            refreshAll();
          } else if (name === "tick" && state.positions.length) {
            refreshPrices();  // prices move without events: one cheap read while positions are open
          }
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// Coalesce refreshes: one in flight, at most one more queued behind it.
function coalesced(fn) {
  let running = null;
  let again = false;
  return function run() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await fn();
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 401)) console.warn(error);
        }
      } while (again);
      running = null;
    })();
    return running;
  };
}

// Each endpoint is read once per refresh (the API's rate limit counts every request).
const refreshPrices = coalesced(loadPrices);
const refreshAll = coalesced(async () => {
  const [, history, policy] = await Promise.all([
    loadPositions(),
    api("/api/trade/history/?days=3650&limit=1000"),
    api("/api/policy/"),
  ]);
  showHistory(history.data);
  showRisk(policy.data);
  await loadPerformance(history.data, policy.data);
  if (state.selected) await showTimeline(state.selected);
});

// --- positions ----------------------------------------------------------------------------

async function loadPositions() {
  const [{ data: list }] = await Promise.all([api("/api/positions/?status=open"), loadPrices(false)]);
  state.positions = list.positions;
  renderPositions();
}

async function loadPrices(render = true) {
  const { data: context } = await api("/api/chat/context/");
  state.prices = context.prices || {};
  state.unrealised = Object.fromEntries(
    (context.positions || []).map((p) => [p.id, p.unrealised_pnl]),
  );
  if (render) renderPositions();
}

function handSpanSteps(p) {
  // Hand-span trailing: the stop moves to break-even after one span of favourable move,
  // then one span at a time; these are the levels it can step to.
  const entry = num(p.entry_price);
  const initial = num(p.initial_stop_price);
  if (entry === null || initial === null || entry === initial) return [];
  const sign = p.side === "LONG" ? 1 : -1;
  const span = Math.abs(entry - initial);
  const levels = [initial, entry];
  const current = num(p.stop_price);
  for (let k = 1; k <= 3 || (current !== null && (current - levels.at(-1)) * sign > 0); k += 1) {
    levels.push(entry + sign * k * span);
    if (k > 50) break;
  }
  return levels;
}

function stepsList(p) {
  // The highest step the stop has reached is marked as the current one.
  const current = num(p.stop_price);
  const sign = p.side === "LONG" ? 1 : -1;
  const levels = handSpanSteps(p);
  const reached = current === null ? -1 : levels.reduce((best, level, i) => ((current - level) * sign >= -1e-9 ? i : best), -1);
  const list = el("ol", { class: "steps", "aria-label": `Hand-span stop steps for ${p.symbol}` });
  levels.forEach((level, index) => {
    const label = index === 0 ? "initial stop" : index === 1 ? "break-even" : `entry + ${index - 1} span`;
    const mine = index === reached;
    list.append(el("li", { class: mine ? "step hit" : "step", title: label, "aria-current": mine ? "step" : null }, fmt(level)));
  });
  return list;
}

function riskMultiple(p, price) {
  const entry = num(p.entry_price);
  const initial = num(p.initial_stop_price);
  const stop = num(p.stop_price);
  if (price === null || stop === null || entry === null || initial === null || entry === initial) return null;
  const sign = p.side === "LONG" ? 1 : -1;
  return ((price - stop) * sign) / Math.abs(entry - initial);
}

function renderPositions() {
  const body = $("positions").querySelector("tbody");
  body.replaceChildren(
    ...state.positions.map((p) => {
      const price = num(state.prices[p.symbol]);
      const r = riskMultiple(p, price);
      const pnl = state.unrealised[p.id];
      return el(
        "tr",
        { "data-id": p.id },
        el("td", {}, el("button", { type: "button", class: "link", onclick: () => showTimeline(p.id), "aria-label": `Timeline of ${p.symbol} ${p.side}` }, p.symbol)),
        el("td", { text: p.side }),
        el("td", { text: qty(p.open_quantity) }),
        el("td", { text: fmt(p.entry_price) }),
        el("td", { text: price === null ? "–" : fmt(price), "data-label": "price" }),
        el("td", { "data-label": "stop" }, el("span", { class: "stop", text: fmt(p.stop_price) }), stepsList(p)),
        el("td", { text: fmt(p.target_price) }),
        el("td", { text: r === null ? "–" : `${r.toFixed(2)} R` }),
        tone(el("td", { text: signed(pnl) }), pnl),
        el("td", {}, el("button", { type: "button", class: "danger", "aria-label": `Close ${p.symbol} ${p.side} position`, onclick: () => closePosition(p) }, "Close")),
      );
    }),
  );
  $("positions-empty").hidden = state.positions.length > 0;
}

async function closePosition(p) {
  const message = $("positions-message");
  message.textContent = `Closing ${p.symbol}…`;
  try {
    const { data } = await api(`/api/positions/${p.id}/close/`, { method: "POST", body: {}, idempotent: true });
    message.textContent = data.message;
  } catch (error) {
    message.textContent = explain(error).join(" ");
  }
  refreshAll();
}

const STEP_NAMES = {
  Planned: "planned",
  Validated: "validated",
  Rejected: "rejected",
  EntrySubmitted: "submitted",
  EntryFilled: "filled",
  EntryFailed: "entry failed",
  StopAdjusted: "stop moved",
  ExitTriggered: "exit triggered",
  ExitSubmitted: "exit submitted",
  ExitFilled: "exit filled",
  ExitFailed: "exit failed",
  Closed: "closed",
  Cancelled: "cancelled",
};

function eventDetail(event) {
  const p = event.payload || {};
  const keys = ["stop_price", "new_stop", "price", "average_price", "quantity", "reason", "pnl", "realised_pnl"];
  return keys
    .filter((k) => p[k] !== undefined && p[k] !== null && typeof p[k] !== "object")
    .map((k) => `${k.replace(/_/g, " ")} ${p[k]}`)
    .join(" · ");
}

async function showTimeline(id) {
  state.selected = id;
  const { data } = await api(`/api/positions/${id}/`);
  $("timeline-title").textContent = `Timeline: ${data.symbol} ${data.side} (${data.status})`;
  $("timeline").replaceChildren(
    ...data.events.map((e) => {
      const name = STEP_NAMES[e.type.split(".").at(-1)] || e.type;
      return el("li", {}, el("strong", { text: name }), " ", el("time", { datetime: e.timestamp, text: (e.timestamp || "").replace("T", " ").replace("Z", " UTC") }), el("div", { class: "muted", text: eventDetail(e) }));
    }),
  );
  $("timeline-panel").hidden = false;
}

// --- new trade ----------------------------------------------------------------------------

function tradeFields() {
  const form = $("trade-form");
  const value = (name) => form.elements[name].value.trim();
  const body = { symbol: value("symbol").toUpperCase() || "BTCUSDC", side: value("side") };
  for (const name of ["entry_price", "stop_price", "target_price"]) if (value(name)) body[name] = value(name);
  return body;
}

let previewTimer = null;
let previewSeq = 0;

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 250);
}

async function preview() {
  const body = tradeFields();
  const out = $("preview");
  if (!body.stop_price) {
    out.textContent = "A stop price is required: enter one to see the size.";
    return null;
  }
  const seq = ++previewSeq;
  const { target_price, ...request } = body;
  try {
    const { data } = await api("/api/trade/preview/", { method: "POST", body: request });
    if (seq !== previewSeq) return null;
    out.textContent =
      `1% risk: quantity ${qty(data.quantity)} at ${fmt(data.entry_price)}, ` +
      `risking ${fmt(data.risk_amount)} of ${fmt(data.capital)} capital (budget ${fmt(data.risk_budget)}).`;
    return data;
  } catch (error) {
    if (seq === previewSeq) out.textContent = explain(error).join(" ");
    return null;
  }
}

async function placeTrade(event) {
  event.preventDefault();
  const result = $("trade-result");
  const body = tradeFields();
  if (!body.stop_price) {
    showResult(result, ["Refused: a stop price is required."], false);
    $("t-stop").focus();
    return;
  }
  const button = $("t-submit");
  button.disabled = true;
  let position = null;
  try {
    const planned = await api("/api/intents/", { method: "POST", body, idempotent: true });
    position = planned.data.intent;
    await api(`/api/intents/${position.id}/validate/`, { method: "POST", body: {}, idempotent: true });
    const executed = await api(`/api/intents/${position.id}/execute/`, { method: "POST", body: {}, idempotent: true });
    const intent = executed.data.intent;
    const pending = executed.status === 202;
    showResult(
      result,
      [
        pending
          ? `Order sent for ${intent.symbol}; the exchange has not confirmed the fill yet.`
          : `Position opened: ${intent.side} ${qty(intent.quantity)} ${intent.symbol} at ${fmt(intent.entry_price)}, stop ${fmt(intent.stop_price)}.`,
      ],
      true,
    );
  } catch (error) {
    showResult(result, ["Refused: " + explain(error)[0], ...explain(error).slice(1)], false);
  } finally {
    button.disabled = false;
    refreshAll();
  }
}

// --- performance --------------------------------------------------------------------------

function chartColors() {
  const css = getComputedStyle(document.documentElement);
  return {
    fg: css.getPropertyValue("--fg").trim(),
    grid: css.getPropertyValue("--grid").trim(),
    line: css.getPropertyValue("--accent").trim(),
    gain: css.getPropertyValue("--gain").trim(),
    loss: css.getPropertyValue("--loss").trim(),
  };
}

function axes() {
  const stroke = () => chartColors().fg;
  const grid = { stroke: () => chartColors().grid, width: 1 };
  return [
    { stroke, grid, ticks: grid },
    { stroke, grid, ticks: grid, size: 70 },
  ];
}

function chartWidth(node) {
  return Math.max(240, Math.floor(node.getBoundingClientRect().width || node.parentElement.clientWidth || 300));
}

function drawChart(name, node, options, data) {
  const existing = state.charts[name];
  if (existing) {
    existing.setData(data);
    return;
  }
  state.charts[name] = new uPlot({ width: chartWidth(node), height: 220, ...options }, data, node);
}

function periodStart(label) {
  // "2026-12-06", "2026-W49", "2026-12": a timestamp (seconds) for the chart's x axis.
  if (/^\d{4}-\d{2}-\d{2}$/.test(label)) return Date.parse(label + "T00:00:00Z") / 1000;
  if (/^\d{4}-\d{2}$/.test(label)) return Date.parse(label + "-01T00:00:00Z") / 1000;
  const week = /^(\d{4})-W(\d{2})$/.exec(label);
  if (week) {
    const jan4 = Date.UTC(Number(week[1]), 0, 4);
    const monday = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * 86400000;
    return (monday + (Number(week[2]) - 1) * 7 * 86400000) / 1000;
  }
  return Date.parse(label) / 1000;
}

async function loadPerformance(history, policy) {
  const period = $("period").value;
  const [dailyReply, periodReply, closedReply] = await Promise.all([
    api("/api/trade/pnl/?period=daily&months=12"),
    period === "daily" ? Promise.resolve(null) : api(`/api/trade/pnl/?period=${period}&months=12`),
    api("/api/positions/?status=closed&limit=500"),
  ]);
  const daily = dailyReply.data;
  const periods = (periodReply || dailyReply).data;
  const closed = closedReply.data;
  state.capital = num(policy.capital) || 0;
  const trades = history.trades.filter((t) => t.is_closed && t.pnl !== null);
  const wins = trades.filter((t) => num(t.pnl) > 0).reduce((a, t) => a + num(t.pnl), 0);
  const losses = trades.filter((t) => num(t.pnl) < 0).reduce((a, t) => a - num(t.pnl), 0);
  const rs = closed.positions
    .map((p) => {
      const risk = num(p.quantity) * Math.abs(num(p.entry_price) - num(p.initial_stop_price));
      return risk > 0 ? num(p.pnl) / risk : null;
    })
    .filter((r) => r !== null && Number.isFinite(r));
  tone($("s-total"), history.summary.total_pnl).textContent = signed(history.summary.total_pnl);
  $("s-winrate").textContent = trades.length ? history.summary.win_rate : "–";
  $("s-pf").textContent = losses > 0 ? (wins / losses).toFixed(2) : wins > 0 ? "∞" : "–";
  $("s-avgr").textContent = rs.length ? `${(rs.reduce((a, b) => a + b, 0) / rs.length).toFixed(2)} R` : "–";
  $("s-closed").textContent = String(history.summary.closed_trades);

  const days = daily.periods.slice().sort((a, b) => a.period.localeCompare(b.period));
  const DAY = 86400;
  const xs = days.map((d) => periodStart(d.period));
  const equity = days.map((d) => state.capital + num(d.cumulative_pnl));
  // The curve starts from the capital the day before the first closed trade.
  const start = xs.length ? xs[0] - DAY : Date.now() / 1000 - DAY;
  drawChart(
    "equity",
    $("equity-chart"),
    {
      legend: { show: false },
      axes: axes(),
      scales: { x: { time: true, range: (u, min, max) => [min, Math.max(max, min + 2 * DAY)] } },
      series: [{}, { label: "Equity", stroke: () => chartColors().line, width: 2, points: { show: true } }],
    },
    [[start, ...xs], [state.capital, ...equity]],
  );
  const rows = periods.periods.slice().sort((a, b) => a.period.localeCompare(b.period));
  const pad = { daily: DAY, weekly: 7 * DAY, monthly: 31 * DAY }[period] || DAY;
  const bars = () => uPlot.paths.bars({ size: [0.6, 60] });
  const at = rows.map((r) => periodStart(r.period));
  const pnl = rows.map((r) => num(r.pnl));
  // An empty slot either side keeps a lone bar from filling (or leaving) the whole axis.
  const first = at.length ? at[0] : Date.now() / 1000;
  const last = at.length ? at[at.length - 1] : first;
  drawChart(
    "pnl",
    $("pnl-chart"),
    {
      legend: { show: false },
      axes: axes(),
      series: [
        {},
        { label: "Gain", paths: bars(), points: { show: false }, stroke: () => chartColors().gain, fill: () => chartColors().gain },
        { label: "Loss", paths: bars(), points: { show: false }, stroke: () => chartColors().loss, fill: () => chartColors().loss },
      ],
    },
    [
      [first - pad, ...at, last + pad],
      [null, ...pnl.map((v) => (v >= 0 ? v : null)), null],
      [null, ...pnl.map((v) => (v < 0 ? v : null)), null],
    ],
  );
  $("pnl-chart").dataset.points = String(rows.length);
  $("equity-chart").dataset.points = String(days.length);
  renderCalendar(days);
}

function renderCalendar(days) {
  const byDay = Object.fromEntries(days.map((d) => [d.period, d]));
  const now = new Date();
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  const first = new Date(Date.UTC(year, month, 1));
  const count = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const max = Math.max(1, ...days.map((d) => Math.abs(num(d.pnl))));
  const table = $("calendar");
  const head = el("tr", {}, ...["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map((d) => el("th", { scope: "col", text: d })));
  const body = el("tbody");
  let row = el("tr");
  const offset = (first.getUTCDay() + 6) % 7;
  for (let i = 0; i < offset; i += 1) row.append(el("td"));
  for (let day = 1; day <= count; day += 1) {
    const key = `${year}-${String(month + 1).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
    const found = byDay[key];
    const pnl = found ? num(found.pnl) : null;
    const level = pnl === null ? 0 : Math.min(4, Math.ceil((Math.abs(pnl) / max) * 4));
    const cell = el(
      "td",
      { class: pnl === null ? "day" : `day ${pnl >= 0 ? "up" : "down"}${level}`, title: key },
      el("span", { class: "date", text: String(day) }),
      el("span", { class: "amount", text: pnl === null ? "" : signed(pnl) }),
    );
    row.append(cell);
    if ((offset + day) % 7 === 0) {
      body.append(row);
      row = el("tr");
    }
  }
  if (row.children.length) body.append(row);
  const caption = el("caption", { class: "sr-only", text: first.toLocaleString("en-US", { month: "long", year: "numeric", timeZone: "UTC" }) });
  table.replaceChildren(caption, el("thead", {}, head), body);
}

// --- risk ---------------------------------------------------------------------------------

function showRisk(data) {
  const loss = Math.max(0, num(data.loss_percent) || 0);
  const gauge = $("dd-gauge");
  gauge.value = Math.min(5, loss);
  gauge.textContent = `${loss.toFixed(2)}%`;
  gauge.setAttribute("aria-valuetext", `${loss.toFixed(2)}% of the 4% monthly limit`);
  $("r-month").textContent = data.month;
  $("r-loss").textContent = `${fmt(data.loss_percent)}% (${signed(data.realised_pnl)} realised)`;
  $("r-open").textContent = fmt(data.open_risk);
  $("r-budget").textContent = fmt(data.remaining_budget);
  $("r-capital").textContent = fmt(data.capital_base);
  $("r-alerts").textContent = data.alerts.length ? data.alerts.join(", ") : "none";
  const state_ = $("r-state");
  state_.textContent = data.paused ? `Paused: ${data.pause_reason || "drawdown limit"}` : "Active";
  state_.classList.toggle("loss", data.paused);
  $("resume-form").querySelector("button").disabled = !data.paused;
}

async function resume(event) {
  event.preventDefault();
  const note = $("resume-note").value.trim();
  const result = $("resume-result");
  if (!note) {
    showResult(result, ["A review note is required to resume."], false);
    return;
  }
  try {
    await api("/api/policy/resume/", { method: "POST", body: { note }, idempotent: true });
    showResult(result, ["Trading resumed; the review is recorded."], true);
    $("resume-note").value = "";
  } catch (error) {
    showResult(result, explain(error), false);
  }
  refreshAll();
}

// --- history ------------------------------------------------------------------------------

function showHistory(data) {
  state.history = data.trades;
  renderHistory();
}

function renderHistory() {
  const { key, dir } = state.sort;
  const rows = state.history.slice();
  if (key) {
    rows.sort((a, b) => {
      const x = num(a[key]) ?? a[key];
      const y = num(b[key]) ?? b[key];
      const nx = typeof x === "number" && !Number.isNaN(x);
      const a_ = nx ? x : String(a[key] ?? "");
      const b_ = nx ? y : String(b[key] ?? "");
      return (a_ > b_ ? 1 : a_ < b_ ? -1 : 0) * dir;
    });
  }
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const slice = rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
  $("history").querySelector("tbody").replaceChildren(
    ...slice.map((t) =>
      el(
        "tr",
        {},
        el("td", { text: t.symbol }),
        el("td", { text: t.side }),
        el("td", { text: qty(t.quantity) }),
        el("td", { text: fmt(t.entry_price) }),
        el("td", { text: fmt(t.exit_price) }),
        tone(el("td", { text: signed(t.pnl) }), t.pnl),
        el("td", { text: t.duration_hours === null ? "–" : Number(t.duration_hours).toFixed(1) }),
      ),
    ),
  );
  $("h-page").textContent = `Page ${state.page + 1} of ${pages} (${rows.length} trades)`;
  $("h-prev").disabled = state.page === 0;
  $("h-next").disabled = state.page >= pages - 1;
}

function sortBy(key) {
  state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
  for (const th of $("history").querySelectorAll("th")) {
    const mine = th.querySelector("button").dataset.key === key;
    th.setAttribute("aria-sort", mine ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
  }
  renderHistory();
}

// --- chat ---------------------------------------------------------------------------------

function say(who, text) {
  const bubble = el("div", { class: `bubble ${who}` }, el("span", { class: "sr-only", text: who === "me" ? "You: " : "Robson AI: " }), text);
  $("chat-log").append(bubble);
  bubble.scrollIntoView({ block: "end" });
  return bubble;
}

function proposalCard(proposal, intentId) {
  const result = el("p", { class: "result", role: "status" });
  const card = el(
    "article",
    { class: "proposal", "aria-label": `Proposed trade ${proposal.side} ${proposal.symbol}` },
    el("h3", { text: `Proposed: ${proposal.side} ${qty(proposal.quantity)} ${proposal.symbol}` }),
    el("p", { text: `Entry ${fmt(proposal.entry_price)} · stop ${fmt(proposal.stop_price)}${proposal.target_price ? ` · target ${fmt(proposal.target_price)}` : ""}` }),
  );
  if (!proposal.valid) {
    card.append(el("ul", {}, ...(proposal.violations || []).map((v) => el("li", { text: `${v.rule}: ${v.reason}` }))));
    return card;
  }
  const confirm = el("button", { type: "button", onclick: () => confirmProposal(intentId, card, result) }, "Confirm");
  const cancel = el("button", { type: "button", class: "ghost", onclick: () => cancelProposal(intentId, card, result) }, "Cancel");
  card.append(el("div", { class: "actions" }, confirm, cancel), result);
  return card;
}

async function confirmProposal(intentId, card, result) {
  card.querySelectorAll("button").forEach((b) => (b.disabled = true));
  result.textContent = "Executing…";
  try {
    const { data } = await api("/api/chat/confirm/", { method: "POST", body: { intent_id: intentId }, idempotent: true });
    result.textContent = data.message;
  } catch (error) {
    result.textContent = explain(error).join(" ");
  }
  refreshAll();
}

async function cancelProposal(intentId, card, result) {
  card.querySelectorAll("button").forEach((b) => (b.disabled = true));
  result.textContent = "Cancelling…";
  try {
    const { data } = await api("/api/chat/cancel/", { method: "POST", body: { intent_id: intentId } });
    result.textContent = data.message;
  } catch (error) {
    result.textContent = explain(error).join(" ");
  }
  refreshAll();
}

async function send(message) {
  if (!message) return;
  say("me", message);
  const pending = say("bot", "…");
  const body = { message };
  if (state.conversation) body.conversation_id = state.conversation;
  try {
    const { data } = await api("/api/chat/", { method: "POST", body, idempotent: true });
    state.conversation = data.conversation_id;
    pending.lastChild.textContent = data.message;
    if (data.proposal && data.intent_id) {
      const card = proposalCard(data.proposal, data.intent_id);
      pending.after(card);
      card.scrollIntoView({ block: "end" });
    }
    chatStatus();
  } catch (error) {
    pending.lastChild.textContent = explain(error).join(" ");
  }
}

async function chatStatus() {
  try {
    const { data } = await api("/api/chat/status/");
    $("chat-status").textContent = data.available
      ? `AI on (${data.model})`
      : `AI off${data.last_error ? `: ${data.last_error}` : ""}; answers from the ledger`;
  } catch {
    $("chat-status").textContent = "";
  }
}

function toggleChat(open) {
  $("chat").hidden = !open;
  $("chat-open").setAttribute("aria-expanded", String(open));
  if (open) {
    chatStatus();
    $("chat-input").focus();
  }
}

// --- wiring -------------------------------------------------------------------------------

function selectTab(tab) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const mine = other === tab;
    other.setAttribute("aria-selected", String(mine));
    other.tabIndex = mine ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !mine;
  }
  if (tab.id === "tab-performance") {
    for (const [name, chart] of Object.entries(state.charts)) {
      chart.setSize({ width: chartWidth($(`${name}-chart`)), height: 220 });
    }
  }
}

async function enter() {
  showDesk(true);
  setLive(false);
  follow();
  await refreshAll();
}

function wire() {
  applyTheme(initialTheme());
  $("theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
  });
  $("signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("token");
    const candidate = input.value.trim();
    input.value = "";
    $("signin-error").textContent = "";
    if (candidate && (await signIn(candidate))) await enter();
  });
  $("signout").addEventListener("click", () => signOut("Signed out."));
  for (const tab of document.querySelectorAll('[role="tab"]')) tab.addEventListener("click", () => selectTab(tab));
  const form = $("trade-form");
  form.addEventListener("input", schedulePreview);
  form.addEventListener("submit", placeTrade);
  $("period").addEventListener("change", () => refreshAll());
  $("resume-form").addEventListener("submit", resume);
  for (const button of $("history").querySelectorAll("th button")) button.addEventListener("click", () => sortBy(button.dataset.key));
  $("h-prev").addEventListener("click", () => { state.page -= 1; renderHistory(); });
  $("h-next").addEventListener("click", () => { state.page += 1; renderHistory(); });
  $("chat-open").addEventListener("click", () => toggleChat($("chat").hidden));
  $("chat-close").addEventListener("click", () => toggleChat(false));
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("chat-input");
    const message = input.value.trim();
    input.value = "";
    send(message);
  });
  for (const quick of document.querySelectorAll("[data-say]")) quick.addEventListener("click", () => send(quick.dataset.say));
  addEventListener("resize", () => {
    for (const [name, chart] of Object.entries(state.charts)) chart.setSize({ width: chartWidth($(`${name}-chart`)), height: 220 });
  });
  if (token()) {
    api("/api/trade/status/")
      .then(({ data }) => {
        $("who").textContent = data.user;
        return enter();
      })
      .catch(() => {});
  }
}

wire();
