#!/usr/bin/env python3
"""kill -9 of an instance's application -> out of HAProxy's rotation, and ->
its replacement in service and serving, for groups of several sizes, with
tide's DEFAULT settings (local provider, embedded HAProxy).

For every group size (--sizes, default 1,2,3,4,10) the bench scales the group
"web" to that size, waits until every instance is in service and in rotation,
and then --kills times: picks a random in-service instance, kills its
application with SIGKILL (the time is taken just before the kill) and measures

  (a) kill -> its slot out of rotation: the bench polls HAProxy's runtime
      socket (`show servers state web`, a new connection per query, ~1 ms
      apart) until the slot that served the victim is in maintenance or
      draining, or points elsewhere. The figure is the first poll that saw
      it out; the previous poll (still in) bounds it from below, and the
      report gives the largest such gap (the resolution).
  (b) kill -> the replacement in service: the coordinator's API
      (GET /v1/instances?group=web, every ~10 ms) lists an instance that was
      not there before the kill as in_service;
      kill -> the replacement's first request through HAProxy: the
      replacement application stamps its first served request itself
      (/stats first_served_unix_ms, wall clock, ms); the bench's wall-clock
      time of the kill is on the same clock. The application's own start-up
      (kill -> its ready_unix_ms) is printed alongside, to show the share
      that is the application's, not tide's.

A paced load runs through HAProxy the whole time: --connections keep-alive
connections (one thread each, in a child process so the measuring loop keeps
its own interpreter) at --rps requests/s in total, GET /?delay_ms=--delay-ms
so that requests are in flight on every instance when one is killed. Every
answer is classified: 200; a "not ready" 503 from an application (a request
that reached an application before it was ready: must be 0); another status
from an application (it carries X-Instance); HAProxy's own answers (503 "no
server is available", 502, 504); and socket errors. Failures are counted
per kill, from the kill until the replacement has served and 300 ms more.

In a group of 1 there is no other server while the replacement starts: every
request in that gap gets HAProxy's 503 (the failure count is the outage, rps
x gap). In larger groups failures are bounded by the requests in flight on
the killed application at the kill (HAProxy's `retry-on conn-failure
empty-response` with `option redispatch` retries most of those on another
server).

  cmake --build build --target tide-coordinator tide-agent tidectl tide-sample-app
  tests/bench/coordinator/kill_to_rotation.py --build build
"""
import argparse
import ctypes
import http.client
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

API_PORT = 17641
AGENT_PORT = 17640
LB_PORT = 18640
PREFIX = "127.0.16."

# Indexes of the load's shared counters.
OK, EARLY, APP_OTHER, LB_503, LB_OTHER, ERRORS = range(6)
KINDS = ("ok", "not_ready_503", "app_other", "haproxy_503", "haproxy_other", "socket_errors")


# ---- HAProxy runtime socket ---------------------------------------------------

class Runtime:
    """One persistent connection in prompt mode: a query costs a round trip,
    not a connect and an accept as well."""

    def __init__(self, path):
        self.path = path
        self.sock = None

    def _read_prompt(self):
        buf = b""
        while not buf.endswith(b"\n> ") and buf != b"> ":
            data = self.sock.recv(65536)
            if not data:
                raise OSError("HAProxy closed the runtime connection")
            buf += data
        return buf[:-2].decode()

    def command(self, command):
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(2)
                self.sock.connect(self.path)
                self.sock.sendall(b"prompt\n")
                self._read_prompt()
            self.sock.sendall((command + "\n").encode())
            return self._read_prompt()
        except OSError:
            if self.sock is not None:
                self.sock.close()
            self.sock = None
            raise


RUNTIME = {}


def haproxy(sock_path, command):
    if sock_path not in RUNTIME:
        RUNTIME[sock_path] = Runtime(sock_path)
    return RUNTIME[sock_path].command(command)


def slots(sock_path):
    """slot name -> (address, in rotation), from `show servers state web`."""
    out = {}
    for line in haproxy(sock_path, "show servers state web").splitlines():
        f = line.split()
        if len(f) < 7 or not f[0].isdigit():
            continue
        name, address, op_state, admin = f[3], f[4], int(f[5]), int(f[6])
        # 0x01 forced maint, 0x02 inherited maint, 0x20 resolution maint,
        # 0x08/0x10 drain (docs/haproxy.md; runtime_text.hpp).
        out[name] = (address, op_state == 2 and (admin & 0x3b) == 0)
    return out


