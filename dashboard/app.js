// Reshard dashboard: polls GET /v1/dashboard (open, figures only) every second, refreshes at
// once when /v1/events announces a change, and sends admin commands with the token the operator
// types (kept in this tab's sessionStorage only).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("reshard-token") || "", samples: [], migrationId: null, last: null };

function text(id, value) { $(id).textContent = value; }
function number(value) { return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US"); }
function bytes(value) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let index = 0, amount = value;
  while (amount >= 1024 && index < units.length - 1) { amount /= 1024; index++; }
  return `${amount.toFixed(index === 0 ? 0 : 1)} ${units[index]}`;
}
function clock(ms) { return ms ? new Date(ms).toLocaleTimeString("en-GB") : "–"; }
function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = cell;
    tr.appendChild(td);
  }
  return tr;
}
function fillTable(id, rows) { $(id).tBodies[0].replaceChildren(...rows.map(row)); }

// Rows per second over the last ten polls of the same migration, and the time left at that rate.
function rateAndEta(migration, nowMs) {
  if (state.migrationId !== migration.id) { state.migrationId = migration.id; state.samples = []; }
  state.samples.push({ at: nowMs, rows: migration.rows_copied });
  if (state.samples.length > 10) state.samples.shift();
  const first = state.samples[0], last = state.samples[state.samples.length - 1];
  const rate = last.at > first.at ? (last.rows - first.rows) / ((last.at - first.at) / 1000) : null;
  const left = migration.rows_estimated !== null && migration.rows_estimated !== undefined ? migration.rows_estimated - migration.rows_copied : null;
  const eta = rate && rate > 0 && left !== null ? Math.max(0, left / rate * 1000) : null;
  return { rate, eta };
}

function renderMigration(d) {
  const m = d.migration;
  $("migration").hidden = !m;
  $("no-migration").hidden = !!m;
  if (!m) { text("migration-id", ""); return; }
  text("migration-id", m.id);
  text("phase", m.phase.replace(/_/g, " "));
  $("phase").dataset.phase = m.phase;
  text("kind", m.kind);
  text("strategy", m.strategy);
  $("erring").hidden = !m.erring;
  const total = m.rows_estimated;
  const ended = ["done", "failed", "rolled_back"].includes(m.phase);
  const copyDone = m.copy_tasks > 0 && m.copy_tasks_done === m.copy_tasks;
  let percent = total ? Math.min(100, m.rows_copied / total * 100) : copyDone ? 100 : 0;
  if (m.phase === "done" || copyDone) percent = 100;
  text("progress", `${percent.toFixed(percent < 10 && percent > 0 ? 1 : 0)} %`);
  $("progress").dataset.progress = percent.toFixed(1);
  $("progress-bar").style.width = `${percent}%`;
  text("rows", `${number(m.rows_copied)} of ${total === null || total === undefined ? "?" : number(total)}`);
  text("bytes", `${bytes(m.bytes_copied)} of ${m.bytes_estimated === null || m.bytes_estimated === undefined ? "?" : bytes(m.bytes_estimated)}`);
  text("tasks", `${m.copy_tasks_done} of ${m.copy_tasks}`);
  const { rate, eta } = rateAndEta(m, d.now_ms);
  text("rate", rate === null ? "–" : `${number(Math.round(rate))} rows/s`);
  text("eta", ended || copyDone ? "copy finished" : eta === null ? "–" : formatDuration(eta));
  text("lag", `${m.lag_changes === null || m.lag_changes === undefined ? "?" : number(m.lag_changes)} changes, ${number(m.lag_ms)} ms`);
  text("throttle", m.throttle.reason ? `${m.throttle.reason}${m.throttle.chunk_rows ? ` (chunks of ${number(m.throttle.chunk_rows)} rows)` : ""}` :
    m.throttle.chunk_rows ? `chunks of ${number(m.throttle.chunk_rows)} rows` : "–");
  text("generations", `${m.from_generation} → ${m.to_generation}`);
  text("cutover-step", m.cutover_step || "–");
  const canary = m.canary;
  text("canary", canary.steps.length === 0 ? "no canary" : canary.passed ? "passed" :
    canary.step !== null && canary.step !== undefined ? `step ${canary.step + 1} of ${canary.steps.length} (${canary.percent} % of reads shadowed, ${formatDuration(canary.step_ms)} each)` : `${canary.steps.length} steps`);
  const shadow = m.shadow_reads;
  text("shadow", shadow ? `${number(shadow.reads)} reads, ${number(shadow.matches)} match, ${number(shadow.mismatches)} differ, ${number(shadow.errors)} errors${shadow.halted ? " — HALTED" : ""}` : "–");
  text("bake", m.bake_until_ms ? (m.bake_until_ms > d.now_ms ? `${formatDuration(m.bake_until_ms - d.now_ms)} left` : "over") : `${formatDuration(m.bake_ms)} once cut over`);
  const gate = m.awaiting_approval;
  $("gate").hidden = !gate;
  if (gate) {
    text("gate-name", gate.gate);
    text("gate-wait", formatDuration(gate.waiting_ms || 0));
  }
  for (const id of ["approve", "pause", "resume", "rollback"]) $(id).disabled = !state.token || ended;
  renderTimeline($("timeline"), m.phases, d.now_ms);
  fillTable("pauses", m.write_pauses.map((p, i) => [i + 1, p.writes_held, p.p50_ms.toFixed(2), p.p99_ms.toFixed(2), p.max_ms.toFixed(2)]));
  const differences = (v) => Object.values(v.differences).reduce((a, b) => a + b, 0);
  fillTable("verification", m.verification.map((v) =>
    [v.move + 1, `${v.start || "?"} … ${v.end || "?"}`, `${v.source || "?"} → ${v.target || "?"}`, number(v.rows_compared), differences(v), v.repaired, v.clean ? "yes" : "no"]));
  // Hundreds of moves are read best per pair of shards; each move is one click away.
  const pairs = new Map();
  for (const v of m.verification) {
    const key = `${v.source || "?"} → ${v.target || "?"}`;
    const pair = pairs.get(key) || { moves: 0, rows: 0, differences: 0, repaired: 0, clean: true };
    pair.moves++; pair.rows += v.rows_compared; pair.differences += differences(v); pair.repaired += v.repaired; pair.clean = pair.clean && v.clean;
    pairs.set(key, pair);
  }
  fillTable("verification-pairs", [...pairs.entries()].sort().map(([key, p]) =>
    [key, p.moves, number(p.rows), p.differences, p.repaired, p.clean ? "yes" : "no"]));
}

