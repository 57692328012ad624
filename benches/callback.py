#!/usr/bin/env python3
"""A callback's call to its run going on: N async runs each make a callback, send its URL to a
local HTTP server here, and wait; each URL is called, and the time from the call to the run's next
effect (a POST back here, after its `wait`) is measured. Prints p50, p99 and max.

usage: benches/callback.py WF_BINARY [--runs 300]"""
import http.client, http.server, json, os, subprocess, sys, tempfile, threading, time

wf, runs = sys.argv[1], 300
if "--runs" in sys.argv:
    runs = int(sys.argv[sys.argv.index("--runs") + 1])

asked, done = {}, {}
lock = threading.Condition()


class Here(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0")) or 0) or b"{}")
        now = time.perf_counter()
        with lock:
            if self.path == "/ask":
                asked[body["id"]] = body["url"]
            else:
                done[body["id"]] = now
            lock.notify_all()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


here = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Here)
threading.Thread(target=here.serve_forever, daemon=True).start()
port = here.server_address[1]
tmp = tempfile.mkdtemp()
with open(os.path.join(tmp, "approve.wf"), "w") as f:
    f.write(f"""workflow approve {{
  trigger webhook {{ path "/approve" mode async }}
  let cb = callback timeout 1h
  http POST "http://127.0.0.1:{port}/ask" {{ json {{ id: cb.id, url: cb.url }} }}
  let reply = wait cb
  http POST "http://127.0.0.1:{port}/done" {{ json {{ id: cb.id }} }}
}}
""")
server = subprocess.Popen([wf, "serve", tmp, "--listen", "127.0.0.1:0", "--store", os.path.join(tmp, "state.db")],
                          stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "log"), "w"), text=True)
addr = server.stdout.readline().strip().removeprefix("listening on http://")
host, wport = addr.rsplit(":", 1)
try:
    c = http.client.HTTPConnection(host, int(wport))
    for _ in range(runs):
        c.request("POST", "/approve", body=b"")
        c.getresponse().read()
    with lock:
        lock.wait_for(lambda: len(asked) >= runs, timeout=60)
    time.sleep(1.5)  # every run parked on its wait
    took = []
    for cid, url in list(asked.items()):
        path = url.split(addr, 1)[1]
        start = time.perf_counter()
        c.request("POST", path, body=b'{"ok":true}', headers={"content-type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        with lock:
            lock.wait_for(lambda: cid in done, timeout=10)
        took.append((done[cid] - start) * 1000)
    took.sort()
    pick = lambda q: took[min(len(took) - 1, int(q * len(took)))]
    print(f"callback call to the run going on, {len(took)} runs, SQLite store: "
          f"p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {took[-1]:.1f} ms")
finally:
    server.terminate()
    server.wait()