def in_rotation(sock_path):
    """address -> slot name of the slots in rotation."""
    return {a: n for n, (a, up) in slots(sock_path).items() if up}


# ---- coordinator API ----------------------------------------------------------

def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def api(path):
    return get_json("http://127.0.0.1:%d%s" % (API_PORT, path))


def instances():
    return api("/v1/instances?group=web")["instances"]


def wait_for(cond, what, limit_s, step_s=0.05):
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            if cond():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(step_s)
    raise SystemExit("kill_to_rotation: timed out waiting for " + what)


def percentile(sorted_values, p):
    """Nearest rank."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1)]


# ---- paced load (child process) ------------------------------------------------

def load_worker(counters, stop, rate, path, errors):
    interval = 1.0 / rate
    conn = None
    next_at = time.monotonic() + random.uniform(0, interval)
    while not stop.is_set():
        kind = OK
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", LB_PORT, timeout=5)
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                if r.getheader("X-Instance") is not None:
                    kind = EARLY if (r.status == 503 and b"not ready" in body) else APP_OTHER
                else:
                    kind = LB_503 if r.status == 503 else LB_OTHER
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            kind = ERRORS
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            if conn is not None:
                conn.close()
            conn = None
        with counters.get_lock():
            counters[kind] += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()


def load_main(counters, stop, connections, rps, path, report):
    errors = [{} for _ in range(connections)]
    threads = [threading.Thread(target=load_worker, args=(counters, stop, rps / connections, path, errors[k]),
                                daemon=True)
               for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = {}
    for e in errors:
        for k, v in e.items():
            total[k] = total.get(k, 0) + v
    report.put(total)


# ---- one kill -------------------------------------------------------------------

def app_pid(state_dir, provider_id):
    """The application's pid from the launcher's pids file ("leader app agent")."""
    pids = open(os.path.join(state_dir, "instances", "instances", provider_id, "pids")).read().split()
    pid = int(pids[1])
    cmdline = open("/proc/%d/cmdline" % pid, "rb").read()
    if b"tide-sample-app" not in cmdline:
        raise SystemExit("kill_to_rotation: pid %d of %s is not the application: %r" % (pid, provider_id, cmdline))
    return pid


def settled(size, sock):
    listed = instances()
    serving = [i for i in listed if i["state"] == "in_service"]
    if len(serving) != size or len(listed) != size:
        return None
    up = in_rotation(sock)
    if sorted(up) != sorted(i["address"] for i in serving):
        return None
    return serving


def one_kill(size, sock, state_dir, counters):
    serving = []

    def ready():
        nonlocal serving
        serving = settled(size, sock)
        return serving is not None
    wait_for(ready, "%d instances in service and in rotation" % size, 60)
    # Every instance has been in service a while (the previous replacement
    # has served); start at a random phase against the agents' probes and
    # reports.
    time.sleep(random.uniform(0.3, 0.8))
    serving = settled(size, sock)
    if serving is None:
        return one_kill(size, sock, state_dir, counters)
    victim = random.choice(serving)
    known = {i["id"] for i in instances()}
    slot = in_rotation(sock)[victim["address"]]
    pid = app_pid(state_dir, victim["provider_id"])
    before = list(counters)

    t0 = time.monotonic()
    t0_wall_ms = time.time() * 1000.0
    os.kill(pid, signal.SIGKILL)

    out_ms = None
    gap_ms = 0.0
    last_poll = t0
    replacement = None
    in_service_ms = None
    next_api = t0
    deadline = t0 + 60
    while (out_ms is None or in_service_ms is None) and time.monotonic() < deadline:
        now = time.monotonic()
        # Back-to-back queries until the slot is out (a query is a round
        # trip on the persistent connection, ~0.2-1 ms); the API only then
        # (the replacement takes tens of ms at least: launch, start, probe).
        if out_ms is None:
            address, up = slots(sock).get(slot, ("", False))
            polled = time.monotonic()
            if not up or address != victim["address"]:
                out_ms = (polled - t0) * 1000.0
                gap_ms = (polled - last_poll) * 1000.0
            last_poll = polled
        elif in_service_ms is None and now >= next_api:
            next_api = now + 0.010
            try:
                for i in instances():
                    if i["id"] not in known and i["state"] == "in_service":
                        in_service_ms = (time.monotonic() - t0) * 1000.0
                        replacement = i
                        break
            except OSError:
                pass
        if out_ms is not None:
            time.sleep(0.002)
    if out_ms is None or replacement is None:
        raise SystemExit("kill_to_rotation: size %d: out %s, replacement %s within 60 s" %
                         (size, out_ms, replacement))

    stats = {}

    def served():
        nonlocal stats
        stats = get_json("http://%s:%d/stats" % (replacement["address"], replacement["port"]), 2)
        return stats["first_served_unix_ms"] != 0
    wait_for(served, "the replacement's first request", 30, 0.02)
    time.sleep(0.3)
    after = list(counters)
    delta = [a - b for a, b in zip(after, before)]
    return {"size": size, "out_ms": out_ms, "poll_gap_ms": gap_ms, "in_service_ms": in_service_ms,
            "first_request_ms": stats["first_served_unix_ms"] - t0_wall_ms,
            "app_ready_ms": stats["ready_unix_ms"] - t0_wall_ms,
            "served_before_ready": stats["served_before_ready"],
            "requests": sum(delta), "failed": sum(delta) - delta[OK],
            "by_kind": {KINDS[k]: delta[k] for k in range(len(KINDS)) if delta[k] and k != OK}}


def report(size, rounds):
    def stat(key):
        v = sorted(r[key] for r in rounds)
        return percentile(v, 50), percentile(v, 99), v[-1]
    out = {"size": size, "kills": len(rounds)}
    for key in ("out_ms", "in_service_ms", "first_request_ms", "app_ready_ms"):
        p50, p99, mx = stat(key)
        out[key] = {"p50": round(p50, 1), "p99": round(p99, 1), "max": round(mx, 1)}
    out["poll_gap_max_ms"] = round(max(r["poll_gap_ms"] for r in rounds), 1)
    out["failed"] = sum(r["failed"] for r in rounds)
    out["failed_per_kill_max"] = max(r["failed"] for r in rounds)
    out["requests"] = sum(r["requests"] for r in rounds)
    kinds = {}
    for r in rounds:
        for k, v in r["by_kind"].items():
            kinds[k] = kinds.get(k, 0) + v
    out["failed_by_kind"] = kinds
    out["served_before_ready"] = sum(r["served_before_ready"] for r in rounds)
    print("  size %2d: kill -> out of rotation p50 %.1f / p99 %.1f ms (max %.1f; poll gap <= %.1f ms) | "
          "-> replacement in service p50 %.0f / p99 %.0f ms | -> its first request p50 %.0f / p99 %.0f ms "
          "(its app ready p50 %.0f) | failed %d of %d (max %d per kill) %s | served before ready %d" %
          (size, out["out_ms"]["p50"], out["out_ms"]["p99"], out["out_ms"]["max"], out["poll_gap_max_ms"],
           out["in_service_ms"]["p50"], out["in_service_ms"]["p99"], out["first_request_ms"]["p50"],
           out["first_request_ms"]["p99"], out["app_ready_ms"]["p50"], out["failed"], out["requests"],
           out["failed_per_kill_max"], json.dumps(kinds, sort_keys=True), out["served_before_ready"]), flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--sizes", default="1,2,3,4,10", help="group sizes, comma-separated")
    parser.add_argument("--kills", type=int, default=10, help="kills per group size")
    parser.add_argument("--rps", type=float, default=400.0, help="paced load through HAProxy, requests/s in total")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections of the load")
    parser.add_argument("--delay-ms", type=int, default=10, help="each request is answered after this long")
    parser.add_argument("--ready-after-ms", type=int, default=0, help="the application's start-up delay")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which("haproxy") is None:
        raise SystemExit("kill_to_rotation: needs haproxy")
    sizes = [int(s) for s in args.sizes.split(",")]
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    work = tempfile.mkdtemp(prefix="tide-kill-rotation-")
    state_dir = os.path.join(work, "state")
    sock = os.path.join(state_dir, "haproxy.sock")
    print("kill_to_rotation: sizes %s, %d kills each, load %d req/s over %d connections (delay %d ms), app ready "
          "%d ms after start, seed %d; load average %s" %
          (sizes, args.kills, args.rps, args.connections, args.delay_ms, args.ready_after_ms, seed,
           open("/proc/loadavg").read().strip()), flush=True)
    # Everything at its default but what a bench on a shared host must pin:
    # ports, state dir, the instances' loopback /24, the backend.
    open(os.path.join(work, "c.yaml"), "w").write(f"""state_dir: {state_dir}
