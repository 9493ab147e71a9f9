// vpp operator page: polls the controller's JSON API and draws what it gets.
// No libraries (the page must work without network access); the chart is plain SVG.
// The API token is read from its field for each action and kept nowhere else.
"use strict";

const REFRESH_MS = 5000;
const DEVICE_ROWS = 200;
const SVG_NS = "http://www.w3.org/2000/svg";
const CHART = { w: 1000, h: 340, left: 56, right: 12, top: 12, bottom: 28 };

const page = { status: null, plan: null, timer: null, tz: "Europe/Berlin" };

const $ = (id) => document.getElementById(id);

// -- formatting -------------------------------------------------------------------------------

function kw(watts, digits = 0) {
  if (watts === null || watts === undefined) return "–";
  return (watts / 1000).toLocaleString("en-GB", { maximumFractionDigits: digits,
    minimumFractionDigits: digits }) + " kW";
}

function zoned(date, options) {
  return new Intl.DateTimeFormat("en-GB", { timeZone: page.tz, hour12: false, ...options })
    .format(date);
}

function timeOf(iso) {
  return iso ? zoned(new Date(iso), { hour: "2-digit", minute: "2-digit" }) : "–";
}

function dateTimeOf(iso) {
  return iso ? zoned(new Date(iso), { day: "2-digit", month: "short", hour: "2-digit",
    minute: "2-digit" }) : "–";
}

