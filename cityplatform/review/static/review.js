// The review page: the queue of new platform cases, the grid map (a plain canvas, no tiles), one case's
// reports and evidence, and the decisions (buttons or keys), each sent with the session's CSRF token
// (webauth's page.js, loaded before it, has the token, the texts, JSON calls and the top bar).
"use strict";
Object.assign(TEXT["zh-CN"], {
  title: "案件审核", other: "English", logout: "退出", type: "类型", grid: "网格", opened: "发现时间",
  empty: "暂无待审核案件", confirm: "确认 (c)", reject: "驳回 (r)", correct: "更正类型 (t)", keys: "快捷键",
  next: "下一个", prev: "上一个", pick: "选择原因或类型", cancel: "取消", street: "街道", due: "处置时限",
  status: "状态", reports: "上报", agent: "设备", first: "首次发现", last: "最近发现", manual: "人工派遣",
  done_confirm: "已确认", done_reject: "已驳回", done_correct: "已更正", waiting: "条待审核",
  not_a_problem: "不是问题", duplicate: "重复案件", wrong_type: "类型错误", outside_rules: "不在规则范围内",
  street_vending: "占道经营", garbage_pile: "暴露垃圾", overflowing_bin: "垃圾满溢", cooking_fumes: "油烟污染",
});
Object.assign(TEXT.en, {
  title: "Case review", other: "中文", logout: "Log out", type: "Type", grid: "Grid cell", opened: "Found",
  empty: "No new cases to review", confirm: "Confirm (c)", reject: "Reject (r)", correct: "Correct type (t)",
  keys: "Keyboard", next: "next", prev: "previous", pick: "choose a reason or type", cancel: "cancel",
  street: "Street office", due: "Due", status: "Status", reports: "Reports", agent: "Agent", first: "First seen",
  last: "Last seen", manual: "manual dispatch", done_confirm: "Confirmed", done_reject: "Rejected",
  done_correct: "Corrected", waiting: "waiting", not_a_problem: "not a problem", duplicate: "duplicate",
  wrong_type: "wrong type", outside_rules: "outside the rules", street_vending: "street vending",
  garbage_pile: "garbage pile", overflowing_bin: "overflowing bin", cooking_fumes: "cooking fumes",
});
const KEYS = [["j", "next"], ["k", "prev"], ["c", "confirm"], ["r", "reject"], ["t", "correct"],
  ["1-9", "pick"], ["Esc", "cancel"]];
const state = { session: null, grid: [], queue: [], current: 0, detail: null, choosing: null, shown: 0 };

function when(iso) { return iso ? new Date(iso).toLocaleString(LANG) : "-"; }

async function loadQueue(periodic = false) {
  const before = state.queue[state.current] && state.queue[state.current].id;
  state.queue = await (await api("/api/queue")).json();
  const kept = state.queue.findIndex((c) => c.id === before);  // new cases above do not move the selection
  state.current = kept >= 0 ? kept : Math.max(0, Math.min(state.current, state.queue.length - 1));
  document.getElementById("count").textContent = `${state.queue.length} ${t("waiting")}`;
  document.getElementById("empty").hidden = state.queue.length > 0;
  if (periodic && kept >= 0) { renderQueue(); drawMap(); return; }  // the case on screen (and its clip) stays
  await select(state.current);
}

function renderQueue() {
  const body = document.querySelector("#queue tbody");
  body.replaceChildren(...state.queue.map((c, i) => {
    const row = el("tr", { id: `case-${c.id}`, "data-id": c.id, class: i === state.current ? "selected" : "" },
      el("td", { text: c.id }), el("td", { text: t(c.type) }),
      el("td", { text: c.grid ? `${c.grid.code} ${c.grid.street || ""}` : t("manual") }),
      el("td", { text: when(c.opened_at) }));
    row.addEventListener("click", () => select(i));
    return row;
  }));
}

async function select(index) {
  state.current = index;
  state.detail = null;  // no decision until the selected case is shown
  state.choosing = null;
  document.getElementById("choices").hidden = true;
  renderQueue();
  drawMap();
  const selected = state.queue[index];
  const detail = document.getElementById("detail");
  if (!selected) { detail.replaceChildren(); detail.removeAttribute("data-case"); return; }
  const shown = ++state.shown;
  const found = await (await api(`/api/cases/${selected.id}`)).json();
  if (shown !== state.shown) return;  // a later selection won
  state.detail = found;
  renderDetail(found);
}

function renderDetail(c) {
  const facts = el("dl");
  const add = (key, value) => facts.append(el("dt", { text: t(key) }), el("dd", { text: value }));
  add("type", t(c.type));
  add("grid", c.grid ? `${c.grid.code} ${c.grid.name || ""}` : `${t("manual")}: ${c.dispatch_reason || ""}`);
  add("street", c.grid ? `${c.grid.street || "-"} · ${c.grid.district || "-"}` : "-");
  add("due", when(c.due_at));
  add("status", c.verification ? `${c.status} (${c.verification.state})` : c.status);
  const reports = c.reports.map((r) => el("div", { class: "report" },
    el("p", { text: `${t("agent")} ${r.agent_id} · ${r.source_kind} · ${t("first")} ${when(r.first_seen)} · `
      + `${t("last")} ${when(r.last_seen)}` }),
    ...r.evidence.map((e) => e.name.endsWith(".mp4")
      ? el("video", { src: e.url, controls: "", preload: "metadata", class: "clip" })
      : el("img", { src: e.url, alt: e.name, class: "evidence" }))));
  const detail = document.getElementById("detail");
  detail.replaceChildren(el("h2", { text: `#${c.id} ${t(c.type)}` }), facts,
    el("h3", { text: `${t("reports")} (${c.reports.length})` }), ...reports);
  detail.setAttribute("data-case", c.id);
}

