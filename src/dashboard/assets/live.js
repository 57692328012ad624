// wf dashboard: adds each run that ends to the first page of the runs, as it ends. The page
// works without this script; it only saves a reload. Rows are built with textContent: nothing
// a caller sent is ever read as HTML.
"use strict";
(function () {
  const SYMBOLS = {
    responded: ["✓", "good"], completed: ["✓", "good"], failed: ["✗", "bad"],
    rejected: ["⊘", "warn"], duplicate: ["≡", "quiet"], preflight: ["≡", "quiet"],
    superseded: ["≡", "quiet"], cancelled: ["■", "quiet"],
  };
  const PAGE = 50;

  function cell(row, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function link(href, text, className) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (className) a.className = className;
    return a;
  }

  function rowOf(run) {
    const tr = document.createElement("tr");
    tr.dataset.id = run.id;
    tr.className = "new";
    const look = SYMBOLS[run.status] || ["…", "wait"];
    const badge = document.createElement("span");
    badge.className = "badge " + look[1];
    const symbol = document.createElement("span");
    symbol.setAttribute("aria-hidden", "true");
    symbol.textContent = look[0];
    badge.appendChild(symbol);
    badge.appendChild(document.createTextNode(" " + run.status));
    cell(tr).appendChild(badge);
    cell(tr).appendChild(link("/runs/" + encodeURIComponent(run.id), run.id, "mono"));
    cell(tr).appendChild(link("/workflows/" + encodeURIComponent(run.workflow), run.workflow));
    const time = document.createElement("time");
    time.textContent = run.started;
    cell(tr).appendChild(time);
    cell(tr, "wide").textContent = run.took;
    cell(tr, "wide").textContent = String(run.code);
    cell(tr, "wide reason").textContent = run.reason || "";
    return tr;
  }

  function watch(table) {
    const source = new EventSource(table.dataset.live);
    const body = table.tBodies[0];
    source.addEventListener("run", function (event) {
      let run;
      try { run = JSON.parse(event.data); } catch (_) { return; }
      if (body.querySelector('tr[data-id="' + CSS.escape(run.id) + '"]')) return;
      body.insertBefore(rowOf(run), body.firstChild);
      while (body.rows.length > PAGE) body.deleteRow(body.rows.length - 1);
      const empty = document.getElementById("no-runs");
      if (empty) empty.remove();
    });
    table.dataset.watching = "yes";
  }

  document.addEventListener("DOMContentLoaded", function () {
    const table = document.getElementById("runs");
    if (table && table.dataset.live && window.EventSource) watch(table);
  });
})();