function sameDay(isoA, isoB) {
  const day = (iso) => zoned(new Date(iso), { year: "numeric", month: "2-digit", day: "2-digit" });
  return day(isoA) === day(isoB);
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  if (seconds < 120) return `${Math.round(seconds)} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function setTile(id, big, sub) {
  const tile = $(id);
  tile.querySelector(".big").textContent = big;
  tile.querySelector(".sub").textContent = sub;
}

// -- time zones: datetime-local fields hold wall time in the site's zone ----------------------

function zoneParts(ms) {
  const parts = {};
  new Intl.DateTimeFormat("en-GB", { timeZone: page.tz, hour12: false, year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .formatToParts(new Date(ms)).forEach((p) => { parts[p.type] = Number(p.value); });
  return parts;
}

function zoneOffsetMs(ms) {
  const p = zoneParts(ms);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute, p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

// "YYYY-MM-DDTHH:MM" in the site's zone -> Date (the zone's offset at that moment).
function fromZonedInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value);
  if (!m) return null;
  const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  let utc = guess - zoneOffsetMs(guess);
  const second = guess - zoneOffsetMs(utc);  // across a DST change the first guess is off
  if (second !== utc) utc = second;
  return new Date(utc);
}

function toZonedInput(date) {
  const p = zoneParts(date.getTime());
  const two = (n) => String(n).padStart(2, "0");
  return `${p.year}-${two(p.month)}-${two(p.day)}T${two(p.hour % 24)}:${two(p.minute)}`;
}

// -- fetching -----------------------------------------------------------------------------

async function getJson(path) {
  const resp = await fetch(path, { cache: "no-store" });
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.json();
}

async function refresh() {
  try {
    const [status, plan, devices, alerts] = await Promise.all([
      getJson("/api/status"), getJson("/api/plan"),
      getJson(`/api/devices?limit=${DEVICE_ROWS}`), getJson("/api/alerts")]);
    page.status = status;
    page.plan = plan;
    page.tz = status.timezone || page.tz;
    renderStatus(status);
    renderChart(plan, status);
    renderViews(plan, status);
    renderWhy(plan, status);
    renderAlerts(alerts);
    renderDevices(devices);
    renderCaps(status.caps);
    $("connection").classList.add("hidden");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
  } catch (err) {
    $("connection").classList.remove("hidden");
    $("connection").textContent = "no connection to the controller: " + err.message;
  } finally {
    clearTimeout(page.timer);
    page.timer = setTimeout(refresh, REFRESH_MS);
  }
}

// -- status -------------------------------------------------------------------------------

function pill(id, text, cls) {
  const node = $(id);
  node.textContent = text;
  node.className = "pill " + cls;
}

function renderStatus(s) {
  $("site-name").textContent = s.site;
  document.title = `${s.site} · vpp operator`;
  document.querySelectorAll(".site-tz").forEach((n) => { n.textContent = s.timezone; });
  $("clock").textContent = dateTimeOf(s.time) + " " + s.timezone;
  // The top line is the controller's own health (comms, data freshness, the plan's source):
  // "control active" only when it controls, the plan's status only when the plan is in force.
  const h = s.health;
  const label = { ok: "control active", degraded: "control degraded",
    not_controlling: "NOT CONTROLLING" }[h.state];
  pill("control-state", label + (h.reasons.length ? `: ${h.reasons[0]}` : ""),
    { ok: "ok", degraded: "warn", not_controlling: "bad" }[h.state]);
  $("control-state").dataset.health = h.state;
  $("control-state").title = h.reasons.join("\n");
  const plan = s.plan;
  if (!plan) pill("plan-state", "no plan", "bad");
  else if (h.state === "not_controlling") pill("plan-state", "plan not in force (made " +
    `${ago(plan.age_s)})`, "bad");
  else pill("plan-state", `plan ${plan.status}` + (h.plan_source === "restored"
    ? " (restored)" : "") + `, ${ago(plan.age_s)}` + (s.replan_running ? " · re-planning…" : ""),
    plan.status === "optimal" && h.plan_source === "optimizer" ? "ok" : "warn");
  renderHealth(h);
  $("pause").textContent = s.dry_run ? "Resume control" : "Pause control";
  $("pause").className = s.dry_run ? "" : "secondary";
  $("writes-note").classList.toggle("hidden", s.writes_enabled);
  renderTiles(s);
  renderPlanInfo(plan);
}

function renderHealth(h) {
  const list = $("health-reasons");
  list.replaceChildren();
  for (const r of h.reasons) list.append(el("li", {}, r));
  list.classList.toggle("hidden", !h.reasons.length);
}

function renderTiles(s) {
  const g = s.grid, f = s.fleet;
  const net = g.net_w;
  const importing = net !== null && net >= 0;
  const limit = importing ? g.import_limit_w : g.export_limit_w;
  const capped = limit < (importing ? g.site_import_limit_w : g.site_export_limit_w);
  setTile("tile-grid", net === null ? "–" : kw(Math.abs(net)),
    (net === null ? "" : importing ? "importing · " : "exporting · ") +
    `limit ${kw(limit)}${capped ? " (operator cap)" : ""}`);
  // A cap of 0 W is allowed: any exchange then is past it.
  const share = net === null ? 0 : limit > 0 ? Math.abs(net) / limit
    : (Math.abs(net) > 0 ? Infinity : 0);
  const fill = $("tile-grid").querySelector(".fill");
  fill.style.width = `${(Math.min(1, share) * 100).toFixed(1)}%`;
  // The same factors as the alerts (dashboards/alerts.yml), sent with the status.
  fill.className = "fill" + (share > g.over_ratio ? " bad" : share > g.near_ratio ? " warn" : "");
  setTile("tile-pv", kw(f.pv_w), `${f.online} of ${f.devices} devices online`);
  const soc = f.battery_soc_ratio === null ? "–" : `${(f.battery_soc_ratio * 100).toFixed(0)} %`;
  setTile("tile-battery", kw(f.battery_w), `SoC ${soc} · > 0 discharging`);
  setTile("tile-heat", kw(f.heat_pump_el_w), `heat ${kw(f.heat_pump_th_w)} · COP ` +
    (f.heat_pump_cop === null ? "–" : f.heat_pump_cop.toFixed(2)));
  setTile("tile-waste", kw(f.waste_heat_offered_w), "from the data centre (thermal)");
  const price = s.plan ? s.plan.price_import_eur_per_mwh : null;
  setTile("tile-price", price === null ? "–" : `${price.toFixed(0)} €/MWh`, "fees included");
}

function renderPlanInfo(plan) {
  if (!plan) { $("plan-info").textContent = "No plan yet."; return; }
  const slack = Object.entries(plan.slacks_wh || {}).filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} kWh`);
  $("plan-info").textContent = `Plan ${plan.status} made ${dateTimeOf(plan.created_at)}, ` +
    `${plan.steps} steps to ${dateTimeOf(plan.end)}; solve ${plan.solve_s === null ? "–"
      : plan.solve_s.toFixed(2)} s of ${plan.time_limit_s} s` +
    (plan.fallback_reason ? `; fallback: ${plan.fallback_reason}` : "") +
    (slack.length ? `; slack used: ${slack.join(", ")}` : "; no slack used");
}

