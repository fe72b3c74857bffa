#!/usr/bin/env python3
"""The live view (docs/live-view.md) in a real browser: headless Chromium
from Debian's packages, driven through chromedriver by selenium.

Run by .ci/browser (which installs Chromium, chromedriver and selenium);
not by `cargo test`. Against `msa cluster up --nodes 3 --jwt-secret S` on
free ports it:

  1. opens <gateway>/ui, enters an admin token from `msa token` and waits
     until the page says it is connected (`body[data-connected=true]`);
  2. reloads (the token stays in the tab's sessionStorage) and measures the
     first render: from navigation start until three nodes are listed
     (a MutationObserver installed before the page's own scripts records
     `performance.now()` when `#nodes [data-node]` reaches three; the
     page's own `window.msaFirstNodesAt` is printed beside it). Target
     1000 ms; the test fails above 3000 ms (a loaded CI machine);
  3. checks the three nodes and the shop's services on the nodes
     `cluster up` printed;
  4. places an order (POST /orders) and waits at most 2 s for a new trace
     whose `data-nodes` names three nodes; clicks it and checks the detail:
     spans on three nodes, linked by `data-parent` into a chain of at least
     three spans (gateway -> orders -> inventory/payments);
  4a. filters: places an order that succeeds and one the gateway refuses
     (400: a qty that is not a number; an error trace), then picks values
     in the page's service and status <select>s and waits (5 s at most
     each) until the list shows only matching traces: status=error (the
     error trace, not the ok one), status=ok (the reverse), a service only
     the ok trace has (it, not the error trace), that service with
     status=error (no trace of the ok one); "all" in both shows both
     traces again;
  5. SIGKILLs node3 (payments; not the gateway's node) and waits at most
     3 s for its `data-state` to leave `alive` (unreachable, suspect or
     down), then (at most 30 s) for `down`, decided by node1 and node2
     (SWIM, or the split-brain resolver);
  6. saves screenshots in docs/img/ (live-view-cluster.png,
     live-view-trace.png, live-view-node-down.png);
  7. checks the browser's console has no errors (script errors, CSP
     violations);
  8. escaping: the page's own files, served by a stub on another port
     without the CSP, render a stream of snapshots whose every name is
     markup and script (`<img onerror=...>`, `<script>`); no element,
     handler or script may come of them, and each shows as text.

Every wait polls a condition with a deadline. The cluster (its own process
group) and the browser are stopped at the end, failure or not.

Usage: live_view.py --msa target/debug/msa [--img docs/img]
       [--chromium /usr/bin/chromium] [--chromedriver /usr/bin/chromedriver]
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FIRST_RENDER_TARGET_MS = 1000
FIRST_RENDER_LIMIT_MS = 3000
TRACE_WITHIN_S = 2.0
UNREACHABLE_WITHIN_S = 3.0
DOWN_WITHIN_S = 30.0

# Recorded before any script of the page runs: when three nodes are listed.
THREE_NODES_OBSERVER = """
(function () {
  window.__msaThreeNodesAt = null;
  function check() {
    if (window.__msaThreeNodesAt !== null) return;
    var n = document.querySelectorAll('#nodes [data-node]').length;
    if (n >= 3) { window.__msaThreeNodesAt = performance.now(); obs.disconnect(); }
  }
  var obs = new MutationObserver(check);
  obs.observe(document, {childList: true, subtree: true, attributes: true});
})();
"""


class Failed(Exception):
    """A check that did not hold; the message says which and what was seen."""


def log(msg):
    print(f"browser: {msg}", flush=True)


def wait_for(what, timeout, cond, interval=0.05):
    """Polls `cond` until it returns a truthy value or `timeout` seconds
    pass; returns (value, seconds waited) or raises Failed."""
    t0 = time.monotonic()
    last = None
    while True:
        try:
            v = cond()
        except Failed:
            raise
        except Exception as e:  # a stale element, a page between renders
            v, last = None, e
        if v:
            return v, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            extra = f" (last error: {last})" if last else ""
            raise Failed(f"{what}: not within {timeout:g} s{extra}")
        time.sleep(interval)  # polling interval of a deadline-bounded wait


class Cluster:
    """`msa cluster up --nodes 3` on free ports, in its own process group."""

    def __init__(self, msa, tmp):
        self.msa = msa
        self.tmp = tmp
        self.jwt_secret = secrets.token_hex(16)
        self.proc = None
        self.rows = {}
        self.lines = []
        self.stderr = []

    def start(self):
        msa, tmp = self.msa, self.tmp
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSA_")}
        env.setdefault("RUST_LOG", "warn")
        self.proc = subprocess.Popen(
            [msa, "cluster", "up", "--nodes", "3", "--gateway", "127.0.0.1:0",
             "--jwt-secret", self.jwt_secret, "--state", os.path.join(tmp, "cluster.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            text=True, env=env, start_new_session=True)
        threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr),
                         daemon=True).start()
        ready = threading.Event()

        def read_stdout():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("secret:"):
                    ready.set()
            ready.set()

        threading.Thread(target=read_stdout, daemon=True).start()
        if not ready.wait(90) or not any(l.startswith("secret:") for l in self.lines):
            raise Failed("msa cluster up printed no summary:\n" + "\n".join(self.lines)
                         + "\n" + "".join(self.stderr[-30:]))
        for l in self.lines:
            c = l.split()
            if c and c[0].startswith("node") and len(c) >= 5 and c[1].isdigit():
                self.rows[c[0]] = {"pid": int(c[1]), "addr": c[2], "services": c[3],
                                   "shop": c[4], "gateway": c[5] if len(c) > 5 else ""}
        if sorted(self.rows) != ["node1", "node2", "node3"]:
            raise Failed(f"cluster up's table: {self.lines}")
        self.gateway = self.rows["node1"]["gateway"]
        ui = [l for l in self.lines if l.startswith("ui:")]
        self.ui_line = ui[0] if ui else None

    @staticmethod
    def _drain(stream, into):
        for line in stream:
            into.append(line)
            del into[:-200]

    def token(self, sub, role):
        r = subprocess.run([self.msa, "token", "--secret", self.jwt_secret, "--sub", sub,
                            "--role", role, "--ttl", "30m"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failed(f"msa token: {r.stderr}")
        return r.stdout.strip()

    def expected_services(self):
        """(service, node) pairs from the table's SERVICES and SHOP cells."""
        want = set()
        for node, row in self.rows.items():
            for cell in (row["services"], row["shop"]):
                for s in cell.split(","):
                    if s and s != "-":
                        want.add((s, node))
        return want

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (nodes included) is killed.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for row in self.rows.values():
            try:
                os.kill(row["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def http(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method,
                                 data=body.encode() if body is not None else None)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def start_browser(chromium, chromedriver, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              f"--user-data-dir={profile}", "--window-size=1400,1000",
              "--disable-dev-shm-usage"]:
        opts.add_argument(a)
    # The console (errors, CSP violations) is read at the end.
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver)
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_page_load_timeout(30)
    return driver


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def node_states(driver):
    return js(driver, """
        var out = {};
        document.querySelectorAll('#nodes [data-node]').forEach(function (e) {
          out[e.dataset.node] = e.dataset.state || '';
        });
        return out;""")