log_level: warn
agents:
  listen: tcp://127.0.0.1:{AGENT_PORT}
api:
  listen_port: {API_PORT}
provider:
  local:
    address_prefix: "{PREFIX}"
load_balancer:
  backends:
    - name: web
      bind_port: {LB_PORT}
""")
    coordinator = subprocess.Popen([os.path.join(bin_dir, "tide-coordinator"), "-c", os.path.join(work, "c.yaml")],
                                   stdout=open(os.path.join(work, "coordinator.log"), "wb"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
    env = dict(os.environ, TIDE_ENDPOINT="http://127.0.0.1:%d" % API_PORT)
    tidectl = os.path.join(bin_dir, "tidectl")

    def ctl(*argv):
        r = subprocess.run([tidectl, *argv], env=env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise SystemExit("tidectl %s: %s" % (" ".join(argv), r.stderr))
        return r

    counters = multiprocessing.Array(ctypes.c_long, len(KINDS))
    stop = multiprocessing.Event()
    error_report = multiprocessing.Queue()
    load = multiprocessing.Process(target=load_main, args=(counters, stop, args.connections, args.rps,
                                                           "/?delay_ms=%d" % args.delay_ms, error_report),
                                   daemon=True)
    results = []
    try:
        wait_for(lambda: urllib.request.urlopen("http://127.0.0.1:%d/healthz" % API_PORT, timeout=2).status == 200,
                 "the coordinator's API", 20)
        app = os.path.join(bin_dir, "tide-sample-app")
        ctl("lc", "create", "app", "--command", "exec %s --ready-after-ms %d" % (app, args.ready_after_ms),
            "--port", "8080")
        ctl("group", "create", "web", "--launch-config", "app", "--min", "0", "--max", str(max(sizes)),
            "--desired", str(sizes[0]), "--backend", "web")
        wait_for(lambda: settled(sizes[0], sock) is not None, "the first instances", 60)
        load.start()
        for size in sizes:
            ctl("group", "set", "web", "--desired", str(size))
            wait_for(lambda: settled(size, sock) is not None, "%d instances in service" % size, 120)
            rounds = []
            for k in range(args.kills):
                r = one_kill(size, sock, state_dir, counters)
                rounds.append(r)
                print("    size %d kill %d/%d: out %.1f ms (gap %.1f), in service %.0f ms, first request %.0f ms "
                      "(app ready %.0f ms), failed %d of %d %s" %
                      (size, k + 1, args.kills, r["out_ms"], r["poll_gap_ms"], r["in_service_ms"],
                       r["first_request_ms"], r["app_ready_ms"], r["failed"], r["requests"],
                       json.dumps(r["by_kind"], sort_keys=True)), flush=True)
            results.append(report(size, rounds))
        stop.set()
        socket_errors = error_report.get(timeout=20)
        load.join(10)
        print("load in total: %s; socket errors by kind %s" %
              (json.dumps({KINDS[k]: counters[k] for k in range(len(KINDS))}), json.dumps(socket_errors)))
        ctl("group", "set", "web", "--desired", "0")
        wait_for(lambda: len(instances()) == 0, "scale-in to 0", 60)
    finally:
        stop.set()
        if load.is_alive():
            load.join(10)
        coordinator.terminate()
        try:
            coordinator.wait(20)
        except subprocess.TimeoutExpired:
            coordinator.kill()
        if args.keep:
            print("work directory kept:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("summary (ms)")
    print("| size | kills | kill -> out of rotation p50 / p99 | -> replacement in service p50 / p99 | "
          "-> its first request p50 / p99 | failed requests (max per kill) |")
    for r in results:
        print("| %d | %d | %.1f / %.1f | %.0f / %.0f | %.0f / %.0f | %d (%d) |" %
              (r["size"], r["kills"], r["out_ms"]["p50"], r["out_ms"]["p99"], r["in_service_ms"]["p50"],
               r["in_service_ms"]["p99"], r["first_request_ms"]["p50"], r["first_request_ms"]["p99"],
               r["failed"], r["failed_per_kill_max"]))
    for r in results:
        print("RESULT " + json.dumps(r, sort_keys=True))
    print("load average after: %s" % open("/proc/loadavg").read().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
