// The zones page: click a polygon's corners on a snapshot, name it, pick its case types, save: the box
// writes the configuration file (checked as check-config checks it) and reloads only this source.
"use strict";
let sources = [], current = null, image = null, scale = 1, polygons = [], points = [];

function draw() {
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  if (image) ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  const path = (pts, colour, closed) => {
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x * scale, y * scale) : ctx.moveTo(x * scale, y * scale)));
    if (closed) ctx.closePath();
    ctx.stroke();
  };
  for (const p of polygons) path(p.polygon_px, p.kind === "mask" ? "#aaa" : "#3c3", true);
  path(points, "#fc0", false);
  const list = document.getElementById("polygons");
  list.replaceChildren(...polygons.map((p, i) => {
    const remove = el("button", { text: t("remove") });
    remove.addEventListener("click", () => { polygons.splice(i, 1); draw(); });
    return el("li", { text: (p.kind === "mask" ? t("mask") : p.name) + " " + (p.types || []).join(",") + " " }, remove);
  }));
}

async function load(id) {
  current = sources.find((s) => s.id === id);
  polygons = current.zones.map((z) => ({ kind: "zone", name: z.name, polygon_px: z.polygon_px, types: z.types }))
    .concat(current.masks_px.map((m) => ({ kind: "mask", polygon_px: m })));
  points = [];
  const response = await api("/api/sources/" + encodeURIComponent(id) + "/frame.jpg?raw=1");
  const canvas = document.getElementById("canvas");
  const [width, height] = current.size || [960, 540];
  scale = Math.min(1, 960 / width);
  canvas.width = Math.round(width * scale); canvas.height = Math.round(height * scale);
  if (response.ok) {
    image = new Image();
    image.onload = draw;
    image.src = URL.createObjectURL(await response.blob());
  } else { image = null; draw(); }
}

async function save() {
  const body = {
    zones: polygons.filter((p) => p.kind === "zone").map((p) => ({ name: p.name, polygon_px: p.polygon_px, types: p.types })),
    masks_px: polygons.filter((p) => p.kind === "mask").map((p) => p.polygon_px),
  };
  const result = document.getElementById("result");
  result.textContent = "…";
  const response = await api("/api/sources/" + encodeURIComponent(current.id) + "/zones", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json();
  result.className = response.ok ? "ok" : "bad";
  result.textContent = response.ok ? t("saved") + " (" + answer.status + ")" : t("failed") + ": " + (answer.error || answer.reason);
  if (response.ok) { sources = await (await api("/api/sources")).json(); current = sources.find((s) => s.id === current.id); }
}

document.addEventListener("DOMContentLoaded", async () => {
  const session = await (await api("/api/session")).json();
  const types = document.getElementById("types");
  for (const type of session.case_types) {
    types.append(el("label", {}, el("input", { type: "checkbox", value: type, name: "type" }), " " + type));
  }
  sources = await (await api("/api/sources")).json();
  const select = document.getElementById("source");
  select.replaceChildren(...sources.map((s) => el("option", { value: s.id, text: s.id })));
  select.addEventListener("change", () => load(select.value));
  document.getElementById("canvas").addEventListener("click", (event) => {
    const rect = event.target.getBoundingClientRect();
    const ratio = event.target.width / rect.width;
    points.push([Math.round((event.clientX - rect.left) * ratio / scale), Math.round((event.clientY - rect.top) * ratio / scale)]);
    draw();
  });
  document.getElementById("undo").addEventListener("click", () => { points.pop(); draw(); });
  document.getElementById("close").addEventListener("click", () => {
    if (points.length < 3) return;
    const kind = document.getElementById("zone-kind").value;
    const checked = [...document.querySelectorAll("#types input:checked")].map((box) => box.value);
    polygons.push({ kind, name: document.getElementById("zone-name").value.trim(), polygon_px: points, types: checked });
    points = [];
    draw();
  });
  document.getElementById("save").addEventListener("click", save);
  if (sources.length) load(sources[0].id);
});