def services_shown(driver):
    pairs = js(driver, """
        return Array.from(document.querySelectorAll('#services [data-service]'))
          .map(function (e) { return [e.dataset.service, e.dataset.node || '']; });""")
    return {(s, n) for s, n in pairs}


def traces_shown(driver):
    return js(driver, """
        return Array.from(document.querySelectorAll('#traces [data-trace]'))
          .map(function (e) { return {id: e.dataset.trace, nodes: e.dataset.nodes || '',
                                      services: e.dataset.services || '',
                                      status: e.dataset.status || ''}; });""")


def trace_spans(driver):
    return js(driver, """
        return Array.from(document.querySelectorAll('#trace-detail [data-span]'))
          .map(function (e) { return {span: e.dataset.span, node: e.dataset.node || '',
                                      service: e.dataset.service || '',
                                      parent: e.dataset.parent || ''}; });""")


def longest_chain(spans):
    """The number of spans on the longest parent chain in `spans`; raises
    Failed when a parent points outside the trace (a broken chain) other
    than at its roots."""
    by_id = {s["span"]: s for s in spans}
    roots = [s for s in spans if not s["parent"] or s["parent"] not in by_id]
    if not roots:
        raise Failed(f"no root span (every parent is in the trace: a cycle): {spans}")
    best = 0
    for s in spans:
        depth, cur, seen = 1, s, {s["span"]}
        while cur["parent"] in by_id:
            cur = by_id[cur["parent"]]
            if cur["span"] in seen:
                raise Failed(f"a parent cycle at span {cur['span']}: {spans}")
            seen.add(cur["span"])
            depth += 1
        best = max(best, depth)
    return best


