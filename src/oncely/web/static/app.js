// oncely dashboard: the few live parts. No HTML from data is ever built here: fragments come
// rendered and escaped by the server and are parsed with DOMParser (which runs no script);
// text is set with textContent.
"use strict";

(function () {
  const EVERY_MS = 3000;

  function swap(target, html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const nodes = Array.from(doc.body.childNodes).map((n) => document.importNode(n, true));
    // Keep the user's ticked boxes across a refresh of a table.
    const ticked = new Set(
      Array.from(target.querySelectorAll("input[type=checkbox]:checked")).map((i) => i.value)
    );
    target.replaceChildren(...nodes);
    target.querySelectorAll("input[type=checkbox]").forEach((i) => {
      if (ticked.has(i.value)) i.checked = true;
    });
    tickCountdowns();
  }

  async function refresh(target) {
    if (document.visibilityState !== "visible") return;
    const url = target.getAttribute("data-live");
    if (!url) return;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "X-Fragment": "1" } });
      if (response.redirected || !response.ok) return; // logged out or gone: leave the page as is
      swap(target, await response.text());
      target.setAttribute("data-refreshed", String(Date.now()));
      // A fragment that says it is final (a run that ended) stops its own polling.
      if (target.querySelector("[data-live-done]")) target.removeAttribute("data-live");
    } catch (err) {
      // Network hiccup: try again at the next tick.
    }
  }

  function startLive() {
    const live = Array.from(document.querySelectorAll("[data-live]"));
    if (!live.length) return;
    let timer = null;
    const tick = () => live.forEach(refresh);
    const start = () => { if (!timer) timer = setInterval(tick, EVERY_MS); };
    const stop = () => { if (timer) { clearInterval(timer); timer = null; } };
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") { tick(); start(); } else { stop(); }
    });
    if (document.visibilityState === "visible") start();
  }

  function relative(ms) {
    const future = ms > 0;
    let s = Math.abs(ms) / 1000;
    let text;
    if (s < 1) return "now";
    if (s < 60) text = Math.floor(s) + " s";
    else if (s < 3600) text = Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    else if (s < 172800) text = (s / 3600).toFixed(1) + " h";
    else text = Math.floor(s / 86400) + " days";
    return future ? "in " + text : text + " ago";
  }

  function tickCountdowns() {
    const now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach((el) => {
      const at = Date.parse(el.getAttribute("datetime"));
      if (!Number.isNaN(at)) el.textContent = relative(at - now);
    });
  }

  function startPreview() {
    const form = document.getElementById("job-form");
    const box = document.getElementById("preview");
    if (!form || !box) return;
    let pending = null;
    let seq = 0;
    const run = async () => {
      const data = new FormData(form);
      const params = new URLSearchParams();
      for (const key of ["kind", "cron", "every", "at", "timezone", "dst_gap", "dst_fold"]) {
        const value = data.get(key);
        if (value !== null) params.set(key, String(value));
      }
      const mine = ++seq;
      try {
        const response = await fetch(box.getAttribute("data-preview-url") + "?" + params, { credentials: "same-origin" });
        if (!response.ok || mine !== seq) return;
        swap(box, await response.text());
      } catch (err) { /* keep the last preview */ }
    };
    const later = () => { clearTimeout(pending); pending = setTimeout(run, 250); };
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    run();
  }

  document.addEventListener("DOMContentLoaded", () => {
    startLive();
    startPreview();
    tickCountdowns();
    setInterval(() => { if (document.visibilityState === "visible") tickCountdowns(); }, 1000);
  });
})();
