// batsched dashboard: renders what the server pushes over Server-Sent Events (no polling, no reloads).
"use strict";
(function () {
  const page = document.body.dataset.page;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const set = (id, text) => { const el = $(id); if (el) el.textContent = text; };
  const watts = (w) => (w === null || w === undefined ? "—" : (Math.abs(w) >= 1000 ? (w / 1000).toFixed(2) + " kW" : Math.round(w) + " W"));
  const esc = (s) => String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  let latestNow = null;

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    let doc;
    try { doc = await res.json(); } catch (e) { doc = { ok: false, error: "HTTP " + res.status + " (no JSON answer)" }; }
    if (!res.ok && doc.ok === undefined) doc = { ok: false, error: doc.error || doc.detail && JSON.stringify(doc.detail) || "HTTP " + res.status };
    return doc;
  }

  $("logout").addEventListener("click", async () => { await post("/logout"); window.location = "/login"; });

  // ------------------------------------------------------------------ status strip, shared by every page
  function renderStrip(now) {
    set("strip-mode", "mode " + (now.mode || "unknown"));
    set("strip-dry", now.dry_run === null ? "dry-run unknown" : now.dry_run ? "DRY-RUN" : "live writes");
    $("strip-dry").classList.toggle("warn", now.dry_run === true);
    set("strip-time", now.now_local);
    const w = $("warnings");
    if (now.warnings.length) {
      w.innerHTML = now.warnings.map((t) => "<div>⚠ " + esc(t) + "</div>").join("");
      w.hidden = false;
    } else { w.hidden = true; }
  }

  function costsHtml(c) {
    if (!c) return "no plan yet";
    let h = '<table class="kv"><tr><th>This plan</th><td><b>£' + c.expected_cost_gbp.toFixed(2) + "</b></td><td></td></tr>";
    for (const b of c.baselines) {
      h += "<tr><th>" + esc(b.name) + "</th><td>£" + b.cost_gbp.toFixed(2) + '</td><td class="' + (b.vs.loss ? "bad" : "muted") + '">' + esc(b.vs.text) + "</td></tr>";
    }
    h += "</table>";
    if (c.status !== "ok") h += '<div class="bad">plan degraded: ' + esc(c.reason || "") + "</div>";
    return h;
  }
  function comparisonHtml(c) {
    let h = '<div class="table-wrap"><table class="list fit money"><thead><tr><th>strategy</th><th>paid over the plan</th><th>ends at</th><th>energy left worth</th><th>paid, allowing for it</th><th>this plan against it</th></tr></thead><tbody>';
    for (const r of c.rows) {
      h += '<tr data-key="' + esc(r.key) + '"><th>' + esc(r.name) + '</th><td data-label="paid over the plan">' + esc(r.paid) + '</td><td data-label="ends at">' + esc(r.end_soc_pct) + ' %</td><td data-label="energy left worth">' + esc(r.end_value) + '</td><td data-label="paid, allowing for it">' + esc(r.comparable) + '</td><td data-label="this plan against it" class="' + (r.vs_plan && r.vs_plan.loss ? "bad" : "") + '">' + (r.vs_plan ? esc(r.vs_plan.text) : "—") + "</td></tr>";
    }
    return h + "</tbody></table></div>";
  }

  // ------------------------------------------------------------------ Now
  function renderNow(now) {
    set("headline", now.headline);
    set("next-charge", now.next_charge ? now.next_charge.text : "none planned");
    set("money-today", now.money_today || "not published yet");
    const b = now.battery;
    if (b) {
      set("soc", b.soc_pct.toFixed(1));
      const bar = $("soc-bar"); if (bar) bar.style.width = b.soc_pct + "%";
      set("battery-observed", "read at " + b.observed + (b.stale ? " — OUT OF DATE" : ""));
      $("battery-observed").classList.toggle("bad", b.stale);
      $("flows").innerHTML = now.flows.map((f) => "<tr><th>" + esc(f.label) + '</th><td class="flow ' + esc(f.direction) + '">' + esc(f.text) + "</td></tr>").join("");
      set("grid-status", b.grid_status === "on_grid" ? "grid connected" : b.grid_status === "off_grid" ? "GRID DOWN: running on the battery" : "grid status unknown");
    }
    if (now.price) {
      set("price", now.price.p_per_kwh === null ? "unknown" : now.price.p_per_kwh.toFixed(2));
      set("price-slot", "slot " + now.price.slot + (now.price.stale ? " — STALE" : ""));
      set("price-tariff", now.price.tariff ? "tariff: " + now.price.tariff : "");
    }
    const a = now.action;
    if ($("action")) {
      $("action").textContent = a.action_text || "no plan";
      $("action").className = "tag " + (a.action || "none");
      set("action-reason", a.reason_text ? a.reason_text + (a.detail ? " (" + a.detail + ")" : "") + (a.target_soc_pct != null ? ", target " + a.target_soc_pct + " %" : "") : "—");
      const d = now.last_decision;
      const ex = now.executor;
      set("executor-state", ex ? (ex.forced ? "forced state active" + (ex.lease_until ? " until " + ex.lease_until : "") : "normal Powerwall control") + " · heartbeat " + ex.age + " ago" + (now.watchdog ? " · watchdog " + now.watchdog.state : "") : "no executor heartbeat yet");
      set("last-decision", d ? "Last decision " + d.at + ": " + d.action + ", " + d.outcome + " — " + d.why + (d.error ? " — " + d.error : "") : "no decision from the executor yet");
    }
    if ($("services")) {
      $("services").innerHTML = Object.entries(now.services).map(([k, v]) => "<tr><th>" + esc(k) + '</th><td class="st ' + esc(v) + '">' + esc(v === "online" ? "running" : v === "offline" ? "stopped" : "no news") + "</td></tr>").join("");
    }
    if ($("inputs")) {
      $("inputs").innerHTML = now.inputs.map((i) => "<tr><th>" + esc(i.label) + '</th><td class="st ' + esc(i.state) + '">' + esc(i.state) + "</td><td>" + esc(i.age) + "</td></tr>").join("");
    }
    if ($("costs") && page === "now") $("costs").innerHTML = costsHtml(now.plan_costs);
    if ($("summary") && now.daily_summary) {
      const s = now.daily_summary;
      $("summary").innerHTML = s.error ? esc(s.error) : s.lines.map((l) => "<p>" + esc(l) + "</p>").join("");
      $("summary").classList.toggle("muted", !!s.error);
    }
    if ($("sessions-card") && now.sessions) {
      const ss = now.sessions;
      $("sessions-card").hidden = false;
      $("sessions").innerHTML = ss.sessions.length ? ss.sessions.map((x) => "<tr><th>" + (x.kind === "saving" ? "Saving Session" : "Free electricity") + (x.active ? " (now)" : "") + "</th><td>" + esc(x.start_local) + "–" + esc(x.end_local) + "</td><td>" + (x.reward_p_per_kwh != null ? esc(x.reward_p_per_kwh) + "p/kWh" : "") + "</td></tr>").join("") : '<tr><td class="muted">none coming</td></tr>';
      set("sessions-status", ss.status === "failing" ? "cannot be read: " + ss.error : ss.status === "disabled" ? "no Octopus account number and API key" : "");
      $("sessions-status").classList.toggle("bad", ss.status === "failing");
    }
    if ($("windows-card") && now.windows) {
      $("windows-card").hidden = !now.windows.length;
      $("now-windows").innerHTML = now.windows.map((w) => "<tr><th>" + esc(w.action) + (w.target_soc_pct != null ? " to " + esc(w.target_soc_pct) + " %" : "") + (w.active ? " (now)" : "") + "</th><td>" + esc(w.start_local) + "–" + esc(w.end_local) + "</td></tr>").join("");
    }
    if ($("external-card") && now.external && now.external.length) {
      $("external-card").hidden = false;
      $("external").innerHTML = now.external.map((e) => "<tr><th>" + esc(e.source) + "</th><td>" + esc(e.status) + "</td><td>" + esc(e.detail) + '</td><td class="muted">' + esc(e.at) + "</td></tr>").join("");
    }
  }

  // ------------------------------------------------------------------ Plan
  function renderPlan(p) {
    const el = $("plan-chart");
    if (!el || !window.Plotly) return;
    if (!p.slots) { el.innerHTML = '<p class="muted">waiting for prices and a plan…</p>'; return; }
    if (el.querySelector("p")) el.innerHTML = "";
    window.Plotly.react(el, p.figure.data, p.figure.layout, { responsive: true, displaylogo: false });
    el.dataset.slots = p.slots;
    el.dataset.charge = p.charge_slots;
    el.dataset.estimated = p.estimated_slots;
    el.dataset.windows = p.window_count;
    const notes = [];
    if (p.estimated_slots) notes.push(p.estimated_slots + " half-hours after the published prices show an estimate (hatched grey, " + p.estimate_method + "): not a price, nothing charges on it.");
    if (p.window_count) notes.push("Blue bands are your manual windows.");
    set("plan-notes", notes.join(" "));
    if (p.end) {
      set("plan-end", "At " + p.end.at + " the plan leaves the battery at " + p.end.soc_pct.toFixed(0) + " %, counted as worth £" + p.end.value_gbp.toFixed(2) + (p.end.method ? " (" + p.end.method + ")" : "") + ".");
      $("plan-end").classList.remove("muted");
    }
    set("plan-meta", p.generated ? "plan made " + p.generated + ", valid until " + p.valid_until + (p.expired ? " — EXPIRED" : "") + " · " + p.charge_slots + " charge slots" : "prices only: no plan yet");
    if ($("comparison")) {
      if (p.comparison) { $("comparison").innerHTML = comparisonHtml(p.comparison); set("comparison-note", p.comparison.note); }
      else $("comparison").innerHTML = costsHtml(p.costs);
      $("comparison").classList.toggle("muted", !p.costs);
    }
  }

  // ------------------------------------------------------------------ History
  function decisionHtml(d) {
    return '<li class="dec"><span class="t">' + esc(d.time) + "</span> " +
      '<span class="tag ' + esc(d.action.replace(/[^a-z]/g, "_")) + '">' + esc(d.action) + "</span> " +
      "<span>" + esc(d.outcome) + (d.dry_run ? " (dry run)" : "") + "</span>" +
      '<span class="why">' + esc(d.why) + "</span>" +
      '<span class="cfg">sent: ' + esc(d.sent) + '</span><span class="cfg' + (d.read_back_differs ? " bad" : "") + '">read back: ' + esc(d.read_back) + "</span>" +
      (d.soc_pct === null ? "" : '<span class="cfg">SOC ' + esc(d.soc_pct) + " %</span>") +
      (d.error ? '<span class="bad">' + esc(d.error) + "</span>" : "") + "</li>";
  }
  async function loadHistory(day) {
    if (day !== undefined) $("day").value = day;
    day = $("day").value;
    $("csv").href = "/api/history.csv" + (day ? "?day=" + day : "");
    const res = await fetch("/api/history" + (day ? "?day=" + day : ""), { credentials: "same-origin" });
    const doc = await res.json();
    if (!res.ok) { set("history-count", doc.error || "error " + res.status); return; }
    $("day").value = doc.day;
    $("csv").href = "/api/history.csv?day=" + doc.day;
    $("day-prev").dataset.day = doc.prev_day;
    $("day-next").dataset.day = doc.next_day || "";
    $("day-next").disabled = !doc.next_day;
    set("history-tz", doc.tz);
    set("day-text", doc.day_text);
    const open = new Set(Array.from(document.querySelectorAll("#spans details[open]")).map((d) => d.dataset.key));
    $("spans").innerHTML = doc.spans.map((s) => {
      const key = s.start + "|" + s.action_code + "|" + s.outcome_code;
      return '<details class="span' + (s.problem ? " problem" : "") + '" data-key="' + esc(key) + '"' + (open.has(key) ? " open" : "") + "><summary>" +
        '<span class="t">' + esc(s.start) + (s.end !== s.start ? "–" + esc(s.end) : "") + "</span> " +
        '<span class="tag ' + esc(s.action_code) + '">' + esc(s.action) + "</span> " +
        '<span class="outcome">' + esc(s.outcome) + "</span> " +
        '<span class="muted">' + s.count + (s.count === 1 ? " decision" : " decisions") + "</span>" +
        '<span class="why">' + esc(s.why) + (s.other_reasons ? " (and " + s.other_reasons + " other reason" + (s.other_reasons === 1 ? "" : "s") + ")" : "") + "</span>" +
        '</summary><ul class="decs">' + s.decisions.map(decisionHtml).join("") + "</ul></details>";
    }).join("") || '<p class="muted">No decisions on this day.</p>';
    set("history-count", doc.decisions + (doc.decisions === 1 ? " decision" : " decisions") + " in " + doc.spans.length + (doc.spans.length === 1 ? " span" : " spans") + " on " + doc.day_text);
  }
  async function loadHistoryChart() {
    const res = await fetch("/api/history/chart?days=" + $("chart-days").value, { credentials: "same-origin" });
    if (!res.ok) return;
    const fig = await res.json();
    if (window.Plotly) window.Plotly.react($("history-chart"), fig.data, fig.layout, { responsive: true, displaylogo: false });
  }

  // ------------------------------------------------------------------ Money
  function moneyTable(rows) {
    return '<div class="table-wrap"><table class="list fit money"><thead><tr><th>period</th><th>paid</th><th>battery</th><th>no battery</th><th>self-use</th><th>against no battery</th><th>against self-use</th></tr></thead><tbody>' +
      rows.map((r) => "<tr><th>" + esc(r.label) + '</th><td data-label="paid">' + esc(r.paid) + '</td><td data-label="battery">' + esc(r.stored) + '</td><td data-label="no battery">' + esc(r.no_battery) + '</td><td data-label="self-use">' + esc(r.self_use) + '</td><td data-label="against no battery" class="' + (r.vs_no_battery.loss ? "bad" : "") + '">' + esc(r.vs_no_battery.text) + '</td><td data-label="against self-use" class="' + (r.vs_self_use.loss ? "bad" : "") + '">' + esc(r.vs_self_use.text) + "</td></tr>").join("") + "</tbody></table></div>";
  }
  async function loadMoney() {
    const res = await fetch("/api/money", { credentials: "same-origin" });
    if (!res.ok) return;
    const m = await res.json();
    $("money-meanings").innerHTML = Object.entries(m.meanings).map(([k, v]) => "<dt>" + esc(MONEY_NAMES[k] || k) + "</dt><dd>" + esc(v) + "</dd>").join("");
    if (!m.published) return;
    const t = m.today;
    set("money-state", t ? t.label + ": " + t.paid + "; against no battery " + t.vs_no_battery.text + ", against self-use " + t.vs_self_use.text + "." : "No figures for today yet.");
    $("money-state").classList.remove("muted");
    set("money-note", m.note);
    $("money-days").innerHTML = m.days.length ? moneyTable(m.days) : '<p class="muted">no closed day yet</p>';
    $("money-months").innerHTML = moneyTable(m.months.concat(m.since_install ? [m.since_install] : []));
    if (window.Plotly && m.days.length) {
      const c = m.chart;
      const bar = (name, y, color) => ({ type: "bar", name: name, x: c.x, y: y, marker: { color: color } });
      window.Plotly.react($("money-chart"), [bar("batsched (allowing for stored energy)", c.comparable, "#1d7a3a"), bar("self-use", c.self_use, "#4a6a8f"), bar("no battery", c.no_battery, "#8a909b")],
        { barmode: "group", margin: { l: 50, r: 10, t: 10, b: 60 }, legend: { orientation: "h", y: -0.25 }, yaxis: { title: { text: "£" } } }, { responsive: true, displaylogo: false });
    }
  }
  const MONEY_NAMES = { paid: "paid", stored: "battery", no_battery: "no battery", self_use: "self-use", vs_no_battery: "against no battery", vs_self_use: "against self-use" };

  // ------------------------------------------------------------------ Control
  // Every time shown or typed here is the SYSTEM's (the server's clock and zone), 24-hour: never the browser's.
  function result(ok, text, at) {
    const ul = $("results");
    if (ul.querySelector(".muted")) ul.innerHTML = "";
    const li = document.createElement("li");
    li.className = ok ? "ok" : "bad";
    li.textContent = (at || (latestNow && latestNow.clock ? latestNow.clock.now_hhmm : "")) + " — " + text;
    ul.prepend(li);
  }
  async function send(url, body, button) {
    if (button) button.disabled = true;
    try {
      const doc = await post(url, body);
      result(doc.ok, doc.ok ? doc.message : "error: " + doc.error, doc.at);
    } catch (e) {
      result(false, "error: request failed (" + e + ")");
    } finally { if (button) button.disabled = false; }
  }
  const SETTINGS = ["min_soc_pct", "target_soc_cap_pct", "max_charge_price_gbp", "peak_start_local", "peak_end_local"];
  function wireControl() {
    const on = (id, fn) => $(id).addEventListener("submit", (ev) => { ev.preventDefault(); fn(ev.submitter); });
    on("f-mode", (b) => send("/api/control/mode", { mode: $("mode").value }, b));
    on("f-dry", (b) => send("/api/control/dry_run", { enabled: $("dry").checked }, b));
    on("f-override", (b) => {
      const target = $("ov-target").value;
      send("/api/control/override", { action: $("ov-action").value, until_day: $("ov-day").value, until_hhmm: $("ov-time").value, target_soc_pct: target === "" ? null : Number(target) }, b);
    });
    $("ov-cancel").addEventListener("click", (ev) => send("/api/control/override", { action: null }, ev.target));
    on("f-replan", (b) => send("/api/control/replan", {}, b));
    on("f-settings", async (b) => {
      let changed = 0;
      for (const name of SETTINGS) {
        const el = $("s-" + name);
        if (el.value === "" || el.dataset.shown === el.value) continue;
        let value = el.value;
        if (name === "max_charge_price_gbp") value = String(Number(value) / 100);
        changed += 1;
        await send("/api/control/setting", { name: name, value: value }, b);
      }
      if (!changed) result(false, "nothing changed");
    });
    for (const id of ["ov-time", "ov-day"]) $(id).addEventListener("input", () => { $("ov-time").dataset.touched = "1"; });
    on("f-window", (b) => {
      const target = $("w-target").value;
      send("/api/control/window", { action: $("w-action").value, start_day: $("w-start-day").value, start_hhmm: $("w-start").value, end_day: $("w-end-day").value, end_hhmm: $("w-end").value, target_soc_pct: target === "" ? null : Number(target) }, b);
    });
    $("windows").addEventListener("click", (ev) => {
      const btn = ev.target.closest("button[data-window]");
      if (btn) send("/api/control/window/delete", { window_id: Number(btn.dataset.window) }, btn);
    });
  }
  function renderWindows(list) {
    const body = $("windows").querySelector("tbody");
    body.innerHTML = list.length ? list.map((w) => '<tr data-id="' + esc(w.id) + '"><td>' + esc(w.id) + "</td><td>" + esc(w.start_local) + "–" + esc(w.end_local) + '</td><td><span class="tag ' + esc(w.action) + '">' + esc(w.action) + "</span>" + (w.target_soc_pct == null ? "" : " to " + esc(w.target_soc_pct) + " %") + (w.active ? " (now)" : "") + '</td><td class="opt">' + esc(w.origin || w.source) + '</td><td><button type="button" class="secondary" data-window="' + esc(w.id) + '" aria-label="delete window ' + esc(w.id) + '">Delete</button></td></tr>').join("") : '<tr><td colspan="5" class="muted">no windows</td></tr>';
  }
  function fillDays(id, days, chosen) {
    const el = $(id);
    const key = days.map((d) => d.value).join();
    if (el.dataset.days !== key) {
      const keep = el.value;
      el.innerHTML = days.map((d) => '<option value="' + esc(d.value) + '">' + esc(d.label) + "</option>").join("");
      el.dataset.days = key;
      el.value = keep && days.some((d) => d.value === keep) ? keep : chosen || days[0].value;
    }
  }
  function renderControl(now) {
    const c = now.clock;
    set("ctl-now", c.now_hhmm + " on " + c.days[0].label.replace("Today, ", ""));
    set("ctl-zone", c.zone);
    fillDays("ov-day", c.days, c.later_day);
    fillDays("w-start-day", c.days, c.days[1].value);
    fillDays("w-end-day", c.days, c.days[1].value);
    if (!$("ov-time").dataset.touched && document.activeElement !== $("ov-time")) { $("ov-time").value = c.later_hhmm; $("ov-day").value = c.later_day; }
    if (now.windows) renderWindows(now.windows);
    set("cur-mode", now.mode || "unknown");
    if (now.override) {
      set("cur-override", now.override.text);
      $("cur-override").classList.toggle("muted", !now.override.in_force);
    }
    set("cur-dry", now.dry_run === null ? "unknown" : now.dry_run ? "on" : "off");
    for (const [name, value] of Object.entries(now.settings)) {
      const el = $("s-" + name);
      if (!el || value === null || document.activeElement === el) continue;
      let shown = value;
      if (name === "max_charge_price_gbp") shown = String(Math.round(Number(value) * 10000) / 100);
      if (el.dataset.shown !== shown) { el.value = shown; el.dataset.shown = shown; }
    }
  }

  // ------------------------------------------------------------------ live stream
  function connect() {
    const live = $("live");
    const es = new EventSource("/api/events");
    es.onopen = () => { live.textContent = "live"; live.className = "pill on"; };
    es.onerror = () => { live.textContent = "reconnecting…"; live.className = "pill off"; };
    es.addEventListener("now", (ev) => {
      const now = JSON.parse(ev.data);
      latestNow = now;
      renderStrip(now);
      if (page === "now") renderNow(now);
      if (page === "control") renderControl(now);
    });
    es.addEventListener("plan", (ev) => { if (page === "plan") renderPlan(JSON.parse(ev.data)); });
    es.addEventListener("money", () => { if (page === "money") loadMoney(); });
    es.addEventListener("applied", (ev) => {
      if (page !== "history") return;
      const day = JSON.parse(ev.data).day;
      if (!$("day").value || $("day").value === day) { loadHistory(); loadHistoryChart(); }
    });
  }

  window.addEventListener("DOMContentLoaded", () => {
    if (page === "history") {
      $("day-prev").addEventListener("click", () => loadHistory($("day-prev").dataset.day));
      $("day-next").addEventListener("click", () => { if ($("day-next").dataset.day) loadHistory($("day-next").dataset.day); });
      $("chart-days").addEventListener("change", loadHistoryChart);
      loadHistory(); loadHistoryChart();
    }
    if (page === "control") wireControl();
    if (page === "money") loadMoney();
    connect();
  });
})();
