// Backroom admin: refresh the queue counts every 2 s, confirm destructive actions, select-all boxes.
"use strict";

function humanSeconds(seconds) {
  if (seconds <= 0) return "\u2014";
  if (seconds < 1) return Math.round(seconds * 1000) + " ms";
  if (seconds < 60) return seconds.toFixed(1) + " s";
  if (seconds < 3600) return Math.round(seconds / 60) + " min";
  if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
  return (seconds / 86400).toFixed(1) + " d";
}

function show(element, value) {
  const format = element.dataset.format;
  if (element.dataset.field === "paused") {
    element.hidden = !value;
    return;
  }
  let text = String(value);
  if (format === "seconds") text = humanSeconds(Number(value));
  else if (format === "list") text = value.length ? value.join(", ") : "\u2014";
  if (element.textContent !== text) element.textContent = text;
}

async function refresh(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch (error) {
    document.body.dataset.stale = "1";
    return;
  }
  if (response.status === 401) { window.location.reload(); return; }
  if (!response.ok) { document.body.dataset.stale = "1"; return; }
  const data = await response.json();
  delete document.body.dataset.stale;
  for (const queue of data.queues) {
    for (const element of document.querySelectorAll(`[data-queue="${queue.name}"][data-field]`)) {
      show(element, queue[element.dataset.field]);
    }
    const charts = data.charts[queue.name] || {};
    for (const [key, chart] of Object.entries(charts)) {
      const line = document.querySelector(`polyline[data-chart="${queue.name}:${key}"]`);
      if (line) line.setAttribute("points", chart.points);
    }
  }
  const stamp = document.querySelector('[data-field="refreshed"]');
  if (stamp) stamp.textContent = data.at.replace("T", " ").slice(0, 19) + " UTC";
}

document.addEventListener("DOMContentLoaded", () => {
  const url = document.body.dataset.poll;
  if (url) setInterval(() => refresh(url), 2000);

  document.addEventListener("submit", (event) => {
    const message = (event.submitter && event.submitter.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  for (const box of document.querySelectorAll("[data-select-all]")) {
    box.addEventListener("change", () => {
      for (const item of box.form.querySelectorAll(`input[name="${box.dataset.selectAll}"]`)) item.checked = box.checked;
    });
  }
});