// -- chart --------------------------------------------------------------------------------

function niceStep(span) {
  const raw = span / 6, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
}

function chartSeries(plan) {
  const stepMs = plan.step_min * 60000;
  const rows = [];
  for (const h of plan.history) {
    rows.push({ t: Date.parse(h.start), actual: h.actual.grid_w ?? null,
      planned: h.planned.grid_w ?? null, pv: null, battery: null, imp: null, exp: null });
  }
  for (const s of plan.steps) {
    rows.push({ t: Date.parse(s.start), actual: s.actual ? s.actual.grid_w ?? null : null,
      planned: s.grid_w, pv: s.pv_w, battery: s.battery_w,
      imp: s.import_cap_w, exp: s.export_cap_w === null ? null : -s.export_cap_w });
  }
  return { rows, stepMs };
}

function stepPath(rows, key, x, y, stepMs) {
  let d = "", open = false;
  for (const r of rows) {
    const v = r[key];
    if (v === null || v === undefined) { open = false; continue; }
    const x0 = x(r.t), x1 = x(r.t + stepMs), yv = y(v);
    d += open ? ` L${x0.toFixed(1)},${yv.toFixed(1)}` : ` M${x0.toFixed(1)},${yv.toFixed(1)}`;
    d += ` L${x1.toFixed(1)},${yv.toFixed(1)}`;
    open = true;
  }
  return d.trim();
}

function renderChart(plan, status) {
  const root = $("chart");
  const { rows, stepMs } = chartSeries(plan);
  root.replaceChildren();
  if (!rows.length) {
    root.append(svg("text", { x: 500, y: 170, "text-anchor": "middle" }, "no plan yet"));
    root.dataset.ready = "empty";
    return;
  }
  const t0 = rows[0].t, t1 = rows[rows.length - 1].t + stepMs;
  const keys = ["actual", "planned", "pv", "battery", "imp", "exp"];
  const values = rows.flatMap((r) => keys.map((k) => r[k])).filter((v) => v !== null);
  let lo = Math.min(0, ...values), hi = Math.max(0, ...values);
  if (hi - lo < 1000) hi = lo + 1000;
  const pad = (hi - lo) * 0.05;
  lo -= pad; hi += pad;
  const x = (t) => CHART.left + (t - t0) / (t1 - t0) * (CHART.w - CHART.left - CHART.right);
  const y = (v) => CHART.top + (hi - v) / (hi - lo) * (CHART.h - CHART.top - CHART.bottom);
  drawAxes(root, { x, y, lo, hi, t0, t1 });
  const series = [["s-cap", "imp"], ["s-cap", "exp"], ["s-pv", "pv"], ["s-battery", "battery"],
    ["s-planned", "planned"], ["s-actual", "actual"]];
  let drawn = 0;
  for (const [cls, key] of series) {
    const d = stepPath(rows, key, x, y, stepMs);
    if (d) { root.append(svg("path", { class: cls, d, "data-series": key })); drawn += 1; }
  }
  const now = Date.parse(status.time);
  if (now >= t0 && now <= t1) {
    root.append(svg("line", { class: "now", x1: x(now), x2: x(now), y1: CHART.top,
      y2: CHART.h - CHART.bottom }));
    root.append(svg("text", { x: x(now) + 4, y: CHART.top + 10 }, "now"));
  }
  root.dataset.ready = "true";
  root.dataset.series = String(drawn);
  root.dataset.planCreated = plan.created_at || "";
}