def screenshot(driver, img_dir, name):
    os.makedirs(img_dir, exist_ok=True)
    path = os.path.join(img_dir, name)
    driver.save_screenshot(path)
    log(f"screenshot {os.path.relpath(path, ROOT)}")


def check_trace(driver, cluster, alice, img_dir, results):
    """An order placed through the gateway shows up as a trace on three
    nodes; its detail has spans on three nodes in a parent chain."""
    from selenium.webdriver.common.by import By

    # An order through the gateway becomes a trace on three nodes.
    before = {t["id"] for t in traces_shown(driver)}
    t_send = time.monotonic()
    status, body = http("POST", f"{cluster.gateway}/orders", alice,
                        '{"sku": "book", "qty": 1}')
    t_answer = time.monotonic()
    if status != 200 or '"Confirmed"' not in body:
        raise Failed(f"POST /orders: {status} {body}")

    def new_trace():
        for t in traces_shown(driver):
            if t["id"] not in before and len(set(t["nodes"].split())) >= 3:
                return t
        return None
    try:
        trace, waited = wait_for("a trace on three nodes after POST /orders",
                                 TRACE_WITHIN_S, new_trace, 0.02)
    except Failed as e:
        raise Failed(f"{e}; traces shown: {traces_shown(driver)[:5]}")
    results["trace_after_answer_ms"] = round(waited * 1000)
    log(f"trace {trace['id']} on {trace['nodes']!r} ({trace['services']}) shown "
        f"{waited * 1000:.0f} ms after the order's answer "
        f"({(time.monotonic() - t_send) * 1000:.0f} ms after it was sent; "
        f"the call took {(t_answer - t_send) * 1000:.0f} ms); limit {TRACE_WITHIN_S:g} s")
    if len(trace["id"]) != 32 or any(c not in "0123456789abcdef" for c in trace["id"]):
        raise Failed(f"data-trace is not 32 hex digits: {trace['id']!r}")
    nodes_attr = trace["nodes"].split()
    if nodes_attr != sorted(nodes_attr):
        raise Failed(f"data-nodes not sorted: {trace['nodes']!r}")
    screenshot(driver, img_dir, "live-view-cluster.png")

    el = driver.find_element(By.CSS_SELECTOR, f'#traces [data-trace="{trace["id"]}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
    el.click()

    def detail():
        spans = trace_spans(driver)
        if len({s["node"] for s in spans}) >= 3 and longest_chain(spans) >= 3:
            return spans
        return None
    try:
        spans, _ = wait_for("the trace's detail", 5, detail)
    except Failed as e:
        raise Failed(f"{e}: spans shown {trace_spans(driver)}")
    log(f"detail: {len(spans)} spans on {sorted({s['node'] for s in spans})}, "
        f"longest parent chain {longest_chain(spans)} spans: "
        + "; ".join(f"{s['service']}@{s['node']}" for s in spans))
    shown = {s["service"] for s in spans}
    for svc in ("orders", "inventory", "payments"):
        if svc not in shown:
            raise Failed(f"no {svc} span in the trace's detail: {spans}")
    driver.execute_script(
        "var d = document.getElementById('trace-detail');"
        "if (d) d.scrollIntoView({block: 'start'});")
    screenshot(driver, img_dir, "live-view-trace.png")


def check_filters(driver, cluster, alice, results):
    """The trace list's filters, driven through the page's own <select>s:
    an order that succeeds (orders, inventory, payments) and one the
    gateway refuses (a qty that is not a number: 400, status error);
    filtering by status and by a service only the first has shows only
    matching traces, and "all" shows both again."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    before = {t["id"] for t in traces_shown(driver)}
    status, body = http("POST", f"{cluster.gateway}/orders", alice,
                        '{"sku": "book", "qty": 1}')
    if status != 200 or '"Confirmed"' not in body:
        raise Failed(f"POST /orders: {status} {body}")
    # A body the gateway cannot decode: 400, the gateway's hop `bad_request`.
    status, body = http("POST", f"{cluster.gateway}/orders", alice,
                        '{"sku": "book", "qty": "many"}')
    if not 400 <= status < 500:
        raise Failed(f"POST /orders with qty \"many\": {status} {body} (want 4xx)")

    def both():
        new = [t for t in traces_shown(driver) if t["id"] not in before]
        ok = [t for t in new if t["status"] == "ok" and "payments" in t["services"].split()]
        bad = [t for t in new if t["status"] == "error"]
        return (ok[0], bad[0]) if ok and bad else None
    try:
        (good, bad), _ = wait_for("an ok and an error trace after two orders", 5, both)
    except Failed as e:
        raise Failed(f"{e}; traces shown: {traces_shown(driver)[:6]}")
    only_good = [s for s in good["services"].split() if s not in bad["services"].split()]
    if not only_good:
        raise Failed(f"no service in the ok trace ({good['services']!r}) "
                     f"that is not in the error trace ({bad['services']!r})")
    service = only_good[-1]
    log(f"filters: ok trace {good['id']} ({good['services']}), "
        f"error trace {bad['id']} ({bad['services']}), service filter {service!r}")

    svc_select = Select(driver.find_element(By.ID, "trace-service"))
    status_select = Select(driver.find_element(By.ID, "trace-status"))

    def expect(what, match, present, absent):
        """Waits until every shown trace matches, `present` is shown and
        `absent` is not."""
        def cond():
            shown = traces_shown(driver)
            ids = {t["id"] for t in shown}
            return (all(match(t) for t in shown) and present["id"] in ids
                    and absent["id"] not in ids and shown)
        try:
            shown, _ = wait_for(what, 5, cond)
        except Failed as e:
            raise Failed(f"{e}; traces shown: {traces_shown(driver)[:8]}")
        return len(shown)

    def expect_both(what):
        def cond():
            ids = {t["id"] for t in traces_shown(driver)}
            return good["id"] in ids and bad["id"] in ids
        try:
            wait_for(what, 5, cond)
        except Failed as e:
            raise Failed(f"{e}; traces shown: {traces_shown(driver)[:8]}")

    status_select.select_by_value("error")
    n_err = expect("only error traces with status=error",
                   lambda t: t["status"] == "error", bad, good)
    status_select.select_by_value("ok")
    n_ok = expect("only ok traces with status=ok",
                  lambda t: t["status"] == "ok", good, bad)
    status_select.select_by_value("")
    expect_both("both traces again with status=all")
    wait_for(f"{service!r} among the service filter's options", 5, lambda: js(
        driver, "var v = arguments[0];"
                "return Array.from(document.getElementById('trace-service').options)"
                ".some(function (o) { return o.value === v; })", service))
    svc_select.select_by_value(service)
    n_svc = expect(f"only traces through {service} with service={service}",
                   lambda t: service in t["services"].split(), good, bad)
    status_select.select_by_value("error")
    wait_for(f"no trace with service={service} and status=error", 5,
             lambda: not any(t["id"] == good["id"] for t in traces_shown(driver))
             and all(service in t["services"].split() and t["status"] == "error"
                     for t in traces_shown(driver)))
    svc_select.select_by_value("")
    status_select.select_by_value("")
    expect_both("both traces again with both filters cleared")
    results["filters_shown"] = {"status=error": n_err, "status=ok": n_ok,
                                f"service={service}": n_svc}
    log(f"filters: status=error shows {n_err}, status=ok {n_ok}, "
        f"service={service} {n_svc} trace(s), each matching; cleared: both shown")


def check_node_down(driver, cluster, img_dir, results):
    """node3 SIGKILLed: unreachable within 3 s, down after the
    split-brain resolver's decision."""
    # SIGKILL node3: unreachable within 3 s, down after the resolver's decision.
    victim = "node3"
    seen = []

    def state_is(states):
        s = node_states(driver).get(victim)
        if not seen or seen[-1][1] != s:
            seen.append((round(time.monotonic() - t_kill, 2), s))
        return s in states
    t_kill = time.monotonic()
    os.kill(cluster.rows[victim]["pid"], signal.SIGKILL)
    # Suspect (SWIM's first doubt) is not yet unreachable: the serving node
    # must say it cannot reach node3 (or that node3 is down) within 3 s.
    _, waited = wait_for(f"{victim} shown no longer alive after SIGKILL", UNREACHABLE_WITHIN_S,
                         lambda: state_is({"unreachable", "suspect", "down"}), 0.02)
    results["not_alive_ms"] = round(waited * 1000)
    log(f"{victim} shown {seen[-1][1]} {waited * 1000:.0f} ms after SIGKILL")
    try:
        wait_for(f"{victim} shown unreachable after SIGKILL",
                 UNREACHABLE_WITHIN_S - (time.monotonic() - t_kill),
                 lambda: state_is({"unreachable", "down"}), 0.02)
    except Failed as e:
        raise Failed(f"{e} of SIGKILL; states seen (s after SIGKILL, state): {seen}")
    waited = time.monotonic() - t_kill
    results["unreachable_ms"] = round(waited * 1000)
    log(f"{victim} shown {seen[-1][1]} {waited * 1000:.0f} ms after SIGKILL "
        f"(limit {UNREACHABLE_WITHIN_S:g} s)")
    wait_for(f"{victim} shown down", DOWN_WITHIN_S, lambda: state_is({"down"}), 0.05)
    waited = time.monotonic() - t_kill
    results["down_ms"] = round(waited * 1000)
    log(f"{victim} shown down {waited:.2f} s after SIGKILL (limit {DOWN_WITHIN_S:g} s); "
        f"states seen (s after SIGKILL, state): {seen}")
    js(driver, "window.scrollTo(0, 0);")
    screenshot(driver, img_dir, "live-view-node-down.png")
    others = {n: s for n, s in node_states(driver).items() if n != victim}
    if others != {"node1": "alive", "node2": "alive"}:
        raise Failed(f"the other nodes: {others}")


# Markup and script in every name the page shows: escaping must keep each
# one text (docs/live-view.md, "The page: no toolchain, CSP, escaping").
HOSTILE = '<img src=x onerror="window.__msaPwned=1"><script>window.__msaPwned=2</script>'


def hostile_snapshot(seq):
    """A snapshot (version 1) whose every shown name is HOSTILE-laden."""
    h = HOSTILE
    tid = "ab" * 16
    return {
        "version": 1, "seq": seq, "at_ms": int(time.time() * 1000) + seq * 250,
        "observer": "n1" + h,
        "nodes": [
            {"name": "n1" + h, "addr": "addr" + h, "state": "alive", "status": "alive",
             "member_state": "up" + h, "reachability": "reachable", "uptime_s": 5},
            {"name": "n2" + h, "addr": "addr2" + h, "state": "unreachable", "status": "alive",
             "member_state": "up", "reachability": "unreachable", "uptime_s": 5},
        ],
        "unreachable": [["n1" + h, "n2" + h]],
        "connections": [{"from": "n1" + h, "to": "n2" + h, "frames_in": 1, "frames_out": 1,
                         "bytes_in": 10 * seq, "bytes_out": 20 * seq, "queued_bytes": 0}],
        "services": [{"service": "svc" + h, "node": "n1" + h, "instances": 1,
                      "messages": 10 * seq, "errors": seq, "restarts": 1,
                      "mailbox_depth": 0, "p50_us": 250, "p99_us": 2500}],
        "supervision": [{"node": "n1" + h, "trees": [{
            "name": "root" + h, "kind": "supervisor" + h, "restarts": [],
            "children": [{"name": "svc" + h, "kind": "service", "children": [],
                          "restarts": [{"at_ms": 1764979100000, "child": "svc#1" + h,
                                        "reason": "panicked: " + h}]}]}]}],
        "traces": [{"trace_id": tid, "root": "svc" + h + " msg" + h,
                    "start_us": 1764979199000000, "duration_us": 5300, "status": "error",
                    "nodes": ["n1" + h], "services": ["svc" + h],
                    "spans": [{"span_id": "cd" * 8, "parent_id": None, "node": "n1" + h,
                               "service": "svc" + h, "instance": 0, "name": "msg" + h,
                               "kind": "gateway", "start_us": 1764979199000000,
                               "duration_us": 5300, "outcome": "error" + h}]}],
    }


class HostileServer:
    """The page's own files (fetched from the cluster's gateway) and a
    stream of hostile snapshots, on a free loopback port. Served without
    the Content-Security-Policy, so that escaping alone keeps the markup
    inert: with the CSP, an escaping bug could hide behind it."""

    def __init__(self, gateway):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        files = {}
        for path, ctype in (("/ui", "text/html; charset=utf-8"),
                            ("/ui/app.js", "text/javascript; charset=utf-8"),
                            ("/ui/app.css", "text/css; charset=utf-8")):
            status, body = http("GET", f"{gateway}{path}")
            if status != 200:
                raise Failed(f"GET {gateway}{path}: {status}")
            files[path] = (ctype, body.encode())
        stop = self.stop_event = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path in files:
                    ctype, body = files[self.path]
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path == "/v1/live/stream":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.end_headers()
                    seq = 1
                    try:
                        while not stop.is_set():
                            line = json.dumps(hostile_snapshot(seq)) + "\n"
                            self.wfile.write(line.encode())
                            self.wfile.flush()
                            seq += 1
                            stop.wait(0.25)
                    except OSError:
                        pass
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


def check_escaping(driver, cluster, results):
    """Every name the page shows, made of markup and script, is shown as
    text: no element, no handler, no script run (the CSP off)."""
    from selenium.webdriver.common.by import By

    server = HostileServer(cluster.gateway)
    try:
        driver.get(f"{server.url}/ui")
        driver.find_element(By.ID, "token-submit").click()  # auth off: no token
        wait_for("the hostile snapshot rendered", 10, lambda: js(driver, """
            return document.querySelectorAll('#nodes [data-node]').length === 2
              && document.querySelectorAll('#services [data-service]').length === 1
              && document.querySelectorAll('#traces [data-trace]').length === 1;"""))
        driver.find_element(By.CSS_SELECTOR, "#traces [data-trace]").click()
        wait_for("the hostile trace's detail", 5, lambda: js(
            driver, "return document.querySelectorAll('#trace-detail [data-span]').length")
            == 1)
        # Two more snapshots: rates and in-place updates ran over the names.
        seq0 = js(driver, "return document.getElementById('connection-rows').textContent")
        wait_for("a later snapshot rendered", 5, lambda: js(
            driver, "return document.getElementById('connection-rows').textContent") != seq0)
        found = js(driver, """
            var h = arguments[0], out = {};
            out.pwned = window.__msaPwned === undefined ? null : window.__msaPwned;
            out.imgs = document.querySelectorAll('img').length;
            out.scripts = Array.from(document.scripts).map(function (s) { return s.src; });
            out.handlers = Array.from(document.querySelectorAll('*')).filter(function (e) {
              return Array.from(e.attributes).some(function (a) { return /^on/i.test(a.name); });
            }).length;
            out.missing = [];
            ['node-list', 'unreachable-pairs', 'connection-rows', 'service-rows',
             'supervision-trees', 'trace-list', 'trace-detail', 'observer'].forEach(function (id) {
              var e = document.getElementById(id);
              if (!e || e.textContent.indexOf(h) < 0) out.missing.push(id);
            });
            var opts = Array.from(document.getElementById('trace-service').options)
              .map(function (o) { return o.value; });
            if (opts.indexOf('svc' + h) < 0) out.missing.push('trace-service option');
            var card = document.querySelector('#nodes [data-node]');
            out.attr = card ? card.getAttribute('data-node') : null;
            return out;""", HOSTILE)
        log(f"escaping: {json.dumps(found)}")
        if found["pwned"] is not None or found["imgs"] or found["handlers"]:
            raise Failed(f"a hostile name became markup: {found}")
        if [s for s in found["scripts"] if not s.endswith("/ui/app.js")]:
            raise Failed(f"a hostile name became a script: {found['scripts']}")
        if found["missing"]:
            raise Failed(f"the hostile names are not shown as text in {found['missing']}")
        if found["attr"] != "n1" + HOSTILE:
            raise Failed(f"data-node is {found['attr']!r}")
        results["escaping"] = "ok"
        log("escaping: every hostile name shown as text, no element or script from one")
    finally:
        try:
            driver.get("about:blank")
        except Exception:
            pass
        server.close()


def console_errors(driver):
    """The console's SEVERE entries (script errors, CSP violations, failed
    loads) since the last read; a missing /favicon.ico is not one."""
    out = []
    for e in driver.get_log("browser"):
        if e.get("level") == "SEVERE" and "favicon.ico" not in e.get("message", ""):
            out.append(e.get("message", ""))
    return out


def failure_screenshot(driver, tmp, what):
    """A screenshot of the page when a check failed (not in docs/)."""
    if driver is None:
        return
    try:
        path = os.path.join(tmp, what.replace(" ", "-") + ".png")
        driver.save_screenshot(path)
        log(f"screenshot at the failure: {path}")
    except Exception:
        pass


def check_page_served(cluster):
    """Fails clearly when /ui is missing (the DOM contract not served)."""
    status, body = http("GET", f"{cluster.gateway}/ui")
    if status != 200:
        raise Failed(f"GET {cluster.gateway}/ui answered {status} ({body[:200]!r}): the live "
                     "page is not served by this gateway (docs/live-view.md)")
    return status


def run(args, img_dir, tmp):
    results = {}
    cluster = Cluster(os.path.abspath(args.msa), tmp)
    driver = None
    try:
        cluster.start()
        log(f"cluster up: gateway {cluster.gateway}, nodes "
            + ", ".join(f"{n} pid {r['pid']}" for n, r in sorted(cluster.rows.items())))
        if not cluster.ui_line or f"{cluster.gateway}/ui" not in cluster.ui_line:
            raise Failed(f"cluster up printed no `ui:` line with {cluster.gateway}/ui: "
                         f"{cluster.lines}")
        log(f"cluster up prints: {cluster.ui_line}")
        admin = cluster.token("browser-test", "admin")
        alice = cluster.token("alice", "customer")

        # The shop spread over the three nodes, as the gateway sees it.
        def shop_spread():
            status, body = http("GET", f"{cluster.gateway}/v1/cluster", admin)
            if status != 200:
                return False
            nodes = {s["name"]: s.get("nodes", []) for s in json.loads(body)["services"]}
            return all(nodes.get(s) for s in ("orders", "inventory", "payments"))
        wait_for("the shop services in /v1/cluster", 30, shop_spread, 0.2)
        check_page_served(cluster)

        driver = start_browser(args.chromium, args.chromedriver, os.path.join(tmp, "profile"))
        log(f"{driver.capabilities.get('browserName')} "
            f"{driver.capabilities.get('browserVersion')} headless")
        driver.get(f"{cluster.gateway}/ui")
        from selenium.webdriver.common.by import By
        try:
            field = driver.find_element(By.ID, "token")
            submit = driver.find_element(By.ID, "token-submit")
        except Exception:
            raise Failed("the page has no #token input or #token-submit button "
                         "(the DOM contract, docs/live-view.md)")
        if field.get_attribute("type") != "password":
            raise Failed(f"#token is type={field.get_attribute('type')!r}, not password")
        field.send_keys(admin)
        submit.click()
        wait_for("body[data-connected=true] after the token", 10,
                 lambda: js(driver, "return document.body.dataset.connected") == "true")
        # Kept for the tab only: not in the URL, a cookie or localStorage.
        if admin in driver.current_url:
            raise Failed("the token is in the URL")
        if admin in (js(driver, "return document.cookie") or ""):
            raise Failed("the token is in a cookie")
        if js(driver, "var t = arguments[0]; return Object.keys(localStorage).some("
                      "function (k) { return localStorage.getItem(k) === t; })", admin):
            raise Failed("the token is in localStorage")
        if not js(driver, "var t = arguments[0]; return Object.keys(sessionStorage).some("
                          "function (k) { return sessionStorage.getItem(k) === t; })",
                  admin):
            raise Failed("the token is not in sessionStorage (a reload would ask again)")

        # First render: reload in the same tab (the token is in sessionStorage).
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                               {"source": THREE_NODES_OBSERVER})
        driver.refresh()
        wait_for("three nodes listed after a reload (token kept in the tab)", 10,
                 lambda: js(driver, "return window.__msaThreeNodesAt") is not None)
        three = js(driver, "return window.__msaThreeNodesAt")
        first = js(driver, "return window.msaFirstNodesAt")
        count = js(driver, "return window.msaNodeCount")
        results["first_render_ms"] = round(three)
        log(f"first render: three nodes listed {three:.0f} ms after navigation start "
            f"(page's msaFirstNodesAt {first if first is None else round(first)} ms, "
            f"msaNodeCount {count}); target {FIRST_RENDER_TARGET_MS} ms, "
            f"limit {FIRST_RENDER_LIMIT_MS} ms")
        if three > FIRST_RENDER_LIMIT_MS:
            raise Failed(f"first render {three:.0f} ms > {FIRST_RENDER_LIMIT_MS} ms")
        if count is not None and count < 3:
            raise Failed(f"window.msaNodeCount is {count} with three nodes listed")

        # Three nodes, all alive; the services on the nodes cluster up printed.
        wait_for("node1..3 listed alive", 10, lambda: node_states(driver) == {
            "node1": "alive", "node2": "alive", "node3": "alive"})
        log(f"nodes: {node_states(driver)}")
        want = cluster.expected_services()
        missing = set()

        def services_listed():
            nonlocal missing
            missing = want - services_shown(driver)
            return not missing
        try:
            wait_for("the services listed", 10, services_listed)
        except Failed:
            raise Failed(f"services not listed (service, node): {sorted(missing)}; "
                         f"shown: {sorted(services_shown(driver))}")
        log("services: " + ", ".join(f"{s}@{n}" for s, n in sorted(want)))

        failures = []
        for what, check in [
                ("trace", lambda: check_trace(driver, cluster, alice, img_dir, results)),
                ("filters", lambda: check_filters(driver, cluster, alice, results)),
                ("node down", lambda: check_node_down(driver, cluster, img_dir, results))]:
            try:
                check()
            except Failed as e:
                # The next check is independent of this one: run it too.
                log(f"FAIL ({what}): {e}")
                failures.append(f"{what}: {e}")
                failure_screenshot(driver, tmp, what)
        errors = console_errors(driver)
        if errors:
            failures.append("the page's console has errors: " + " | ".join(errors))
        else:
            log("console: no errors")
        # Last, on a page of its own (another origin, the CSP off).
        try:
            check_escaping(driver, cluster, results)
        except Failed as e:
            log(f"FAIL (escaping): {e}")
            failures.append(f"escaping: {e}")
            failure_screenshot(driver, tmp, "escaping")
        if failures:
            raise Failed("; ".join(failures))
        return results
    except Failed:
        failure_screenshot(driver, tmp, "failure")
        log("cluster up's last log lines:\n" + "".join(cluster.stderr[-20:]))
        raise
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception as e:
                log(f"note: closing the browser: {e}")
        cluster.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--msa", default=os.path.join(ROOT, "target/debug/msa"))
    ap.add_argument("--img", default=os.path.join(ROOT, "docs/img"))
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--chromedriver",
                    default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    args = ap.parse_args()

    # SIGTERM / SIGINT unwind through the `finally` that stops the cluster.
    def on_signal(signum, _frame):
        raise SystemExit(f"browser: stopped by signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="msa-browser-")
    try:
        results = run(args, args.img, tmp)
    except Failed as e:
        print(f"browser: FAILED: {e}", flush=True)
        sys.exit(1)
    finally:
        shutil.rmtree(os.path.join(tmp, "profile"), ignore_errors=True)
    log(f"ok in {time.monotonic() - t0:.1f} s: " + json.dumps(results))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
