// The statistics dashboard: GET /statistics?days=N drawn as SVG bar charts (no library; every
// label is inserted as text).
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#3b6fd8", "#e07a1f", "#2f9e44", "#c2255c", "#7048e8", "#0c8599", "#868e96"];

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// bars: [{label, values: [n, …]}], series: names of the values. Horizontal grouped bars.
function bars(box, rows, series, format) {
  box.textContent = "";
  if (!rows.length) { box.textContent = "No executions in this window."; return; }
  const max = Math.max(1, ...rows.flatMap((r) => r.values.map((v) => v || 0)));
  const lineH = 16, groupH = series.length * lineH + 8, labelW = 150, width = 560;
  const svg = el("svg", { width, height: rows.length * groupH + 24, role: "img" });
  rows.forEach((r, i) => {
    const y = i * groupH;
    svg.appendChild(el("text", { x: 0, y: y + lineH - 3, "font-size": 12 }, r.label));
    r.values.forEach((v, j) => {
      const w = ((v || 0) / max) * (width - labelW - 70);
      const yy = y + j * lineH;
      svg.appendChild(el("rect", { x: labelW, y: yy + 2, width: Math.max(w, 1), height: lineH - 4, fill: COLORS[j % COLORS.length] }));
      svg.appendChild(el("text", { x: labelW + w + 4, y: yy + lineH - 4, "font-size": 11 }, format(v)));
    });
  });
  if (series.length > 1) {
    series.forEach((s, j) => {
      const y = rows.length * groupH + 14;
      svg.appendChild(el("rect", { x: labelW + j * 90, y: y - 9, width: 10, height: 10, fill: COLORS[j % COLORS.length] }));
      svg.appendChild(el("text", { x: labelW + j * 90 + 14, y, "font-size": 11 }, s));
    });
  }
  box.appendChild(svg);
}

function draw(s) {
  $("summary").textContent = `${s.total} executions since ${s.since}; ${s.finished} finished.`;
  const languages = [...new Set(s.per_day.map((d) => d.language))].sort();
  const days = [...new Set(s.per_day.map((d) => d.day))].sort();
  bars($("per-day"), days.map((day) => ({
    label: day,
    values: languages.map((l) => (s.per_day.find((d) => d.day === day && d.language === l) || {}).executions || 0),
  })), languages, String);
  bars($("errors"), s.error_types.map((e) => ({
    label: e.error_type || "no error", values: [e.rate],
  })), ["share"], (v) => `${(v * 100).toFixed(1)} %`);
  bars($("run-time"), s.run_time.map((r) => ({
    label: `${r.language} (${r.executions})`, values: [r.p50_ms, r.p95_ms],
  })), ["p50", "p95"], (v) => (v == null ? "–" : `${v} ms`));
  const hours = [...s.peak_hours].sort((a, b) => a.hour - b.hour);
  bars($("hours"), hours.map((h) => ({ label: `${String(h.hour).padStart(2, "0")}:00`, values: [h.executions] })), ["executions"], String);
}

async function load() {
  const box = $("error");
  box.hidden = true;
  try {
    const res = await fetch(`/statistics?days=${$("days").value}`);
    const body = await res.json();
    if (!res.ok) throw new Error(`${res.status} ${[].concat(body.message).join("; ")}`);
    draw(body);
  } catch (e) {
    box.textContent = String(e.message || e);
    box.hidden = false;
  }
}

$("days").addEventListener("change", load);
load();