function drawAxes(root, { x, y, lo, hi, t0, t1 }) {
  const step = niceStep(hi - lo);
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    root.append(svg("line", { class: Math.abs(v) < step / 1e6 ? "zero" : "axis",
      x1: CHART.left, x2: CHART.w - CHART.right, y1: y(v), y2: y(v) }));
    root.append(svg("text", { x: CHART.left - 6, y: y(v) + 4, "text-anchor": "end" },
      `${Math.round(v / 1000)} kW`));
  }
  const hourMs = 3600000, span = (t1 - t0) / hourMs;
  const every = span > 24 ? 6 : span > 8 ? 3 : 1;
  for (let t = Math.ceil(t0 / hourMs) * hourMs; t <= t1; t += hourMs) {
    // Every few hours; none so close to the right edge that its label would be cut off.
    if (zoneParts(t).hour % every !== 0 || x(t) > CHART.w - CHART.right - 20) continue;
    const label = zoneParts(t).hour === 0 ? zoned(new Date(t), { day: "2-digit", month: "short" })
      : zoned(new Date(t), { hour: "2-digit", minute: "2-digit" });
    root.append(svg("line", { class: "axis", x1: x(t), x2: x(t), y1: CHART.top,
      y2: CHART.h - CHART.bottom }));
    root.append(svg("text", { x: x(t), y: CHART.h - 10, "text-anchor": "middle" }, label));
  }
}

// -- stored energy, heat, prices and the plan's reasons -------------------------------------

const SMALL = { w: 400, h: 220, left: 44, right: 8, top: 10, bottom: 24 };

// One small step chart: series = [[cssClass, key]], rows = [{t, key: value}]; a dot for each
// measured value now ([key, value]). Returns the number of series drawn.
function smallChart(root, rows, stepMs, series, { unit, zeroBased = true, fixed = null,
  now = null, measured = [] }) {
  root.replaceChildren();
  const values = rows.flatMap((r) => series.map(([, k]) => r[k]))
    .concat(measured.map(([, v]) => v)).filter((v) => v !== null && v !== undefined);
  if (!rows.length || !values.length) {
    root.append(svg("text", { x: 200, y: 110, "text-anchor": "middle" }, "no plan yet"));
    root.dataset.ready = "empty";
    return 0;
  }
  const t0 = rows[0].t, t1 = rows[rows.length - 1].t + stepMs;
  let [lo, hi] = fixed || [Math.min(zeroBased ? 0 : Infinity, ...values), Math.max(0, ...values)];
  if (hi - lo < 1e-9) hi = lo + 1;
  const x = (t) => SMALL.left + (t - t0) / (t1 - t0) * (SMALL.w - SMALL.left - SMALL.right);
  const y = (v) => SMALL.top + (hi - v) / (hi - lo) * (SMALL.h - SMALL.top - SMALL.bottom);
  const step = niceStep(hi - lo);
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) {
    root.append(svg("line", { class: Math.abs(v) < step / 1e6 ? "zero" : "axis",
      x1: SMALL.left, x2: SMALL.w - SMALL.right, y1: y(v), y2: y(v) }));
    root.append(svg("text", { x: SMALL.left - 4, y: y(v) + 4, "text-anchor": "end" },
      `${Math.round(v)}${unit}`));
  }
  const hourMs = 3600000, every = (t1 - t0) / hourMs > 12 ? 6 : 3;
  for (let t = Math.ceil(t0 / hourMs) * hourMs; t <= t1; t += hourMs) {
    if (zoneParts(t).hour % every !== 0 || x(t) > SMALL.w - SMALL.right - 16) continue;
    root.append(svg("text", { x: x(t), y: SMALL.h - 8, "text-anchor": "middle" },
      zoned(new Date(t), { hour: "2-digit", minute: "2-digit" })));
  }
  let drawn = 0;
  for (const [cls, key] of series) {
    const d = stepPath(rows, key, x, y, stepMs);
    if (d) { root.append(svg("path", { class: cls, d, "data-series": key })); drawn += 1; }
  }
  if (now !== null && now >= t0 && now <= t1) {
    root.append(svg("line", { class: "now", x1: x(now), x2: x(now), y1: SMALL.top,
      y2: SMALL.h - SMALL.bottom }));
    for (const [cls, v] of measured) {
      if (v === null || v === undefined) continue;
      root.append(svg("circle", { class: `${cls} measured`, cx: x(now), cy: y(v), r: 5,
        "data-measured": cls, "data-value": v.toFixed(1) }));
    }
  }
  root.dataset.ready = "true";
  root.dataset.series = String(drawn);
  return drawn;
}