function drawMap() {
  const canvas = document.getElementById("map");
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const points = [];
  for (const cell of state.grid) for (const poly of cell.polygons) for (const ring of poly) points.push(...ring);
  for (const c of state.queue) if (c.position) points.push([c.position.lon, c.position.lat]);
  if (!points.length) return;
  const lons = points.map((p) => p[0]), lats = points.map((p) => p[1]);
  const [west, east, south, north] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  const squash = Math.cos((south + north) / 2 * Math.PI / 180);  // metres per degree of longitude shrink
  const scale = Math.min((canvas.width - 20) / Math.max((east - west) * squash, 1e-6),
    (canvas.height - 20) / Math.max(north - south, 1e-6));
  state.project = ([lon, lat]) => [10 + (lon - west) * squash * scale, canvas.height - 10 - (lat - south) * scale];
  g.strokeStyle = "#8a99ad"; g.fillStyle = "#eef2f7"; g.font = "11px sans-serif";
  for (const cell of state.grid) {
    for (const poly of cell.polygons) {
      g.beginPath();
      for (const ring of poly) ring.forEach((p, i) => { const [x, y] = state.project(p); i ? g.lineTo(x, y) : g.moveTo(x, y); });
      g.closePath(); g.fill(); g.stroke();
      const corners = poly[0].map(state.project);  // the label in the cell's top left corner
      const [x, y] = [Math.min(...corners.map((p) => p[0])), Math.min(...corners.map((p) => p[1]))];
      g.fillStyle = "#556"; g.fillText(cell.code, x + 3, y + 12); g.fillStyle = "#eef2f7";
    }
  }
  state.queue.forEach((c, i) => {
    if (!c.position) return;
    const [x, y] = state.project([c.position.lon, c.position.lat]);
    g.beginPath(); g.arc(x, y, i === state.current ? 8 : 5, 0, 2 * Math.PI);
    g.fillStyle = i === state.current ? "#d62728" : "#1f77b4"; g.fill();
  });
  canvas.dataset.cases = state.queue.filter((c) => c.position).length;
}

async function decide(body) {
  const c = state.detail;  // the case on screen, never one the inspector has not seen
  if (!c) return;
  state.detail = null;  // one decision per case shown
  const message = document.getElementById("message");
  const response = await api(`/api/cases/${c.id}/review`, { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await response.json();
  message.className = response.ok ? "ok" : "bad";
  message.textContent = response.ok ? `${t("done_" + body.decision)} #${c.id}` : answer.error;
  if (response.ok) await loadQueue(); else state.detail = c;
}

function choose(kind) {
  if (!state.detail) return;
  const options = kind === "reject" ? state.session.reasons
    : state.session.case_types.filter((type) => type !== state.detail.type);
  state.choosing = { kind, options };
  const list = document.getElementById("choices");
  list.replaceChildren(...options.map((option, i) => {
    const item = el("li", { "data-choice": option, text: `${i + 1} · ${t(option)}` });
    item.addEventListener("click", () => pick(i));
    return item;
  }));
  list.hidden = false;
}

function pick(index) {
  const choosing = state.choosing;
  if (!choosing || index >= choosing.options.length) return;
  state.choosing = null;
  document.getElementById("choices").hidden = true;
  const option = choosing.options[index];
  decide(choosing.kind === "reject" ? { decision: "reject", reason: option } : { decision: "correct", type: option });
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || /INPUT|SELECT|TEXTAREA/.test(event.target.tagName)) return;
  if (state.choosing && /^[1-9]$/.test(event.key)) pick(Number(event.key) - 1);
  else if (event.key === "Escape") { state.choosing = null; document.getElementById("choices").hidden = true; }
  else if (event.key === "j" && state.current < state.queue.length - 1) select(state.current + 1);
  else if (event.key === "k" && state.current > 0) select(state.current - 1);
  else if (event.key === "c") decide({ decision: "confirm" });
  else if (event.key === "r") choose("reject");
  else if (event.key === "t") choose("correct");
  else return;
  event.preventDefault();
}

function onMapClick(event) {
  if (!state.project) return;
  const box = event.target.getBoundingClientRect();
  let best = -1, bestDistance = 12;
  state.queue.forEach((c, i) => {
    if (!c.position) return;
    const [x, y] = state.project([c.position.lon, c.position.lat]);
    const distance = Math.hypot(x - (event.clientX - box.left), y - (event.clientY - box.top));
    if (distance < bestDistance) { best = i; bestDistance = distance; }
  });
  if (best >= 0) select(best);
}

async function start() {
  topBar();
  document.getElementById("keys").replaceChildren(...KEYS.flatMap(([key, what]) =>
    [el("dt", {}, el("kbd", { text: key })), el("dd", { text: t(what) })]));
  document.getElementById("confirm").addEventListener("click", () => decide({ decision: "confirm" }));
  document.getElementById("reject").addEventListener("click", () => choose("reject"));
  document.getElementById("correct").addEventListener("click", () => choose("correct"));
  document.getElementById("map").addEventListener("click", onMapClick);
  document.addEventListener("keydown", onKey);
  state.session = await (await api("/api/session")).json();
  document.getElementById("user").textContent = state.session.user;
  state.grid = await (await api("/api/grid")).json();
  await loadQueue();
  setInterval(() => { if (!state.choosing) loadQueue(true); }, 60000);  // new cases while the inspector works
}
document.addEventListener("DOMContentLoaded", start);
