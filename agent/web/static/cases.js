// The cases page: recent cases from the outbox filtered by type, source and time; each with its
// snapshot, crop, clip (played here), JSON, explanation, upload state and signature check.
"use strict";
const base = (c) => "/api/cases/" + c.case_id + "/" + c.revision;

async function list(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams();
  for (const [key, id] of [["type", "f-type"], ["source", "f-source"], ["since", "f-since"], ["until", "f-until"]]) {
    const value = document.getElementById(id).value;
    if (value) query.set(key, value);
  }
  const response = await api("/api/cases?" + query);
  const rows = response.ok ? await response.json() : [];
  const body = document.querySelector("#list tbody");
  body.replaceChildren(...rows.map((c) => {
    const clip = (c.evidence || []).includes("clip.mp4") ? "1" : "0";
    const row = el("tr", { "data-case": c.case_id, "data-revision": String(c.revision), "data-clip": clip },
      el("td", { text: c.accepted_at.replace("T", " ").replace("+00:00", "Z") }),
      el("td", { text: c.type || "" }), el("td", { text: c.source_id || "" }), el("td", { text: t(c.state) }));
    if (c.on_disk) row.addEventListener("click", () => show(c)); else row.title = t("gone");
    return row;
  }));
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 4, text: t("nocase") })));
}

async function show(c) {
  const detail = await (await api(base(c))).json();
  const section = document.getElementById("detail");
  const parts = [el("h2", { text: detail.type + " · " + detail.case_id + " r" + detail.revision })];
  parts.push(el("p", { id: "verified", class: detail.verified ? "ok" : "bad",
    text: (detail.verified ? t("verified") : t("unverified") + " " + detail.problems.join("; ")) }));
  parts.push(el("p", { text: t("upload") + ": " + t(detail.state) + " · " + t("score") + " " + detail.score_max }));
  const files = Object.entries(detail.files).map(([name, state]) => name + " " + t(state)).join(", ");
  parts.push(el("p", { text: files }));
  for (const name of detail.evidence) {
    const src = base(c) + "/" + encodeURIComponent(name);
    if (name.endsWith(".mp4")) {
      parts.push(el("h3", { text: t("clip") + (detail.local_clip ? " · " + t("local_clip") : "") }),
        el("video", { id: "clip", src, controls: "", muted: "", preload: "auto" }));
    } else {
      parts.push(el("h3", { text: name.startsWith("crop") ? t("crop") : t("snapshot") }), el("img", { src, alt: name }));
    }
  }
  parts.push(el("h3", { text: t("explanation") }), el("pre", { id: "explanation",
    text: JSON.stringify(detail.record.explanation, null, 2) }));
  parts.push(el("h3", { text: t("json") }), el("pre", { text: JSON.stringify(detail.record, null, 2) }));
  section.replaceChildren(...parts);
}

document.addEventListener("DOMContentLoaded", async () => {
  const session = await (await api("/api/session")).json();
  const sources = await (await api("/api/sources")).json();
  const option = (value, text) => el("option", { value, text });
  document.getElementById("f-type").replaceChildren(option("", t("all")), ...session.case_types.map((x) => option(x, x)));
  document.getElementById("f-source").replaceChildren(option("", t("all")), ...sources.map((s) => option(s.id, s.id)));
  document.getElementById("filter").addEventListener("submit", list);
  list();
});
