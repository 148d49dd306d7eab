// Shared by the box's page and the platform's review page (each serves it from webauth/static): the CSRF
// token, the page's language and texts, JSON calls that go back to the login when the session ends, a
// small element builder and the top bar's language switch and logout. Each page's own script, loaded
// after this one, adds its texts to TEXT and calls topBar() once the document is there.
"use strict";
const CSRF = document.querySelector('meta[name="csrf"]').content;
const LANG = document.documentElement.lang;
const TEXT = { "zh-CN": {}, en: {} };

function t(key) { return (TEXT[LANG] || TEXT.en)[key] || key; }

async function api(path, options = {}) {
  const headers = Object.assign({ "X-CSRF-Token": CSRF }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); }
  return response;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function topBar() {
  document.querySelectorAll("[data-t]").forEach((node) => { node.textContent = t(node.dataset.t); });
  document.getElementById("lang").addEventListener("click", () => {
    document.cookie = "lang=" + (LANG === "zh-CN" ? "en" : "zh-CN") + "; path=/; SameSite=Strict";
    location.reload();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/logout", { method: "POST" });
    location.href = "/login";
  });
}
