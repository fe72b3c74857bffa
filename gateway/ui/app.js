// msa live view: reads the gateway's /v1/live/stream (newline-delimited
// JSON snapshots) with fetch() and renders them. Hand-written, no library.
//
// Rules kept here (a unit test in gateway/src/live/assets.rs checks the
// first two): no markup is ever parsed from a string (every name is set with textContent or as an
// attribute), no URL to another origin, and the token travels only in the
// Authorization header, never in a URL nor a log line.
"use strict";

(function () {
  const TOKEN_KEY = "msa-live-token";
  const STREAM = "/v1/live/stream";
  const RETRY_MS = 1000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const form = $("token-form");
  const tokenInput = $("token");
  const tokenError = $("token-error");
  const status = $("conn-status");

  // The previous snapshot's counters, for rates.
  let prev = null;
  let nodeEls = new Map();
  let traces = [];
  let selectedTrace = null;
  let selectedSpanCount = -1;
  let traceListKey = "";
  let knownServices = new Set();
  let controller = null;
  let retryTimer = null;
  let generation = 0;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v !== undefined && v !== null) e.setAttribute(k, String(v));
      }
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function setConnected(on, text) {
    document.body.dataset.connected = on ? "true" : "false";
    status.textContent = text;
  }

  // ---- formatting ----
  function fmtDuration(us) {
    if (us === null || us === undefined) return "–";
    if (us < 1000) return us + " µs";
    if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + " ms";
    return (us / 1e6).toFixed(2) + " s";
  }
  function fmtRate(r) {
    if (r === null || r === undefined || !isFinite(r)) return "–";
    return r < 10 ? r.toFixed(1) : Math.round(r).toString();
  }
  function fmtBytes(b) {
    if (b === null || b === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i === 0 ? Math.round(b) : b.toFixed(1)) + " " + units[i];
  }
  function fmtUptime(s) {
    if (s === null || s === undefined) return "uptime –";
    if (s < 60) return "up " + Math.floor(s) + "s";
    if (s < 3600) return "up " + Math.floor(s / 60) + "m " + Math.floor(s % 60) + "s";
    if (s < 86400) return "up " + Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
    return "up " + Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  }
  function rate(cur, old, dtSec) {
    if (old === undefined || dtSec <= 0 || cur < old) return null;
    return (cur - old) / dtSec;
  }

  // ---- nodes ----
  function renderNodes(snap) {
    const list = $("node-list");
    const seen = new Set();
    for (const n of snap.nodes || []) {
      seen.add(n.name);
      let card = nodeEls.get(n.name);
      if (!card) {
        card = el("div", { class: "card", "data-node": n.name });
        card.appendChild(el("div", { class: "name" }, n.name));
        card.appendChild(el("div", { class: "meta addr" }));
        card.appendChild(el("div", { class: "meta state" }));
        card.appendChild(el("div", { class: "meta uptime" }));
        nodeEls.set(n.name, card);
        list.appendChild(card);
      }
      card.setAttribute("data-state", n.state);
      card.querySelector(".addr").textContent = n.addr || "";
      const parts = [n.state];
      if (n.member_state && n.member_state !== n.state) parts.push(n.member_state);
      if (n.name === snap.observer) parts.push("(serving this page)");
      card.querySelector(".state").textContent = parts.join(" · ");
      card.querySelector(".uptime").textContent = fmtUptime(n.uptime_s);
    }
    for (const [name, card] of nodeEls) {
      if (!seen.has(name)) {
        card.remove();
        nodeEls.delete(name);
      }
    }
    const pairs = $("unreachable-pairs");
    clear(pairs);
    for (const [observer, subject] of snap.unreachable || []) {
      pairs.appendChild(el("div", { class: "pair" }, observer + " cannot reach " + subject));
    }
    window.msaNodeCount = nodeEls.size;
    if (nodeEls.size > 0 && window.msaFirstNodesAt === undefined) {
      window.msaFirstNodesAt = performance.now();
    }
  }

  // ---- connections ----
  function renderConnections(snap, dt) {
    const body = $("connection-rows");
    clear(body);
    for (const c of snap.connections || []) {
      const key = c.from + "|" + c.to;
      const old = prev && prev.conns.get(key);
      const tr = el("tr", { "data-from": c.from, "data-to": c.to });
      tr.appendChild(el("td", null, c.from));
      tr.appendChild(el("td", null, c.to));
      tr.appendChild(el("td", { class: "num" }, fmtBytes(rate(c.bytes_out, old && old.bytes_out, dt)) + "/s"));
      tr.appendChild(el("td", { class: "num" }, fmtBytes(rate(c.bytes_in, old && old.bytes_in, dt)) + "/s"));
      tr.appendChild(el("td", { class: "num" }, fmtBytes(c.bytes_out)));
      tr.appendChild(el("td", { class: "num" }, fmtBytes(c.bytes_in)));
      tr.appendChild(el("td", { class: "num" }, fmtBytes(c.queued_bytes)));
      body.appendChild(tr);
    }
  }

  // ---- services ----
  function renderServices(snap, dt) {
    const body = $("service-rows");
    clear(body);
    for (const s of snap.services || []) {
      knownServices.add(s.service);
      const old = prev && prev.services.get(s.service + "|" + s.node);
      const calls = rate(s.messages, old && old.messages, dt);
      const errors = rate(s.errors, old && old.errors, dt);
      const tr = el("tr", { "data-service": s.service, "data-node": s.node });
      if (errors) tr.className = "bad";
      tr.appendChild(el("td", null, s.service));
      tr.appendChild(el("td", null, s.node));
      tr.appendChild(el("td", { class: "num" }, s.instances));
      tr.appendChild(el("td", { class: "num" }, fmtRate(calls)));
      tr.appendChild(el("td", { class: "num" }, fmtRate(errors)));
      tr.appendChild(el("td", { class: "num" }, fmtDuration(s.p50_us)));
      tr.appendChild(el("td", { class: "num" }, fmtDuration(s.p99_us)));
      tr.appendChild(el("td", { class: "num" }, s.mailbox_depth === null ? "–" : s.mailbox_depth));
      tr.appendChild(el("td", { class: "num" }, s.restarts));
      body.appendChild(tr);
    }
  }

  // ---- supervision ----
  function treeItem(t) {
    const li = el("li", null);
    const label = t.kind ? t.name + " (" + t.kind + ")" : t.name;
    li.appendChild(el("span", null, label));
    for (const r of t.restarts || []) {
      const when = r.at_ms ? new Date(r.at_ms).toLocaleTimeString() + " " : "";
      const who = r.child ? r.child + ": " : "";
      li.appendChild(el("div", { class: "restart" }, "restart " + when + who + (r.reason || "")));
    }
    if (t.children && t.children.length) {
      const ul = el("ul", null);
      for (const c of t.children) ul.appendChild(treeItem(c));
      li.appendChild(ul);
    }
    return li;
  }
  function renderSupervision(snap) {
    const box = $("supervision-trees");
    clear(box);
    for (const s of snap.supervision || []) {
      const card = el("div", { class: "card tree", "data-node": s.node });
      card.appendChild(el("div", { class: "name" }, s.node));
      const ul = el("ul", null);
      for (const t of s.trees || []) ul.appendChild(treeItem(t));
      card.appendChild(ul);
      box.appendChild(card);
    }
  }

  // ---- traces ----
  function syncServiceFilter() {
    const sel = $("trace-service");
    const have = new Set(Array.from(sel.options).map((o) => o.value));
    for (const t of traces) for (const s of t.services || []) knownServices.add(s);
    for (const name of Array.from(knownServices).sort()) {
      if (!have.has(name)) sel.appendChild(el("option", { value: name }, name));
    }
  }
  function filteredTraces() {
    const svc = $("trace-service").value;
    const st = $("trace-status").value;
    return traces.filter((t) =>
      (!svc || (t.services || []).includes(svc)) && (!st || t.status === st));
  }
  function renderTraceList(force) {
    const shown = filteredTraces();
    const key = shown.map((t) => t.trace_id + ":" + t.spans.length).join(",") +
      "|" + selectedTrace;
    if (!force && key === traceListKey) return;
    traceListKey = key;
    const list = $("trace-list");
    clear(list);
    for (const t of shown) {
      const li = el("li", {
        "data-trace": t.trace_id,
        "data-nodes": (t.nodes || []).slice().sort().join(" "),
        "data-services": (t.services || []).join(" "),
        "data-status": t.status,
        class: t.status === "error" ? "error" : "",
      });
      if (t.trace_id === selectedTrace) li.classList.add("selected");
      li.appendChild(el("span", null, (t.root || "") + " · " + (t.services || []).join(" → ")));
      li.appendChild(el("span", { class: "status" }, t.status + " " + fmtDuration(t.duration_us)));
      li.appendChild(el("span", { class: "id" }, t.trace_id));
      li.appendChild(el("span", { class: "dim" }, (t.nodes || []).length + " node(s), " + t.spans.length + " span(s)"));
      li.addEventListener("click", () => selectTrace(t.trace_id));
      list.appendChild(li);
    }
  }
  function selectTrace(id) {
    selectedTrace = id;
    selectedSpanCount = -1;
    renderTraceList(true);
    renderTraceDetail();
  }
  function renderTraceDetail() {
    const t = traces.find((x) => x.trace_id === selectedTrace);
    if (!t) return; // keep what is shown: the trace left the window
    if (t.spans.length === selectedSpanCount) return;
    selectedSpanCount = t.spans.length;
    const box = $("trace-detail");
    clear(box);
    box.appendChild(el("h2", null, "Trace " + t.trace_id));
    const spans = t.spans.slice().sort((a, b) => a.start_us - b.start_us);
    const t0 = spans.length ? spans[0].start_us : 0;
    let end = t0;
    for (const s of spans) end = Math.max(end, s.start_us + s.duration_us);
    const total = Math.max(end - t0, 1);
    const depth = new Map();
    for (const s of spans) {
      const d = s.parent_id && depth.has(s.parent_id) ? depth.get(s.parent_id) + 1 : 0;
      depth.set(s.span_id, d);
    }
    for (const s of spans) {
      const row = el("div", {
        class: "span-row" + (s.outcome === "ok" ? "" : " error"),
        "data-span": s.span_id,
        "data-node": s.node,
        "data-service": s.service,
        "data-parent": s.parent_id || "",
        "data-outcome": s.outcome,
      });
      const label = el("div", { class: "label" },
        "\u00a0".repeat(2 * depth.get(s.span_id)) + s.service + "@" + s.node +
        (s.instance !== null && s.instance !== undefined ? "#" + s.instance : "") +
        (s.name ? " " + s.name : ""));
      label.title = s.service + "@" + s.node + " " + (s.name || "") + " " + s.outcome;
      row.appendChild(label);
      const svg = document.createElementNS(SVG_NS, "svg");
      svg.setAttribute("preserveAspectRatio", "none");
      const rect = document.createElementNS(SVG_NS, "rect");
      const x = ((s.start_us - t0) / total) * 100;
      const w = Math.max((s.duration_us / total) * 100, 0.5);
      rect.setAttribute("x", x.toFixed(3) + "%");
      rect.setAttribute("width", Math.min(w, 100 - x).toFixed(3) + "%");
      rect.setAttribute("y", "1");
      rect.setAttribute("height", "12");
      const title = document.createElementNS(SVG_NS, "title");
      title.textContent = s.outcome + ", " + fmtDuration(s.duration_us);
      rect.appendChild(title);
      svg.appendChild(rect);
      row.appendChild(svg);
      row.appendChild(el("div", { class: "dur" },
        fmtDuration(s.duration_us) + (s.outcome === "ok" ? "" : " " + s.outcome)));
      box.appendChild(row);
    }
  }

  // ---- one snapshot ----
  function render(snap) {
    const dt = prev ? (snap.at_ms - prev.at_ms) / 1000 : 0;
    $("observer").textContent = "served by " + (snap.observer || "?");
    renderNodes(snap);
    renderConnections(snap, dt);
    renderServices(snap, dt);
    renderSupervision(snap);
    traces = snap.traces || [];
    syncServiceFilter();
    renderTraceList(false);
    renderTraceDetail();
    const services = new Map();
    for (const s of snap.services || []) services.set(s.service + "|" + s.node, s);
    const conns = new Map();
    for (const c of snap.connections || []) conns.set(c.from + "|" + c.to, c);
    if (dt > 0 || !prev) prev = { at_ms: snap.at_ms, services, conns };
  }

  // ---- the stream ----
  function scheduleRetry(gen) {
    if (gen !== generation) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => connect(gen), RETRY_MS);
  }

  async function connect(gen) {
    if (gen !== generation) return;
    const token = sessionStorage.getItem(TOKEN_KEY) || "";
    const headers = { Accept: "application/x-ndjson" };
    if (token) headers.Authorization = "Bearer " + token;
    controller = new AbortController();
    let res;
    try {
      res = await fetch(STREAM, { headers, cache: "no-store", signal: controller.signal });
    } catch (e) {
      setConnected(false, "disconnected, retrying");
      scheduleRetry(gen);
      return;
    }
    if (res.status === 401 || res.status === 403) {
      let message = res.status === 401 ? "the token was refused" : "an admin role is required";
      try {
        const body = await res.json();
        if (body && typeof body.message === "string") message = body.message;
      } catch (e) { /* not JSON */ }
      sessionStorage.removeItem(TOKEN_KEY);
      setConnected(false, "not connected");
      tokenError.textContent = res.status + ": " + message;
      form.hidden = false;
      return;
    }
    if (!res.ok || !res.body) {
      setConnected(false, "error " + res.status + ", retrying");
      scheduleRetry(gen);
      return;
    }
    form.hidden = true;
    tokenError.textContent = "";
    setConnected(true, "live");
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          let snap;
          try {
            snap = JSON.parse(line);
          } catch (e) {
            continue;
          }
          render(snap);
        }
      }
    } catch (e) {
      // the connection broke; reconnect below
    }
    setConnected(false, "disconnected, retrying");
    scheduleRetry(gen);
  }

  function start() {
    generation++;
    clearTimeout(retryTimer);
    if (controller) controller.abort();
    connect(generation);
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = tokenInput.value.trim();
    tokenInput.value = "";
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
    tokenError.textContent = "";
    status.textContent = "connecting";
    start();
  });
  $("trace-service").addEventListener("change", () => renderTraceList(true));
  $("trace-status").addEventListener("change", () => renderTraceList(true));

  window.msaNodeCount = 0;
  setConnected(false, "not connected");
  if (sessionStorage.getItem(TOKEN_KEY)) start();
})();
