#!/usr/bin/env python3
"""Opens liandong-console in headless Chromium (through chromedriver's W3C WebDriver protocol, standard
library only), logs in, waits for the live queue, selects the most urgent task and saves a screenshot.

    console_screenshot.py --url http://127.0.0.1:8088 --user duty --password-file FILE --out console.png

Prints what the page shows: the strip's figures and the first rows of the queue.
"""
import argparse, base64, json, os, socket, subprocess, sys, time, urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self, chromedriver):
        self.port = free_port()
        self.proc = subprocess.Popen([chromedriver, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                if self.call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("chromedriver did not start")
            time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,900",
                "--no-first-run", "--disable-background-networking", "--lang=zh-CN"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                                 "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["value"]

    def s(self, path, body=None, method="POST"):
        return self.call(method, f"/session/{self.session}{path}", body)

    def run(self, script, *args):
        return self.s("/execute/sync", {"script": script, "args": list(args)})

    def element(self, css):
        return list(self.s("/element", {"using": "css selector", "value": css}).values())[0]

    def wait(self, script, what, timeout=15):
        deadline = time.time() + timeout
        while not self.run(script):
            if time.time() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.1)

    def close(self):
        try:
            self.s("", method="DELETE")
        finally:
            self.proc.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8088")
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True, help="a file holding the password (kept off the command line)")
    p.add_argument("--out", default="console.png")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    a = p.parse_args()
    password = open(a.password_file, encoding="utf-8").read().strip()
    d = Driver(a.chromedriver)
    try:
        d.s("/url", {"url": a.url + "/console"})
        d.wait("return !!document.getElementById('user')", "the login form")
        d.s(f"/element/{d.element('#user')}/value", {"text": a.user})
        d.s(f"/element/{d.element('#password')}/value", {"text": password})
        d.s(f"/element/{d.element('#login')}/click", {})
        d.wait("return location.pathname === '/console' && document.getElementById('live').classList.contains('on')", "the live console")
        d.wait("return document.querySelectorAll('tr[data-task-id]').length > 0 || !document.getElementById('empty').hidden", "the queue")
        if d.run("return document.querySelectorAll('tr[data-task-id]').length") > 0:
            d.s(f"/element/{d.element('tr[data-task-id]')}/click", {})
            d.wait("return document.getElementById('detail-history').children.length > 0", "the task's detail")
        time.sleep(1.2)  # one tick of the countdowns
        strip = d.run("return Array.from(document.querySelectorAll('.figures div')).map(x => x.querySelector('span').textContent + ' ' + x.querySelector('b').textContent)")
        rows = d.run("return Array.from(document.querySelectorAll('tr[data-task-id]')).slice(0, 5).map(r => Array.from(r.children).map(c => c.textContent).join(' | ') + (r.classList.contains('late') ? '  [red]' : r.classList.contains('soon') ? '  [yellow]' : ''))")
        total = d.run("return document.querySelectorAll('tr[data-task-id]').length")
        with open(a.out, "wb") as f:
            f.write(base64.b64decode(d.s("/screenshot", method="GET")))
        print("strip: " + ", ".join(strip))
        print(f"queue: {total} open tasks; the first by deadline:")
        for r in rows:
            print("  " + r)
        print(f"screenshot: {a.out}")
    finally:
        d.close()


if __name__ == "__main__":
    sys.exit(main())
