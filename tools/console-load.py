#!/usr/bin/env python3
"""tools/bench --console: PAGES console pages open in headless Chromium (one window each, all
logged in as a county dispatcher; five windows to a browser, as a browser holds at most six
HTTP/1.1 connections to one host and each page keeps its live stream open), then alerts at distinct grids over the daemon's acknowledged
path, one every INTERVAL seconds; each page records when each task's row appeared (a
MutationObserver), and the figure is alert sent -> row shown on every page (p50/p95/p99/max).

    console-load.py --console http://127.0.0.1:18088 --user bench --password-file F --ack tcp://127.0.0.1:7702 \
        --database "host=... dbname=..." --pages 50 --alerts 30
"""
import argparse, datetime, http.client, json, os, subprocess, sys, threading, time, urllib.parse, zmq

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs", "examples"))
from console_screenshot import Driver  # noqa: E402

CST = datetime.timezone(datetime.timedelta(hours=8))
OBSERVE = """
window.__shown = {};
new MutationObserver((list) => {
  const t = Date.now();
  for (const m of list) for (const n of m.addedNodes) if (n.dataset && n.dataset.taskId && !(n.dataset.taskId in window.__shown)) window.__shown[n.dataset.taskId] = t;
}).observe(document.getElementById('rows'), {childList: true});
return true;
"""


def psql(database, sql):
    return subprocess.run(["psql", database, "-qAtc", sql], check=True, capture_output=True, text=True).stdout.split()


def stream_listener(console, user, password, arrivals, ready):
    """A bare Server-Sent Events client beside the browsers: when the console delivered each task
    message (the part of alert -> shown that is not the browser's)."""
    u = urllib.parse.urlparse(console)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    c.request("POST", "/login", urllib.parse.urlencode({"user": user, "password": password}),
              {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    cookie = "; ".join(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie")
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    c.request("GET", "/api/events", headers={"Cookie": cookie})
    r = c.getresponse()
    ready.set()
    for line in r:
        if line.startswith(b"data: "):
            task = json.loads(line[6:]).get("task_id")
            if task and task not in arrivals:
                arrivals[task] = time.time() * 1000


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--ack", required=True)
    ap.add_argument("--database", required=True)
    ap.add_argument("--pages", type=int, default=50)
    ap.add_argument("--alerts", type=int, default=30)
    ap.add_argument("--interval", type=float, default=1.0)
    a = ap.parse_args()
    password = open(a.password_file, encoding="utf-8").read().strip()
    per_browser = 5
    drivers, pages = [], []  # pages: (driver, window handle)
    try:
        t0 = time.time()
        while len(pages) < a.pages:
            d = Driver("/usr/bin/chromedriver")
            drivers.append(d)
            d.s("/url", {"url": a.console + "/console"})
            d.wait("return !!document.getElementById('user')", "the login form")
            d.s(f"/element/{d.element('#user')}/value", {"text": a.user})
            d.s(f"/element/{d.element('#password')}/value", {"text": password})
            d.s(f"/element/{d.element('#login')}/click", {})
            handles = [d.s("/window", method="GET")]
            while len(handles) < per_browser and len(pages) + len(handles) < a.pages:
                handles.append(d.s("/window/new", {"type": "window"})["handle"])
            for h in handles:
                d.s("/window", {"handle": h})
                if h != handles[0]:
                    d.s("/url", {"url": a.console + "/console"})
                d.wait("return document.getElementById('live').classList.contains('on')", "a live page", timeout=60)
                d.run(OBSERVE)
                pages.append((d, h))
        handles = pages
        print(f"console_pages: {len(pages)} open and live in {len(drivers)} browsers in {time.time() - t0:.1f} s")
        arrivals, ready = {}, threading.Event()
        threading.Thread(target=stream_listener, args=(a.console, a.user, password, arrivals, ready), daemon=True).start()
        ready.wait(10)
        grids = psql(a.database, f"SELECT ST_X(p) || ',' || ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM liandong.grids ORDER BY md5(grid_code) LIMIT {a.alerts}) g")
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(a.ack)
        run = "cl%d" % int(time.time())
        sent = {}
        for i, g in enumerate(grids):
            lon, lat = map(float, g.split(","))
            aid = f"{run}:{i:04d}"
            body = {"schema": "liandong.alert.v1", "alert_id": aid, "gateway_id": "bench-console", "device_id": "62092200001320000004",
                    "alarm_method": 5, "alarm_type": 6, "priority": 2, "observed_at": datetime.datetime.now(CST).isoformat(timespec="milliseconds"),
                    "lon": lon, "lat": lat, "crs": "wgs84"}
            sent[aid] = time.time() * 1000
            sock.send_multipart([b"alert", json.dumps(body).encode()])
            time.sleep(a.interval)
        time.sleep(3)
        pairs = psql(a.database, f"SELECT e.source_id || '=' || t.id FROM liandong.events e JOIN liandong.tasks t ON t.incident_id = e.incident_id WHERE e.source_id LIKE '{run}:%'")
        task_of = dict(p.split("=", 1) for p in pairs)
        latencies, missing = [], 0
        for d, h in pages:
            d.s("/window", {"handle": h})
            shown = d.run("return window.__shown")
            for aid, task in task_of.items():
                if task in shown:
                    latencies.append(shown[task] - sent[aid])
                else:
                    missing += 1
        print(f"console_alerts: {len(sent)} sent, {len(task_of)} tasks; {len(latencies)} of {len(task_of) * len(handles)} rows shown ({missing} missing)")
        if latencies:
            print("console_alert_to_shown_ms: p50 %.0f p95 %.0f p99 %.0f max %.0f (%d pages)" % (
                pct(latencies, 50), pct(latencies, 95), pct(latencies, 99), max(latencies), len(handles)))
        delivered = [arrivals[t] - sent[aid] for aid, t in task_of.items() if t in arrivals]
        if delivered:
            print("console_alert_to_stream_ms: p50 %.0f p95 %.0f p99 %.0f max %.0f (a bare SSE client beside the browsers; %d of %d)" % (
                pct(delivered, 50), pct(delivered, 95), pct(delivered, 99), max(delivered), len(delivered), len(task_of)))
        return 0 if missing == 0 and latencies else 1
    finally:
        for d in drivers:
            try:
                d.close()
            except Exception:
                d.proc.kill()


if __name__ == "__main__":
    sys.exit(main())