function render(d) {
  state.last = d;
  text("generation", d.generation);
  $("generation").dataset.generation = d.generation;
  text("router", d.router);
  text("version", d.version);
  const shards = d.shards.map((s) => s.id);
  renderMap($("map"), d.ranges, d.migration && !["done", "failed", "rolled_back"].includes(d.migration.phase) ? d.migration.moves : [], shards);
  $("map-legend").replaceChildren(...shards.map((id) => {
    const span = document.createElement("span"), swatch = document.createElement("i");
    swatch.style.background = shardColor(id, shards);
    const share = d.shards.find((s) => s.id === id);
    span.append(swatch, `${id} ${share ? (share.fraction * 100).toFixed(1) : "?"} %`);
    return span;
  }));
  renderMigration(d);
  renderLatency($("latency"), d.latency, d.migration ? d.migration.phases : [], d.now_ms);
  fillTable("shards", d.shards.map((s) => [s.id, s.backend, number(s.rows), bytes(s.bytes), `${(s.fraction * 100).toFixed(1)} %`,
    s.requests_per_second.toFixed(1), s.p99_ms === null || s.p99_ms === undefined ? "–" : s.p99_ms.toFixed(2), s.change_capture || "–",
    s.slots.length === 0 ? "–" : s.slots.map((slot) => `${slot.name} (${slot.active ? "active" : "idle"}, ${slot.retained_bytes === null || slot.retained_bytes === undefined ? "?" : bytes(slot.retained_bytes)} retained)`).join(", ")]));
  fillTable("routers", d.routers.map((r) => [r.name, r.generation === null || r.generation === undefined ? "?" : r.generation,
    r.leader === true ? "leader" : r.leader === false ? "standby" : "none", r.age_ms === 0 ? "this router" : `${formatDuration(r.age_ms)} ago`]));
  fillTable("history", d.history.slice().reverse().map((h) => [h.id, h.kind, h.phase, clock(h.started_ms), clock(h.ended_ms),
    h.started_ms && h.ended_ms ? formatDuration(h.ended_ms - h.started_ms) : "–", number(h.rows_copied)]));
}

let polling = null;
async function poll() {
  try {
    const response = await fetch("/v1/dashboard", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
    $("connection").dataset.state = "up";
    text("connection", `updated ${new Date().toLocaleTimeString("en-GB")}`);
  } catch (error) {
    $("connection").dataset.state = "down";
    text("connection", `cannot reach the router (${error.message}); retrying`);
  }
}
function schedule(delay) {
  clearTimeout(polling);
  polling = setTimeout(async () => { await poll(); schedule(1000); }, delay);
}

async function command(name) {
  const m = state.last && state.last.migration;
  if (!m || !state.token) return;
  if (name === "rollback" && !confirm(`Roll back migration ${m.id}?`)) return;
  text("action-result", `${name}…`);
  try {
    const response = await fetch(`/v1/migrations/${encodeURIComponent(m.id)}/${name}`, {
      method: "POST", headers: { Authorization: `Bearer ${state.token}` },
    });
    const body = await response.json().catch(() => ({}));
    text("action-result", response.ok ? `${name}: now ${body.phase || "sent"}` : `${name} refused: ${(body.error && body.error.message) || response.status}`);
    if (response.status === 401) text("token-state", "the token was refused");
  } catch (error) {
    text("action-result", `${name} failed: ${error.message}`);
  }
  schedule(0);
}

function showToken() { text("token-state", state.token ? "set for this tab" : "not set: read-only"); }
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  $("token").value = "";
  if (state.token) sessionStorage.setItem("reshard-token", state.token); else sessionStorage.removeItem("reshard-token");
  showToken();
  if (state.last) render(state.last);
});
for (const name of ["approve", "pause", "resume", "rollback"]) $(name).addEventListener("click", () => command(name));

// A map change or cleanup shows at once instead of at the next poll. The stream opens a few
// seconds after the page, once the polls have drawn it: a browser that snapshots the page
// (headless Chromium waits for every open request) is done by then.
function follow() {
  if (!window.EventSource) return;
  const events = new EventSource("/v1/events");
  for (const kind of ["shard_map", "layout", "cleanup", "reset"]) events.addEventListener(kind, () => schedule(0));
}
setTimeout(follow, 5000);
showToken();
schedule(0);