function renderViews(plan, status) {
  const stepMs = plan.step_min * 60000;
  const bcap = plan.battery_capacity_wh, scap = plan.store_capacity_wh;
  const pct = (v, cap) => (v === null || v === undefined || !cap ? null : 100 * v / cap);
  const rows = plan.steps.map((s) => ({ t: Date.parse(s.start),
    soc: pct(s.battery_soc_wh, bcap), store: pct(s.store_wh, scap),
    hp: s.heat_pump_th_w === null ? null : s.heat_pump_th_w / 1000,
    boiler: s.boiler_th_w === null ? null : s.boiler_th_w / 1000,
    demand: s.heat_demand_th_w === null ? null : s.heat_demand_th_w / 1000,
    waste: s.waste_heat_th_w === null ? null : s.waste_heat_th_w / 1000,
    imp: s.price_import_eur_per_mwh, exp: s.price_export_eur_per_mwh }));
  const now = Date.parse(status.time), f = status.fleet;
  smallChart($("chart-soc"), rows, stepMs, [["s-soc", "soc"], ["s-store", "store"]],
    { unit: " %", fixed: [0, 100], now,
      measured: [["s-soc", f.battery_soc_ratio === null ? null : 100 * f.battery_soc_ratio]] });
  smallChart($("chart-heat"), rows, stepMs, [["s-demand", "demand"], ["s-hp", "hp"],
    ["s-boiler", "boiler"], ["s-waste", "waste"]], { unit: "", now,
    measured: [["s-hp", f.heat_pump_th_w === null ? null : f.heat_pump_th_w / 1000],
      ["s-waste", f.waste_heat_offered_w === null ? null : f.waste_heat_offered_w / 1000]] });
  smallChart($("chart-price"), rows, stepMs, [["s-import", "imp"], ["s-export", "exp"]],
    { unit: "", zeroBased: true, now });
}

function renderWhy(plan, status) {
  const body = $("why").querySelector("tbody");
  body.replaceChildren();
  const now = Date.parse(status.time);
  // The quarter hour now and what follows; a row only where the reason changes.
  let last = null, shown = 0;
  for (const s of plan.steps) {
    if (Date.parse(s.start) + plan.step_min * 60000 <= now) continue;
    if (s.why === last) continue;
    last = s.why;
    const tr = el("tr", { "data-start": s.start });
    tr.append(el("td", {}, dateTimeOf(s.start)),
      el("td", { class: "num" }, s.grid_w === null ? "–" : kw(s.grid_w)),
      el("td", {}, s.why || "–"));
    body.append(tr);
    if (++shown >= 12) break;
  }
  const nowWhy = status.plan && status.plan.why;
  $("why-now").textContent = nowWhy ? `Now: ${nowWhy.text}` : "";
}

// -- alerts, devices, caps ------------------------------------------------------------------

function renderAlerts(a) {
  const list = $("alerts");
  list.replaceChildren();
  if (!a.active.length) list.append(el("li", { class: "none" }, "No active alerts."));
  for (const alert of a.active) {
    const item = el("li", { class: alert.severity, "data-alert": alert.name });
    item.append(el("b", {}, alert.name), document.createTextNode(alert.summary));
    list.append(item);
  }
  const events = $("events");
  events.replaceChildren();
  for (const e of a.events.slice(0, 15)) {
    events.append(el("li", { class: e.level }, `${timeOf(e.time)} ${e.source}: ${e.message}`));
  }
}

