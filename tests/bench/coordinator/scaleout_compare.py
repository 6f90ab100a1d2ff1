#!/usr/bin/env python3
"""The same scale-out under load, three ways, side by side in one run.

Each variant: one instance of tide-sample-app serving, `wrk` through HAProxy
for --seconds, and --scale-at seconds in, three more instances are launched.
The sample application listens at once but answers 503 until
--ready-after-ms has passed (an application that opens its port before it
has loaded what it needs). Variants differ only in how an instance enters
HAProxy:

  (a) tide       tide-coordinator (local provider, embedded HAProxy, a
                 tide-agent per instance with its default HTTP probe: period
                 1 s), desired 1 -> 4 with tidectl. The instance enters
                 rotation when its agent reports it ready.
  (b) at launch  HAProxy with the configuration tide generated in (a),
                 unchanged; the bench registers each instance in the same
                 instant it starts the process (`set server addr` + `state
                 ready` on the runtime socket), no checks.
  (c) checks     the same, plus HAProxy's own active health checks as
                 render_config() writes them for health_check = true:
                 `option httpchk GET /ready`, `check inter 2000ms rise 2 fall
                 3`; the bench registers at launch and runs `enable health`.

Per variant: requests, failed requests (non-2xx + socket errors, from wrk),
the 503s the new instances answered (requests that reached an application
before it was ready), and per new instance the time from its application
becoming ready to the first request it served (both stamped by the
application itself, /stats: ready_unix_ms, first_served_unix_ms).

  tests/bench/coordinator/scaleout_compare.py --build build
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

API_PORT = 17621
AGENT_PORT = 17620
LB_PORT = 18620


def haproxy_cmd(sock_path, command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(sock_path)
    s.sendall((command + "\n").encode())
    out = b""
    while True:
        data = s.recv(65536)
        if not data:
            break
        out += data
    s.close()
    return out.decode()


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def wait_for(cond, what, limit_s):
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("scaleout_compare: timed out waiting for " + what)


def parse_wrk(text):
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    socket_errors = 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        socket_errors = sum(int(x) for x in m.groups())
    return requests, non2xx, socket_errors


def start_wrk(args, url):
    return subprocess.Popen(["wrk", "-t%d" % args.wrk_threads, "-c%d" % args.wrk_connections,
                             "-d%ds" % args.seconds, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def summarize(name, wrk_out, stats, launched_at):
    requests, non2xx, socket_errors = parse_wrk(wrk_out)
    delays = []
    early = 0
    for s in stats:
        early += s["served_before_ready"]
        if s["first_served_unix_ms"] and s["ready_unix_ms"]:
            delays.append(s["first_served_unix_ms"] - s["ready_unix_ms"])
        else:
            delays.append(None)
    shown = ", ".join("never" if d is None else "%d ms" % d for d in delays)
    print("  %-11s requests %7d  failed %5d (non-2xx %d, socket errors %d)  503s from new instances %d  "
          "ready -> first request served: %s" % (name, requests, non2xx + socket_errors, non2xx, socket_errors,
                                                 early, shown), flush=True)
    served = [d for d in delays if d is not None]
    return {"variant": name, "requests": requests, "failed": non2xx + socket_errors, "non2xx": non2xx,
            "socket_errors": socket_errors, "early_503": early, "ready_to_first_ms": delays,
            "max_ready_to_first_ms": max(served) if served else None}


def run_tide(args, bin_dir, work):
    d = os.path.join(work, "a")
    os.makedirs(d)
    open(os.path.join(d, "c.yaml"), "w").write(f"""state_dir: {d}/state
tick_interval_ms: 100
log_level: warn
agents:
  listen: tcp://127.0.0.1:{AGENT_PORT}
api:
  listen_port: {API_PORT}
provider:
  local:
    address_prefix: "127.0.12."
load_balancer:
  backends:
    - name: web
      bind_port: {LB_PORT}
      slots: 16
