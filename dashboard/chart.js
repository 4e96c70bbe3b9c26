// Reshard dashboard: the SVG pictures (shard map bar, phase timeline, latency chart).
// Plain DOM calls only, no markup strings: every name shown is set as text, never parsed.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const PHASE_COLORS = {
  preparing: "#eeeeee", recording: "#e4e4f4", copying: "#fde2b8", catching_up: "#fff3b0", verifying: "#d9f0d3",
  canary: "#cfe8e3", serving_reads: "#d4ecf7", cutting_over: "#f4a6a6", baking: "#d6e6f5", cleaning_up: "#e6dcf2",
  paused: "#dddddd", rolling_back: "#f7c6c6",
};

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function shardColor(shard, shards) {
  const index = shards.indexOf(shard);
  return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
}

// A range bound ("0x" and hex digits, up to 2^64) as a fraction of the hash space.
function hashFraction(hex) {
  try { return Number(BigInt(hex)) / 18446744073709551616; } catch (e) { return 0; }
}

function renderMap(container, ranges, moves, shards) {
  const width = container.clientWidth || 1000, height = 46;
  const svg = svgEl("svg", { width: width, height: height, role: "img", "aria-label": "shard map" });
  const defs = svgEl("defs");
  const pattern = svgEl("pattern", { id: "moving", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pattern.appendChild(svgEl("rect", { width: 3, height: 6, fill: "rgba(0,0,0,0.45)" }));
  defs.appendChild(pattern);
  svg.appendChild(defs);
  for (const range of ranges) {
    const x = hashFraction(range.start) * width, w = Math.max(0.5, (hashFraction(range.end) - hashFraction(range.start)) * width);
    const rect = svgEl("rect", { x: x, y: 0, width: w, height: 30, fill: shardColor(range.shard, shards) });
    rect.appendChild(svgEl("title", {}, `${range.start} … ${range.end}: ${range.shard}`));
    svg.appendChild(rect);
  }
  for (const move of moves || []) {
    const x = hashFraction(move.start) * width, w = Math.max(1, (hashFraction(move.end) - hashFraction(move.start)) * width);
    const rect = svgEl("rect", { x: x, y: 0, width: w, height: 30, fill: "url(#moving)", class: "moving" });
    rect.appendChild(svgEl("title", {}, `moving ${move.start} … ${move.end}: ${move.from} → ${move.to}`));
    svg.appendChild(rect);
  }
  for (let tick = 0; tick <= 4; tick++) {
    const x = Math.min(width - 1, tick / 4 * width);
    svg.appendChild(svgEl("line", { x1: x, x2: x, y1: 30, y2: 35, stroke: "#999" }));
    svg.appendChild(svgEl("text", { x: x, y: 45, "text-anchor": tick === 0 ? "start" : tick === 4 ? "end" : "middle", fill: "#666" },
      tick === 0 ? "0" : tick === 4 ? "2^64" : `${tick}/4`));
  }
  container.replaceChildren(svg);
}

// Phases as bands from each mark to the next (the last runs to `nowMs` unless it ended).
function phaseBands(phases, nowMs) {
  const ended = new Set(["done", "failed", "rolled_back"]);
  const bands = [];
  phases.forEach((mark, index) => {
    const next = phases[index + 1];
    if (ended.has(mark.phase)) return;
    bands.push({ phase: mark.phase, from: mark.at_ms, to: next ? next.at_ms : nowMs });
  });
  return bands;
}

function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function renderTimeline(container, phases, nowMs) {
  const bands = phaseBands(phases, nowMs);
  const width = container.clientWidth || 1000, height = 40;
  const svg = svgEl("svg", { width: width, height: height, role: "img", "aria-label": "phase timeline" });
  if (bands.length > 0) {
    const start = bands[0].from, total = Math.max(1, bands[bands.length - 1].to - start);
    // Every band gets at least a sliver, so a 5 ms cutover stays visible beside a long copy.
    const minimum = Math.min(24, width / bands.length / 2);
    const raw = bands.map((band) => Math.max(0, band.to - band.from) / total * width);
    const scale = (width - minimum * bands.length) / Math.max(1, raw.reduce((a, b) => a + b, 0));
    let x = 0;
    bands.forEach((band, index) => {
      const w = minimum + raw[index] * Math.max(0, scale);
      const rect = svgEl("rect", { x: x, y: 0, width: w, height: 22, fill: PHASE_COLORS[band.phase] || "#eee", stroke: "#fff" });
      rect.appendChild(svgEl("title", {}, `${band.phase}: ${formatDuration(band.to - band.from)}`));
      svg.appendChild(rect);
      svg.appendChild(svgEl("text", { x: x + 3, y: 15, fill: "#333" }, w > 60 ? band.phase : ""));
      svg.appendChild(svgEl("text", { x: x + 3, y: 36, fill: "#666" }, w > 45 ? formatDuration(band.to - band.from) : ""));
      x += w;
    });
  }
  container.replaceChildren(svg);
}

function renderLatency(container, seconds, phases, nowMs) {
  const width = container.clientWidth || 1000, height = 220;
  const plot = { x: 48, y: 10, w: width - 60, h: height - 40 };
  const svg = svgEl("svg", { width: width, height: height, role: "img", "aria-label": "foreground latency" });
  const end = nowMs, start = end - 300000;
  const x = (ms) => plot.x + Math.max(0, Math.min(1, (ms - start) / (end - start))) * plot.w;
  const p99s = seconds.map((s) => s.p99_ms).sort((a, b) => a - b);
  // The scale stops near the top of the p99s, so one outlier does not flatten the rest.
  const ceiling = Math.max(1, (p99s[Math.floor(p99s.length * 0.98)] || 1) * 1.15);
  const y = (ms) => plot.y + plot.h - Math.min(1, ms / ceiling) * plot.h;
  for (const band of phaseBands(phases || [], nowMs)) {
    if (band.to < start) continue;
    const from = x(band.from), to = x(band.to);
    const rect = svgEl("rect", { x: from, y: plot.y, width: Math.max(1, to - from), height: plot.h, fill: PHASE_COLORS[band.phase] || "#eee" });
    rect.appendChild(svgEl("title", {}, band.phase));
    svg.appendChild(rect);
    if (to - from > 50) svg.appendChild(svgEl("text", { x: from + 2, y: plot.y + 12, fill: "#555" }, band.phase));
  }
  svg.appendChild(svgEl("rect", { x: plot.x, y: plot.y, width: plot.w, height: plot.h, fill: "none", stroke: "#999" }));
  for (let tick = 0; tick <= 4; tick++) {
    const value = ceiling * tick / 4;
    svg.appendChild(svgEl("line", { x1: plot.x, x2: plot.x + plot.w, y1: y(value), y2: y(value), stroke: "#e5e5e5" }));
    svg.appendChild(svgEl("text", { x: plot.x - 6, y: y(value) + 4, "text-anchor": "end", fill: "#666" }, value.toFixed(1)));
  }
  for (let minute = 0; minute <= 5; minute++) {
    svg.appendChild(svgEl("text", { x: x(start + minute * 60000), y: plot.y + plot.h + 14, "text-anchor": "middle", fill: "#666" },
      minute === 5 ? "now" : `-${5 - minute} min`));
  }
  svg.appendChild(svgEl("text", { x: 12, y: plot.y + plot.h / 2, transform: `rotate(-90 12 ${plot.y + plot.h / 2})`, fill: "#666" }, "ms"));
  for (const [series, color, field] of [["p50", "#1f77b4", "p50_ms"], ["p99", "#d62728", "p99_ms"]]) {
    // A second without requests breaks the line instead of drawing a slope across it.
    let points = [];
    const flush = () => {
      if (points.length > 0) svg.appendChild(svgEl("polyline", { fill: "none", stroke: color, "stroke-width": 1.5, points: points.join(" ") }));
      points = [];
    };
    let previous = null;
    for (const second of seconds) {
      if (previous !== null && second.at_ms - previous > 1000) flush();
      points.push(`${x(second.at_ms + 500).toFixed(1)},${y(second[field]).toFixed(1)}`);
      previous = second.at_ms;
    }
    flush();
    svg.appendChild(svgEl("text", { x: plot.x + plot.w - (series === "p50" ? 100 : 50), y: plot.y + 12, fill: color }, `— ${series}`));
  }
  container.replaceChildren(svg);
}