function renderDevices(d) {
  $("devices-count").textContent = `(${d.offline} offline of ${d.total}; worst first` +
    (d.devices.length < d.total ? `, first ${d.devices.length})` : ")");
  const body = $("devices").querySelector("tbody");
  body.replaceChildren();
  for (const r of d.devices) {
    const tr = el("tr", { "data-device": r.id });
    const comms = el("td");
    comms.append(el("span", { class: "badge " + (r.online ? "ok" : "bad") },
      r.online ? "online" : r.polled ? "offline" : "not polled"));
    const sp = r.setpoint;
    const spText = !sp ? "–" : `${sp.quantity} ${fmtSetpoint(sp.quantity, sp.requested_w)}` +
      (sp.dry_run ? " (dry-run)" : sp.ok ? " ✓" : ` ✗ read ${fmtSetpoint(sp.quantity, sp.read_back_w)}`);
    tr.append(el("td", {}, r.id), el("td", {}, r.kind), comms,
      el("td", { class: "num" }, kw(r.power_w, 1)),
      el("td", { class: "num" }, r.soc_pct === null ? "–" : `${r.soc_pct.toFixed(0)} %`),
      el("td", {}, r.breaker || "–"), el("td", {}, ago(r.last_success_age_s)),
      el("td", { class: "num" }, String(r.consecutive_failures)), el("td", {}, spText),
      el("td", { class: "why" }, r.why || ""), el("td", { class: "err" }, r.last_error || ""));
    body.append(tr);
  }
}

function fmtSetpoint(quantity, value) {
  if (value === null || value === undefined) return "–";
  return quantity.endsWith("_pct") ? `${value.toFixed(0)} %` : kw(value, 1);
}

function renderCaps(caps) {
  const body = $("caps").querySelector("tbody");
  body.replaceChildren();
  for (const c of caps) {
    const tr = el("tr", { "data-cap": c.id });
    const del = el("button", { type: "button", class: "small danger" }, "remove");
    del.addEventListener("click", () => act("DELETE", `/api/caps/${c.id}`, null,
      "cap removed"));
    const cell = el("td");
    cell.append(del);
    tr.append(el("td", {}, `${c.direction} ≤ ${kw(c.limit_w)}` + (c.active ? " (now)" : "")),
      el("td", {}, `${dateTimeOf(c.start)} – ${sameDay(c.start, c.end) ? timeOf(c.end)
        : dateTimeOf(c.end)}`), el("td", {}, c.reason), cell);
    body.append(tr);
  }
  $("caps").classList.toggle("hidden", !caps.length);
}

// -- actions ------------------------------------------------------------------------------

function showResult(text, ok) {
  const node = $("action-result");
  node.textContent = text;
  node.className = "result " + (ok ? "ok" : "err");
}

async function act(method, path, body, done) {
  const token = $("token").value.trim();
  if (!token) { showResult("Enter the API token first.", false); $("token").focus(); return null; }
  try {
    const resp = await fetch(path, { method, headers: { "Authorization": `Bearer ${token}`,
      "Content-Type": "application/json" }, body: body === null ? undefined : JSON.stringify(body) });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      showResult(`Refused (${resp.status}): ${data.error || resp.statusText}`, false);
      return null;
    }
    showResult(done + (data.replan ? ` · re-plan ${data.replan}` : ""), true);
    refresh();
    return data;
  } catch (err) {
    showResult(`Failed: ${err.message}`, false);
    return null;
  }
}