""")
    coordinator = subprocess.Popen([os.path.join(bin_dir, "tide-coordinator"), "-c", os.path.join(d, "c.yaml")],
                                   stdout=open(os.path.join(d, "coordinator.log"), "wb"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
    env = dict(os.environ, TIDE_ENDPOINT="http://127.0.0.1:%d" % API_PORT)
    tidectl = os.path.join(bin_dir, "tidectl")

    def ctl(*argv, check=True):
        r = subprocess.run([tidectl, *argv], env=env, capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise SystemExit("tidectl %s: %s" % (" ".join(argv), r.stderr))
        return r

    def group():
        return json.loads(ctl("-o", "json", "group", "show", "web").stdout)

    try:
        wait_for(lambda: ctl("status", check=False).returncode == 0, "the coordinator's API", 20)
        app = os.path.join(bin_dir, "tide-sample-app")
        ctl("lc", "create", "app", "--command", "%s --ready-after-ms %d" % (app, args.ready_after_ms),
            "--port", "8080")
        ctl("group", "create", "web", "--launch-config", "app", "--min", "0", "--max", "4", "--desired", "1",
            "--backend", "web", "--drain-timeout", "2")
        wait_for(lambda: group()["in_service"] == 1, "the first instance in service", 60)
        first = json.loads(ctl("-o", "json", "instance", "list", "--group", "web").stdout)["instances"][0]
        wrk = start_wrk(args, "http://127.0.0.1:%d/" % LB_PORT)
        time.sleep(args.scale_at)
        launched_at = time.time()
        ctl("group", "set", "web", "--desired", "4")
        out, _ = wrk.communicate(timeout=args.seconds + 30)
        instances = json.loads(ctl("-o", "json", "instance", "list", "--group", "web").stdout)["instances"]
        stats = [get_json("http://%s:%d/stats" % (i["address"], i["port"])) for i in instances
                 if i["address"] != first["address"]]
        result = summarize("(a) tide", out, stats, launched_at)
        hacfg = open(os.path.join(d, "state", "haproxy.cfg")).read()
        ctl("group", "set", "web", "--desired", "0", check=False)
        wait_for(lambda: group()["actual"] == 0, "scale-in to 0", 30)
        return result, hacfg
    finally:
        coordinator.terminate()
        try:
            coordinator.wait(15)
        except subprocess.TimeoutExpired:
            coordinator.kill()


def run_at_launch(args, bin_dir, work, hacfg, checks):
    name = "(c) checks" if checks else "(b) at launch"
    d = os.path.join(work, "c" if checks else "b")
    os.makedirs(d)
    sock = os.path.join(d, "haproxy.sock")
    cfg = re.sub(r"stats socket \S+", "stats socket " + sock, hacfg)
    cfg = re.sub(r"pidfile \S+\n", "", cfg)
    if checks:
        # Exactly what render_config() writes for health_check = true.
        cfg = re.sub(r"(\n  # Slots are pre-declared[^\n]*\n  server-template [^\n]* disabled)",
                     lambda m: "\n  option httpchk GET /ready" + m.group(1) +
                     " check inter 2000ms rise 2 fall 3", cfg)
        assert "check inter 2000ms" in cfg, "unexpected haproxy.cfg layout"
    path = os.path.join(d, "haproxy.cfg")
    open(path, "w").write(cfg)
    slot = re.search(r"server-template (\S+) 1-", cfg).group(1)
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", path], stdout=open(os.path.join(d, "haproxy.log"), "wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    apps = []
    app = os.path.join(bin_dir, "tide-sample-app")

    def launch(n, ready_after_ms):
        address = "127.0.13.%d" % n
        apps.append(subprocess.Popen([app, "--address", address, "--port", "8080", "--ready-after-ms",
                                      str(ready_after_ms), "--name", "i-%d" % n],
                                     stdout=open(os.path.join(d, "app%d.log" % n), "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True))
        # Registration at launch: in the same instant the process starts.
        haproxy_cmd(sock, "set server web/%s%d addr %s port 8080" % (slot, n, address))
        haproxy_cmd(sock, "set server web/%s%d state ready" % (slot, n))
        if checks:
            haproxy_cmd(sock, "enable health web/%s%d" % (slot, n))
        return address

    try:
        wait_for(lambda: os.path.exists(sock) and "web" in haproxy_cmd(sock, "show servers state web"),
                 "haproxy", 10)
        launch(1, 0)

        def first_serves():
            with urllib.request.urlopen("http://127.0.0.1:%d/" % LB_PORT, timeout=2) as r:
                return r.status == 200
        wait_for(first_serves, "the first instance serving through haproxy", 30)
        wrk = start_wrk(args, "http://127.0.0.1:%d/" % LB_PORT)
        time.sleep(args.scale_at)
        launched_at = time.time()
        new = [launch(n, args.ready_after_ms) for n in (2, 3, 4)]
        out, _ = wrk.communicate(timeout=args.seconds + 30)
        stats = [get_json("http://%s:8080/stats" % a) for a in new]
        return summarize(name, out, stats, launched_at)
    finally:
        for p in apps:
            p.send_signal(signal.SIGTERM)
        haproxy.terminate()
        for p in apps + [haproxy]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--seconds", type=int, default=15, help="wrk duration per variant")
    parser.add_argument("--scale-at", type=float, default=3.0, help="seconds into the load")
    parser.add_argument("--ready-after-ms", type=int, default=3000, help="start-up delay of a new instance")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--wrk-connections", type=int, default=8)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("haproxy") is None:
        raise SystemExit("scaleout_compare: needs wrk and haproxy")
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    work = tempfile.mkdtemp(prefix="tide-scaleout-")
    print("scaleout_compare: 1 -> 4 instances %.1f s into %d s of wrk -t%d -c%d; new instances ready %d ms "
          "after start; load average %s" % (args.scale_at, args.seconds, args.wrk_threads, args.wrk_connections,
                                            args.ready_after_ms, open("/proc/loadavg").read().strip()), flush=True)
    results = []
    try:
        result, hacfg = run_tide(args, bin_dir, work)
        results.append(result)
        results.append(run_at_launch(args, bin_dir, work, hacfg, checks=False))
        results.append(run_at_launch(args, bin_dir, work, hacfg, checks=True))
    finally:
        if args.keep:
            print("work directory kept:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    for r in results:
        print("RESULT " + json.dumps(r))
    print("load average after: %s" % open("/proc/loadavg").read().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
