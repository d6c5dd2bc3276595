// HeapSweep report page: renders the JSON in #report-data. Errors go to #js-errors.
"use strict";
(function () {
  const errors = document.getElementById("js-errors");
  function fail(msg) { errors.textContent += msg + "\n"; }
  window.addEventListener("error", (e) => fail("error: " + e.message + " (line " + e.lineno + ")"));
  window.addEventListener("unhandledrejection", (e) => fail("error: " + e.reason));

  const PAGE = 100;
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function human(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0, v = n;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? n + " B" : v.toFixed(1) + " " + units[i];
  }
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  let D;
  let metric = 0;

  function summary() {
    const s = D.summary, t = $("summary");
    const rows = D.kind === "leaks" ? [
      ["Leaked", s.leaked_bytes, s.leaked_blocks], ["Direct", null, s.direct_blocks],
      ["Indirect", null, s.indirect_blocks], ["In cycles", null, s.cyclic_blocks],
      ["Reachable", s.reachable_bytes, s.reachable_blocks], ["Suppressed", null, s.suppressed_blocks],
      ["Leak groups", null, s.groups, "groups"],
    ] : [
      ["Allocated", s.total_bytes, s.total_blocks], ["Live at " + s.time_us + " µs", s.live_bytes, s.live_blocks],
      ["Peak at " + s.peak_time_us + " µs", s.peak_bytes, s.peak_blocks], ["Allocation sites", null, s.sites, "sites"],
    ];
    t.appendChild(el("tr", {}, "")).append(el("td", {}, "Program"), el("td", { id: "program" }, D.program + " (pid " + D.pid + ")"));
    for (const [name, bytes, blocks, unit] of rows) {
      const tr = el("tr");
      tr.append(el("td", {}, name),
        el("td", { class: "num" }, bytes === null ? "" : bytes + " bytes (" + human(bytes) + ")"),
        el("td", { class: "num" }, blocks + " " + (unit || "blocks")));
      t.appendChild(tr);
    }
  }

  // A small ring of blocks with arrows: the group's blocks point at each other in a cycle.
  function ring(blocks) {
    const n = Math.max(2, Math.min(blocks, 6)), r = 9, c = 13;
    const s = svg("svg", { class: "cycle-ring", width: 26, height: 26, viewBox: "0 0 26 26" });
    const t = svg("title", {}); t.textContent = "cyclic: these blocks point at each other in a cycle"; s.appendChild(t);
    s.appendChild(svg("circle", { cx: c, cy: c, r: r, fill: "none", stroke: "#909", "stroke-width": 1.5 }));
    for (let i = 0; i < n; i++) {
      const a = (2 * Math.PI * i) / n - Math.PI / 2, b = a + Math.PI / n;
      s.appendChild(svg("circle", { cx: c + r * Math.cos(a), cy: c + r * Math.sin(a), r: 2.6, fill: "#909" }));
      const x = c + r * Math.cos(b), y = c + r * Math.sin(b), d = b + Math.PI / 2, k = 3;
      s.appendChild(svg("path", { fill: "#909", d: "M" + (x + k * Math.cos(d)) + "," + (y + k * Math.sin(d)) +
        " L" + (x + k * Math.cos(d + 2.4)) + "," + (y + k * Math.sin(d + 2.4)) +
        " L" + (x + k * Math.cos(d - 2.4)) + "," + (y + k * Math.sin(d - 2.4)) + " Z" }));
    }
    return s;
  }

  let shown = [], page = 0;
  function filterGroups() {
    const q = $("filter").value.trim().toLowerCase();
    shown = [];
    for (let i = 0; i < D.groups.length; i++) {
      const g = D.groups[i];
      if (q && !g.s.some((f) => (D.frames[f][0] + " " + (D.frames[f][1] || "")).toLowerCase().includes(q))) continue;
      shown.push(i);
    }
    shown.sort((a, b) => D.groups[b].v[metric] - D.groups[a].v[metric] || a - b);
    page = 0;
    groups();
  }
  function group(g) {
    const div = el("div", { class: "group" }), h = el("h3");
    if (D.kind === "leaks") {
      h.appendChild(el("span", { class: g.kind }, g.kind === "direct" ? "Direct leak" : "Indirect leak"));
      h.appendChild(document.createTextNode("of " + g.v[0] + " byte(s) in " + g.k[0] + " object(s)" + (g.cyclic ? " (cyclic: a reference cycle)" : "")));
      if (g.cyclic) h.appendChild(ring(g.k[0]));
    } else {
      h.appendChild(el("span", { class: "site" }, "Site"));
      h.appendChild(document.createTextNode(D.metrics.map((m, i) => m + " " + g.v[i] + " (" + g.k[i] + " blocks)").join(", ")));
    }
    div.appendChild(h);
    if (g.rc) div.appendChild(el("p", { class: "note" }, "note: " + g.rc));
    if (g.lt !== undefined && g.k[1] > 0) div.appendChild(el("p", { class: "note" }, "average lifetime " + (g.lt / g.k[1]).toFixed(1) + " µs; own maximum " + g.mb + " bytes live"));
    const ol = el("ol", { class: "stack", start: 0 });
    if (g.s.length === 0) ol.appendChild(el("li", {}, "(no allocation stack recorded)"));
    for (const f of g.s) {
      const [name, loc, ip] = D.frames[f], li = el("li");
      li.append(el("span", { class: "ip" }, ip + " "), document.createTextNode(name));
      if (loc) li.append(" ", el("span", { class: "loc" }, loc));
      ol.appendChild(li);
    }
    div.appendChild(ol);
    return div;
  }
  function groups() {
    const box = $("groups"), pages = Math.max(1, Math.ceil(shown.length / PAGE));
    box.textContent = "";
    const frag = document.createDocumentFragment();
    for (const i of shown.slice(page * PAGE, (page + 1) * PAGE)) frag.appendChild(group(D.groups[i]));
    box.appendChild(frag);
    $("page-info").textContent = "page " + (page + 1) + " of " + pages + " (" + shown.length + " " + (D.kind === "leaks" ? "groups" : "sites") + ")";
    $("prev").disabled = page === 0;
    $("next").disabled = page >= pages - 1;
    if (shown.length === 0) box.appendChild(el("p", {}, D.groups.length ? "Nothing matches the filter." : "No leaks found."));
  }

  // Flame graph: root at the top, children below, widths proportional to the metric.
  let zoom = null;
  function color(name) {
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return "hsl(" + (h % 50 + 5) + "," + (60 + (h >> 8) % 30) + "%," + (62 + (h >> 16) % 16) + "%)";
  }
  function nameOf(n) { return n.n < 0 ? "all" : D.names[n.n]; }
  function flame() {
    const box = $("flame"), tip = $("flame-tip"), root = D.flame;
    if (!zoom) zoom = [root];
    const top = zoom[zoom.length - 1], W = box.clientWidth || 1000, H = 17;
    box.textContent = "";
    $("flame-what").textContent = "(" + D.metrics[metric] + ", " + top.v[metric] + " in view)";
    $("flame-path").textContent = zoom.map(nameOf).join(" › ");
    const total = top.v[metric];
    let depthMax = 0;
    const frag = document.createDocumentFragment();
    function draw(n, x, depth, width) {
      if (width < 0.5) return;
      depthMax = Math.max(depthMax, depth);
      const b = el("div", { class: "fg-box" }, width > 30 ? nameOf(n) : "");
      b.style.left = x + "px"; b.style.top = depth * H + "px"; b.style.width = width + "px";
      b.style.background = n.n < 0 ? "#ddd" : color(nameOf(n));
      b.onmousemove = (e) => {
        const pct = root.v[metric] ? (100 * n.v[metric] / root.v[metric]).toFixed(2) : "0";
        tip.textContent = nameOf(n) + "\n" + n.v[metric] + " " + D.metrics[metric] + " (" + human(n.v[metric]) + ", " + pct + "% of all)";
        tip.hidden = false; tip.style.left = e.clientX + 12 + "px"; tip.style.top = e.clientY + 12 + "px";
      };
      b.onmouseleave = () => { tip.hidden = true; };
      b.onclick = () => {
        const i = zoom.indexOf(n);
        if (i >= 0) zoom = zoom.slice(0, i + 1); else zoom = pathTo(n) || [root];
        flame();
      };
      frag.appendChild(b);
      let cx = x;
      for (const c of n.c || []) {
        const w = total ? (width * c.v[metric]) / n.v[metric] : 0;
        if (n.v[metric]) draw(c, cx, depth + 1, w);
        cx += w;
      }
    }
    if (total > 0) draw(top, 0, 0, W); else box.appendChild(el("p", {}, "Nothing to draw."));
    box.appendChild(frag);
    box.style.height = (depthMax + 1) * H + 4 + "px";
  }
  function pathTo(target) {
    const path = [];
    function walk(n) {
      path.push(n);
      if (n === target) return true;
      for (const c of n.c || []) if (walk(c)) return true;
      path.pop();
      return false;
    }
    return walk(D.flame) ? path : null;
  }

  function retention() {
    if (!D.retention || !D.retention.length) return;
    $("retention-section").hidden = false;
    for (const r of D.retention) {
      $("retention").appendChild(el("h3", {}, r.t));
      $("retention").appendChild(el("pre", {}, r.l.join("\n")));
    }
  }

  function timeline() {
    const pts = D.timeline;
    if (!pts.length) return;
    $("timeline-section").hidden = false;
    const W = 1000, H = 220, L = 70, B = 24, T = 10;
    const tMax = Math.max(1, pts[pts.length - 1][0]), yMax = Math.max(1, ...pts.map((p) => p[1]));
    const X = (t) => L + ((W - L - 10) * t) / tMax, Y = (v) => H - B - ((H - B - T) * v) / yMax;
    const s = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", id: "timeline-svg" });
    let d = "";
    pts.forEach((p, i) => { d += (i ? " L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1); });
    s.appendChild(svg("path", { class: "area", d: d + " L" + X(pts[pts.length - 1][0]) + "," + Y(0) + " L" + X(pts[0][0]) + "," + Y(0) + " Z" }));
    s.appendChild(svg("path", { class: "line", d: d }));
    s.appendChild(svg("line", { x1: L, y1: Y(0), x2: W - 10, y2: Y(0), stroke: "#888" }));
    s.appendChild(svg("line", { x1: L, y1: T, x2: L, y2: Y(0), stroke: "#888" }));
    const label = (x, y, text, anchor) => { const t = svg("text", { x: x, y: y, "text-anchor": anchor }); t.textContent = text; s.appendChild(t); };
    label(L - 4, T + 8, human(yMax), "end");
    label(L - 4, Y(0), "0", "end");
    label(W - 10, H - 6, tMax + " µs", "end");
    const pk = D.summary.peak_time_us;
    s.appendChild(svg("line", { x1: X(pk), y1: T, x2: X(pk), y2: Y(0), stroke: "#36c", "stroke-dasharray": "4 3" }));
    label(X(pk) + 4, T + 10, "peak " + human(D.summary.peak_bytes), "start");
    $("timeline").appendChild(s);
  }

  // Each leaked cycle once: its members in order, each pointing to the next.
  function cycles() {
    const list = D.cycles || [];
    if (list.length === 0) return;
    $("cycles-section").hidden = false;
    const box = $("cycles");
    for (const c of list) {
      const total = c.m.length + c.more, div = el("div", { class: "cycle" }), h = el("h3");
      h.appendChild(ring(total));
      h.appendChild(document.createTextNode(" Cycle of " + total + " block(s)" +
        (c.n > total ? " (one of the cycles among " + c.n + " blocks that all reach each other)" : "")));
      div.appendChild(h);
      const ol = el("ol", { class: "cycle-members", start: 0 });
      c.m.forEach(([address, bytes, site, loc, offset], i) => {
        const li = el("li");
        li.append(el("span", { class: "ip" }, address + " "), document.createTextNode("(" + bytes + " bytes) " + site));
        if (loc) li.append(" ", el("span", { class: "loc" }, loc));
        const last = i === c.m.length - 1 && c.more === 0;
        li.append(el("span", { class: "note" }, " pointer at " + offset + " \u2192 " + (last ? "the first" : "next")));
        ol.appendChild(li);
      });
      if (c.more > 0) ol.appendChild(el("li", {}, "... and " + c.more + " more blocks, the last pointing to the first"));
      div.appendChild(ol);
      box.appendChild(div);
    }
  }

  function main() {
    D = JSON.parse($("report-data").textContent);
    summary();
    $("groups-title").textContent = D.kind === "leaks" ? "Leak groups" : "Allocation sites";
    if (D.metrics.length > 1) {
      $("metric-label").hidden = false;
      D.metrics.forEach((m, i) => $("metric").appendChild(el("option", { value: i }, m)));
      $("metric").onchange = () => { metric = +$("metric").value; zoom = null; flame(); filterGroups(); };
    }
    $("flame-reset").onclick = () => { zoom = null; flame(); };
    $("prev").onclick = () => { page--; groups(); };
    $("next").onclick = () => { page++; groups(); };
    let pending;
    $("filter").oninput = () => { clearTimeout(pending); pending = setTimeout(filterGroups, 150); };
    window.addEventListener("resize", () => flame());
    filterGroups();
    // `#page=N` opens page N of the groups (links to a page, and tests).
    const wanted = /page=(\d+)/.exec(location.hash);
    if (wanted) { page = Math.min(Math.max(0, +wanted[1] - 1), Math.ceil(shown.length / PAGE) - 1); groups(); }
    flame();
    timeline();
    retention();
    cycles();
    document.body.setAttribute("data-rendered", "1");
    // Milliseconds from navigation to a rendered page: the figure for large reports.
    document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
  }
  try { main(); } catch (e) { fail("error: " + (e && e.stack ? e.stack : e)); }
})();