async function submitCap(event) {
  event.preventDefault();
  const start = fromZonedInput($("cap-start").value), end = fromZonedInput($("cap-end").value);
  const limitKw = Number($("cap-limit").value);
  if ($("cap-limit").value === "" || !Number.isFinite(limitKw) || limitKw < 0) {
    showResult("Limit must be a number of kW, 0 or more.", false); return;
  }
  if (!start || !end) { showResult("Enter both times of the window.", false); return; }
  const body = { direction: $("cap-direction").value, limit_w: limitKw * 1000,
    start: start.toISOString(), end: end.toISOString(), reason: $("cap-reason").value.trim() };
  const data = await act("POST", "/api/caps", body,
    `${body.direction} cap of ${limitKw} kW set until ${dateTimeOf(body.end)}`);
  if (data) document.body.dataset.lastCap = data.cap.id;
}

function defaultWindow() {
  // The controller's clock (a demo may run faster than real time), rounded to a quarter hour.
  const now = page.status ? Date.parse(page.status.time) : Date.now();
  const start = new Date(Math.floor(now / 900000) * 900000);
  if (!$("cap-start").value) $("cap-start").value = toZonedInput(start);
  if (!$("cap-end").value) $("cap-end").value = toZonedInput(new Date(start.getTime() + 2 * 3600000));
}

// -- grid-operator signals ------------------------------------------------------------------

async function refreshSignals() {
  try {
    renderSignals(await getJson("/api/signals"));
  } catch (err) {
    // The status refresh reports a lost connection; keep the last list on screen.
  } finally {
    clearTimeout(page.signalsTimer);
    page.signalsTimer = setTimeout(refreshSignals, REFRESH_MS);
  }
}

function renderSignals(v) {
  const body = $("signals").querySelector("tbody");
  body.replaceChildren();
  const devices = v.compliance.devices;
  for (const s of v.signals) {
    const tr = el("tr", { "data-signal": s.id, "data-source": s.source });
    const scope = s.devices === null ? "site" : s.devices.length <= 3 ? s.devices.join(", ")
      : `${s.devices.length} devices`;
    const broken = (s.devices || Object.keys(devices)).filter((d) => devices[d] === "not_compliant");
    const state = !s.active ? "to come" : broken.length ? `not compliant: ${broken.join(", ")}`
      : "compliant";
    const cell = el("td");
    if (s.source === "operator") {
      const del = el("button", { type: "button", class: "small danger" }, "revoke");
      del.addEventListener("click", () => act("DELETE", `/api/signals/${s.id}`, null,
        "signal revoked"));
      cell.append(del);
    }
    tr.append(el("td", {}, s.source), el("td", {}, s.what.replace(/^[^:]*: /, "")),
      el("td", {}, scope), el("td", {}, dateTimeOf(s.start)),
      el("td", {}, s.end ? dateTimeOf(s.end) : "until revoked"), el("td", {}, s.reason),
      el("td", { class: broken.length ? "err" : "" }, state), cell);
    body.append(tr);
  }
  $("signals").classList.toggle("hidden", !v.signals.length);
  $("signals-none").classList.toggle("hidden", v.signals.length > 0);
  const badge = $("signals-compliance");
  badge.textContent = v.compliance.compliant ? "compliant" : "not compliant";
  badge.className = "badge " + (v.compliance.compliant ? "ok" : "bad");
  const notes = $("signals-notes");
  notes.replaceChildren();
  for (const text of [...v.conflicts, ...v.compliance.reasons]) {
    notes.append(el("li", { class: "warning" }, text));
  }
  if (v.compliance.grid === false) {
    notes.append(el("li", { class: "error" }, "grid exchange outside the signals' caps"));
  }
  for (const [id, src] of Object.entries(v.sources)) {
    if (src.silent) notes.append(el("li", { class: "error" }, `${id} silent: failsafe in force`));
  }
}

function init() {
  $("cap-form").addEventListener("submit", submitCap);
  $("pause").addEventListener("click", () => {
    const pause = !(page.status && page.status.dry_run);
    act("POST", "/api/pause", { dry_run: pause }, pause ? "control paused" : "control resumed");
  });
  $("replan").addEventListener("click", () => act("POST", "/api/replan", {}, "re-plan requested"));
  refresh().then(defaultWindow);
  refreshSignals();
}

document.addEventListener("DOMContentLoaded", init);
