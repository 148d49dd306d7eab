// The live page: each source's newest analysed frame (boxes, zones and masks drawn by the box) a few
// times a second, its state and counters, and a plain-canvas map of its track and grid cells.
"use strict";
const FRAME_MS = 333;
const cards = {};
const grids = {};

function card(source) {
  if (cards[source.id]) return cards[source.id];
  const img = el("img", { id: "frame-" + source.id, alt: source.id });
  const counters = el("dl", { class: "counters" });
  const map = el("canvas", { id: "map-" + source.id, width: 200, height: 200 });
  const state = el("span", { class: "state" });
  const node = el("section", { class: "card", id: "card-" + source.id },
    el("h2", { text: source.id + " (" + source.kind + ")" }), state, img,
    el("div", { class: "row" }, counters, el("div", {}, el("div", { text: t("map") }), map)));
  document.getElementById("sources").append(node);
  cards[source.id] = { node, img, counters, map, state, busy: false };
  return cards[source.id];
}

async function refreshFrame(id) {
  const c = cards[id];
  if (c.busy) return;
  c.busy = true;
  try {
    const response = await api("/api/sources/" + encodeURIComponent(id) + "/frame.jpg");
    if (response.ok) {
      const url = URL.createObjectURL(await response.blob());
      const old = c.img.src;
      c.img.src = url;
      c.img.dataset.frames = String(Number(c.img.dataset.frames || 0) + 1);
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    }
  } finally { c.busy = false; }
}

async function refreshSources() {
  const response = await api("/api/sources");
  if (!response.ok) return;
  for (const source of await response.json()) {
    const c = card(source);
    c.state.textContent = t("state") + ": " + source.state + (source.reason ? " (" + source.reason + ")" : "");
    c.state.className = "state state-" + source.state;
    c.counters.replaceChildren(...Object.entries(source.counters).flatMap(([k, v]) =>
      [el("dt", { text: t(k) }), el("dd", { text: String(v), id: "count-" + source.id + "-" + k })]));
    drawMap(c.map, source);
  }
}

async function drawMap(canvas, source) {
  const points = source.track.map(([lat, lon]) => [lon, lat]);
  if (source.position) points.push([source.position.lon, source.position.lat]);
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!points.length) { ctx.fillText("—", 95, 100); return; }
  const [lon0, lat0] = points[points.length - 1];
  if (!grids[source.id]) {
    grids[source.id] = [];
    const response = await api("/api/grid?lat=" + lat0 + "&lon=" + lon0);
    if (response.ok) grids[source.id] = await response.json();
  }
  const span = Math.max(0.002, ...points.map(([x, y]) => Math.max(Math.abs(x - lon0), Math.abs(y - lat0)) * 2.2));
  const scale = canvas.width / (2 * span);
  const xy = ([x, y]) => [canvas.width / 2 + (x - lon0) * scale, canvas.height / 2 - (y - lat0) * scale];
  ctx.strokeStyle = "#99a";
  for (const cell of grids[source.id]) {
    ctx.beginPath();
    cell.ring.forEach((p, i) => { const [x, y] = xy(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    ctx.stroke();
  }
  ctx.strokeStyle = "#1f3a5f";
  ctx.beginPath();
  points.forEach((p, i) => { const [x, y] = xy(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
  ctx.stroke();
  const [x, y] = xy(points[points.length - 1]);
  ctx.fillStyle = "#d22";
  ctx.beginPath(); ctx.arc(x, y, 4, 0, 2 * Math.PI); ctx.fill();
}

document.addEventListener("DOMContentLoaded", () => {
  refreshSources();
  setInterval(refreshSources, 1000);
  setInterval(() => Object.keys(cards).forEach(refreshFrame), FRAME_MS);
});
