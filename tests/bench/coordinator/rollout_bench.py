#!/usr/bin/env python3
"""Readiness-gated rollouts under continuous load: how long a rollout takes
against what its arithmetic allows, and what clients see, with the real
binaries (tide-coordinator, local provider, embedded HAProxy, a tide-agent
beside each tide-sample-app) and `wrk` through HAProxy's frontend.

Scenarios (each with its own coordinator, state dir and group "web"):

  6      6 instances v1 -> v2, {"batch": "25%", "max_surge": 1}, everything
         else at its default (min_healthy 90 %, bake 0).
  20     the same with 20 instances (the group's max is desired + 1).
  canary 6 instances; v2 answers 500 to 20 of every 100 requests
         (--error-percent 20); {"batch": "25%", "max_surge": 1, "canary":
         {"count": 1, "bake_ms": 60000, "min_requests": 50}}: the rollout
         must be judged on HAProxy's figures and rolled back.

The coordinator runs with its defaults but for ports, state dir and the
instances' loopback /24; like the system tests (fleet_fixture.hpp) the agent
gets a notify socket (TIDE_NOTIFY_SOCKET=agent-state/notify.sock) and the
application sends it its load metrics (NOTIFY_SOCKET=agent-state/notify.sock,
--metrics-interval-ms). Readiness comes from the agent's default HTTP probe
of /ready (every 50 ms until first ready).

Per scenario, once the group is in service and in rotation:

  start-up   the time one new instance takes from launch to HAProxy's
             rotation: desired N -> N + 1 by PATCH, the time to the moment
             the bench sees N + 1 slots in rotation (HAProxy's runtime socket,
             polled every 20 ms), and back to N; --calibrations times, under
             wrk load, median. It is the application's --ready-after-ms plus
             tide's part (launch, agent, first probe, report, register).
  rollout    a new version of the launch configuration (POST
             /v1/launch-configurations with the same id), wrk started 2 s
             before POST /v1/groups/web/rollouts and stopped (SIGINT) 1 s
             after the rollout reached its final state; the wall time from
             just before the POST to the first poll (every 50 ms) that saw
             the final state, and the coordinator's own finished_ms -
             created_ms.
  bounds     (a) start-up x number of batches (batches = ceil(N / batch));
             (b) start-up x start-up waves: with max_surge S and a floor F
             = ceil(90 % of N), at most S + (N - F) new instances can be
             starting at once (the floor allows N - F old ones out of
             rotation, the surge S above desired), so a batch of B old
             instances takes ceil(B / (S + N - F)) waves: 6 instances 3 x 2
             = 6 waves, 20 instances 4 x 2 = 8 waves.
  clients    requests, non-2xx and socket errors from wrk; the fewest slots
             in rotation during the rollout (HAProxy, every 20 ms); requests
             any application answered before it was ready (/stats
             served_before_ready of the live instances, must be 0).
  canary     POST -> "rolling_back" (judged) and -> "rolled_back"; what the
             canary served and how many of those were 500s, from HAProxy's
             counters of the canary's slot over the run (`show stat`
             hrsp_2xx/hrsp_5xx, after - before: nobody else used that slot,
             no old instance is replaced); beside it what the canary
             application counted itself (/stats "requests" answered 200 and
             "errors" answered 500, its last answer, read every ~50 ms until
             it stops answering: it is drained and stopped right after the
             judgement), the rollout's reason (HAProxy's figures at the
             judgement) and the non-2xx wrk saw.

  cmake --build build --target tide-coordinator tide-agent tide-sample-app
  tests/bench/coordinator/rollout_bench.py --build build

The build directory may also be given as $TIDE_BUILD_DIR.
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

API_PORT = 17651
AGENT_PORT = 17650
LB_PORT = 18650
PREFIX = "127.0.17."
FINAL = ("succeeded", "failed", "rolled_back", "cancelled")


class Failed(Exception):
    pass


# ---- HAProxy runtime socket ---------------------------------------------------

class Runtime:
    """One persistent connection in prompt mode (a query is one round trip)."""

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
            self.close()
            raise

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def in_rotation(self):
        """Address -> slot name of the slots in rotation (operational state
        2, no maint or drain flag: 0x01/0x02/0x20 maint, 0x08/0x10 drain)."""
        up = {}
        for line in self.command("show servers state web").splitlines():
            f = line.split()
            if len(f) < 7 or not f[0].isdigit():
                continue
            if int(f[5]) == 2 and (int(f[6]) & 0x3b) == 0:
                up[f[4]] = f[3]
        return up


LB_FIELDS = ("hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "eresp", "econ", "wretr", "wredis")


def lb_counters(sock_path):
    """HAProxy's own counters (`show stat`), cumulative since it started:
    the frontend's answers by class, and summed over backend web's servers
    their 5xx answers, response and connection errors, retries and
    redispatches."""
    rt = Runtime(sock_path)
    try:
        lines = rt.command("show stat").splitlines()
    finally:
        rt.close()
    header = lines[0].lstrip("# ").split(",")
    out = {"frontend": dict.fromkeys(LB_FIELDS, 0), "servers": dict.fromkeys(LB_FIELDS, 0), "by_slot": {}}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("svname") == "FRONTEND" and row.get("pxname") == "fe_web":
            side = "frontend"
        elif row.get("pxname") == "web" and row.get("svname") not in ("BACKEND", "FRONTEND", None):
            side = "servers"
        else:
            continue
        for f in LB_FIELDS:
            out[side][f] += int(row.get(f) or 0)
        if side == "servers":
            out["by_slot"][row["svname"]] = {f: int(row.get(f) or 0) for f in LB_FIELDS}
    return out


def lb_delta(after, before):
    return {side: {f: after[side][f] - before[side][f] for f in LB_FIELDS if after[side][f] != before[side][f]}
            for side in ("frontend", "servers")}


def slot_delta(after, before, slot):
    return {f: after["by_slot"][slot][f] - before["by_slot"][slot][f] for f in LB_FIELDS}


class Monitor(threading.Thread):
    """Polls HAProxy every 20 ms: slots in rotation now, the fewest and the
    most while recording, and when each address last entered rotation."""

    def __init__(self, sock_path):
        super().__init__(daemon=True)
        self.runtime = Runtime(sock_path)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.current = set()
        self.entered = {}  # address -> wall-clock seconds it last entered rotation
        self.slot = {}  # address -> the slot it was last in rotation in
        self.recording = False
        self.fewest = None
        self.most = None
        self.polls = 0

    def run(self):
        while not self.stop.is_set():
            try:
                up = self.runtime.in_rotation()
            except OSError:
                up = None
            now = time.time()
            if up is not None:
                with self.lock:
                    self.polls += 1
                    for a in set(up) - self.current:
                        self.entered[a] = now
                    self.slot.update(up)
                    self.current = set(up)
                    if self.recording:
                        self.fewest = len(up) if self.fewest is None else min(self.fewest, len(up))
                        self.most = len(up) if self.most is None else max(self.most, len(up))
            self.stop.wait(0.02)
        self.runtime.close()

    def record(self, on):
        with self.lock:
            self.recording = on
            if on:
                self.fewest = self.most = None

    def slot_of(self, address):
        with self.lock:
            return self.slot.get(address)

    def snapshot(self):
        with self.lock:
            return set(self.current), dict(self.entered), self.polls


# ---- coordinator API ----------------------------------------------------------

def http(method, url, body=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text.decode(errors="replace")


def api(method, path, body=None, expect=None):
    status, out = http(method, "http://127.0.0.1:%d%s" % (API_PORT, path), body)
    if expect is not None and status != expect:
        raise Failed("%s %s -> %d %s" % (method, path, status, out))
    return out


def instances():
    return api("GET", "/v1/instances?group=web")["instances"]


def wait_for(cond, what, limit_s, step_s=0.05):
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            if cond():
                return
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(step_s)
    raise Failed("timed out after %.0f s waiting for %s" % (limit_s, what))


def settled(n, monitor, version=None):
    """n instances listed, all in service (of `version`), and exactly their
    addresses in rotation."""
    listed = instances()
    serving = [i for i in listed if i["state"] == "in_service"]
    if len(listed) != n or len(serving) != n:
        return False
    if version is not None and any(i.get("launch_configuration_version") != version for i in serving):
        return False
    up, _, _ = monitor.snapshot()
    return up == {i["address"] for i in serving}


def app_stats(instance, timeout=1):
    with urllib.request.urlopen("http://%s:%d/stats" % (instance["address"], instance["port"]),
                                timeout=timeout) as r:
        return json.loads(r.read())


# ---- wrk --------------------------------------------------------------------------

def start_wrk(args, log):
    # -d bounds it; the bench stops it earlier with SIGINT (wrk then prints
    # its summary as at the end of -d).
    return subprocess.Popen(["wrk", "-t%d" % args.wrk_threads, "-c%d" % args.wrk_connections,
                             "-d%ds" % args.scenario_limit_s, "http://127.0.0.1:%d/" % LB_PORT],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_wrk(wrk, log):
    if wrk.poll() is None:
        wrk.send_signal(signal.SIGINT)
    try:
        wrk.wait(15)
    except subprocess.TimeoutExpired:
        wrk.kill()
        wrk.wait(5)
        raise Failed("wrk did not stop on SIGINT")
    text = open(log).read()
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    if m is None:
        raise Failed("no wrk summary:\n" + text)
    non2xx = int(m2.group(1)) if (m2 := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    socket_errors = 0
    if m3 := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        socket_errors = sum(int(x) for x in m3.groups())
    return {"requests": int(m.group(1)), "non2xx": non2xx, "socket_errors": socket_errors}


# ---- one scenario ----------------------------------------------------------------

class Scenario:
    def __init__(self, args, name, size, work):
        self.args = args
        self.name = name
        self.size = size
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.state_dir = os.path.join(self.dir, "state")
        self.tag = "tide-rollout-bench-%d-%s" % (os.getpid(), name)
        self.bin = os.path.abspath(os.path.join(args.build, "bin"))
        self.coordinator = None
        self.wrk = []
        self.monitor = None

    # Everything the scenario starts is stopped here, whatever happened.
    def cleanup(self):
        for w in self.wrk:
            if w.poll() is None:
                w.kill()
                w.wait(5)
        if self.coordinator is not None and self.coordinator.poll() is None:
            try:
                api("PATCH", "/v1/groups/web", {"desired": 0, "min": 0})
                wait_for(lambda: api("GET", "/v1/groups/web")["actual"] == 0, "scale-in to 0", 40, 0.2)
            except (Failed, OSError, ValueError, KeyError, TypeError) as e:
                print("  cleanup: %s" % e, flush=True)
            self.coordinator.terminate()
            try:
                self.coordinator.wait(20)
            except subprocess.TimeoutExpired:
                self.coordinator.kill()
                self.coordinator.wait(5)
        if self.monitor is not None:
            self.monitor.stop.set()
            self.monitor.join(5)
        # Whatever is left of this scenario (instances, agents, HAProxy) names
        # its directory or its tag on its command line.
        for pid in self.leftovers():
            print("  cleanup: killing leftover pid %d" % pid, flush=True)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def leftovers(self):
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = open("/proc/%s/cmdline" % entry, "rb").read().decode(errors="replace")
            except OSError:
                continue
            if self.dir in cmdline or self.tag in cmdline:
                pids.append(int(entry))
        return pids

    def start_coordinator(self):
        for port in (API_PORT, AGENT_PORT, LB_PORT):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    raise Failed("port %d is in use (another run?)" % port)
        wrapper = os.path.join(self.dir, "tide-agent-with-notify")
        # As fleet_fixture.hpp: the local provider starts the agent without a
        # notify socket, so its agent is this wrapper; the path is relative to
        # the instance's directory (unix socket addresses are short).
        open(wrapper, "w").write("#!/bin/sh\nTIDE_NOTIFY_SOCKET=agent-state/notify.sock exec %s \"$@\"\n" %
                                 os.path.join(self.bin, "tide-agent"))
        os.chmod(wrapper, 0o755)
        config = os.path.join(self.dir, "coordinator.yaml")
        open(config, "w").write(f"""state_dir: {self.state_dir}
log_level: info
agents:
  listen: tcp://127.0.0.1:{AGENT_PORT}
api:
  listen_port: {API_PORT}
provider:
  local:
    agent_path: {wrapper}
    address_prefix: "{PREFIX}"
load_balancer:
  backends:
    - name: web
      bind_port: {LB_PORT}
""")
        self.coordinator = subprocess.Popen([os.path.join(self.bin, "tide-coordinator"), "-c", config],
                                            stdout=open(os.path.join(self.dir, "coordinator.log"), "wb"),
                                            stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: http("GET", "http://127.0.0.1:%d/healthz" % API_PORT, timeout=2)[0] == 200,
                 "the coordinator's API", 20, 0.1)
        if self.coordinator.poll() is not None:
            raise Failed("the coordinator exited (is port %d in use?)" % API_PORT)
        self.monitor = Monitor(os.path.join(self.state_dir, "haproxy.sock"))
        self.monitor.start()

    def put_version(self, extra_flags=""):
        command = ("NOTIFY_SOCKET=agent-state/notify.sock exec %s --metrics-interval-ms 1000 --ready-after-ms %d "
                   "--name %s %s" % (os.path.join(self.bin, "tide-sample-app"), self.args.ready_after_ms,
                                     self.tag, extra_flags)).strip()
        out = api("POST", "/v1/launch-configurations", {"id": "app", "command": command, "port": 8080}, 201)
        return out.get("version") if isinstance(out, dict) else None

    def calibrate(self):
        """Launch -> in rotation of one new instance, desired N -> N + 1."""
        n = self.size
        samples = []
        for _ in range(self.args.calibrations):
            before, _, _ = self.monitor.snapshot()
            t0 = time.monotonic()
            api("PATCH", "/v1/groups/web", {"desired": n + 1}, 200)
            wait_for(lambda: len(self.monitor.snapshot()[0] - before) >= 1, "the extra instance in rotation", 60,
                     0.005)
            samples.append((time.monotonic() - t0) * 1000.0)
            api("PATCH", "/v1/groups/web", {"desired": n}, 200)
            wait_for(lambda: settled(n, self.monitor), "back to %d instances" % n, 90, 0.1)
        return samples

    def run(self):
        args = self.args
        n = self.size
        self.start_coordinator()
        v1 = self.put_version()
        api("POST", "/v1/groups", {"name": "web", "launch_configuration": "app", "min": 0, "max": n + 1,
                                   "desired": n, "load_balancer": {"backend": "web"}}, 201)
        wait_for(lambda: settled(n, self.monitor), "%d instances in service and in rotation" % n, 120, 0.1)

        wrk_log = os.path.join(self.dir, "wrk-calibration.log")
        self.wrk.append(start_wrk(args, wrk_log))
        time.sleep(1.0)
        startup = self.calibrate()
        calib_load = stop_wrk(self.wrk[-1], wrk_log)
        startup_ms = statistics.median(startup)
        print("  %s: start-up (launch -> in rotation, desired %d -> %d under wrk): %s ms, median %.0f; "
              "that wrk: %d requests, %d non-2xx, %d socket errors" %
              (self.name, n, n + 1, ", ".join("%.0f" % s for s in startup), startup_ms, calib_load["requests"],
               calib_load["non2xx"], calib_load["socket_errors"]), flush=True)

        canary = self.name == "canary"
        v2 = self.put_version("--error-percent %d" % args.error_percent if canary else "")
        body = {"batch": "25%", "max_surge": 1}
        if canary:
            body["canary"] = {"count": 1, "bake_ms": 60000, "min_requests": 50}

        wrk_log = os.path.join(self.dir, "wrk-rollout.log")
        self.wrk.append(start_wrk(args, wrk_log))
        time.sleep(2.0)
        before_ids = {i["id"] for i in instances()}
        sock = os.path.join(self.state_dir, "haproxy.sock")
        lb_before = lb_counters(sock)
        self.monitor.record(True)
        t0 = time.monotonic()
        t0_wall = time.time()
        rollout = api("POST", "/v1/groups/web/rollouts", body, 201)
        post_ms = (time.monotonic() - t0) * 1000.0
        timeline = []
        last = None
        judged_ms = None
        canary_inst = None
        canary_last = None
        canary_entered = None
        canary_last_at = None
        next_stats = 0.0
        deadline = t0 + args.scenario_limit_s - 5
        while True:
            now = time.monotonic()
            if now > deadline:
                raise Failed("the rollout did not finish within %d s: %s" % (args.scenario_limit_s, rollout))
            try:
                rollout = api("GET", "/v1/groups/web/rollout")
            except OSError:
                time.sleep(0.05)
                continue
            now = time.monotonic()
            key = (rollout["state"], rollout.get("phase"), rollout.get("batch"), rollout.get("replaced"),
                   rollout.get("progress", {}).get("target_instances"), rollout.get("progress", {}).get("serving"))
            if key != last:
                last = key
                timeline.append(((now - t0) * 1000.0, key))
            if canary and judged_ms is None and rollout["state"] != "running":
                judged_ms = (now - t0) * 1000.0
            if canary and canary_inst is None and rollout.get("canary_instances"):
                cid = rollout["canary_instances"][0]
                for i in instances():
                    if i["id"] == cid and i.get("address"):
                        canary_inst = i
            if canary_inst is not None and canary_entered is None:
                e = self.monitor.snapshot()[1].get(canary_inst["address"])
                if e is not None and e > t0_wall:  # not an earlier instance at that address
                    canary_entered = e
            if canary_inst is not None and now >= next_stats:
                next_stats = now + 0.02
                try:
                    canary_last = app_stats(canary_inst, 0.5)
                    canary_last_at = time.monotonic()
                except (OSError, ValueError):
                    pass
            if rollout["state"] in FINAL:
                break
            time.sleep(0.05)
        wall_ms = (time.monotonic() - t0) * 1000.0
        final = rollout
        # Keep reading the canary until it stops answering (it is drained,
        # then terminated: its last answer misses at most the requests of the
        # last poll interval; HAProxy's counters of its slot miss none).
        if canary_inst is not None:
            gone_by = time.monotonic() + 45
            while time.monotonic() < gone_by:
                try:
                    canary_last = app_stats(canary_inst, 0.5)
                    canary_last_at = time.monotonic()
                except (OSError, ValueError):
                    break
                if canary_inst["address"] not in self.monitor.snapshot()[0] and \
                        not any(i["id"] == canary_inst["id"] for i in instances()):
                    break
                time.sleep(0.1)
        time.sleep(1.0)
        self.monitor.record(False)
        load = stop_wrk(self.wrk[-1], wrk_log)
        lb_after = lb_counters(sock)
        lb = lb_delta(lb_after, lb_before)
        canary_slot = self.monitor.slot_of(canary_inst["address"]) if canary_inst is not None else None
        # The canary's slot served nobody else during the rollout when no
        # old instance was replaced (replaced 0): its counters are the canary's.
        canary_lb = slot_delta(lb_after, lb_before, canary_slot) if canary_slot and final.get("replaced") == 0 \
            else None
        fewest, most = self.monitor.fewest, self.monitor.most

        want_version = v2 if final["state"] == "succeeded" else v1
        try:
            wait_for(lambda: settled(n, self.monitor, want_version), "%d instances of version %s" %
                     (n, want_version), 60, 0.1)
            settled_ok = True
        except Failed:
            settled_ok = False
        live = instances()
        early = 0
        startups = []
        _, entered, _ = self.monitor.snapshot()
        now_wall = time.time()
        for i in live:
            try:
                s = app_stats(i)
            except (OSError, ValueError):
                continue
            early += s.get("served_before_ready", 0)
            if i["id"] not in before_ids and i["address"] in entered:
                # Process start (now - uptime) -> seen entering rotation.
                startups.append(entered[i["address"]] * 1000.0 - (now_wall * 1000.0 - s["uptime_ms"]))
        if canary_inst is not None and canary_last is not None:
            early += canary_last.get("served_before_ready", 0)

        result = {"scenario": self.name, "instances": n, "ready_after_ms": args.ready_after_ms,
                  "state": final["state"], "reason": final.get("reason", ""), "replaced": final.get("replaced"),
                  "wall_ms": round(wall_ms), "post_ms": round(post_ms, 1),
                  "coordinator_ms": (final["finished_ms"] - final["created_ms"]) if final.get("finished_ms") else None,
                  "startup_ms": round(startup_ms), "startup_samples_ms": [round(s) for s in startup],
                  "startup_in_rollout_ms": sorted(round(s) for s in startups),
                  "requests": load["requests"], "non2xx": load["non2xx"], "socket_errors": load["socket_errors"],
                  "fewest_in_rotation": fewest, "most_in_rotation": most, "served_before_ready": early,
                  "settled": settled_ok, "haproxy": lb, "timeline": [[round(t), list(k)] for t, k in timeline]}
        if not canary:
            batch = math.ceil(0.25 * n)
            batches = math.ceil(n / batch)
            floor = min(n, math.ceil(0.9 * n))
            in_flight = 1 + (n - floor)
            waves = 0
            left = n
            while left > 0:
                b = min(batch, left)
                waves += math.ceil(b / in_flight)
                left -= b
            result.update({"batches": batches, "waves": waves, "bound_batches_ms": round(startup_ms * batches),
                           "bound_waves_ms": round(startup_ms * waves),
                           "ratio_batches": round(wall_ms / (startup_ms * batches), 2),
                           "ratio_waves": round(wall_ms / (startup_ms * waves), 2)})
        else:
            reason = final.get("reason", "")
            m = re.search(r"canary: (\d+) requests, ([\d.]+)% errors", reason)
            result.update({"judged_ms": round(judged_ms) if judged_ms is not None else None,
                           "canary_instance": canary_inst["id"] if canary_inst else None,
                           "canary_last_read_ms": round((canary_last_at - t0) * 1000.0) if canary_last_at else None,
                           "canary_slot": canary_slot,
                           "canary_lb_2xx": canary_lb["hrsp_2xx"] if canary_lb else None,
                           "canary_lb_5xx": canary_lb["hrsp_5xx"] if canary_lb else None,
                           "canary_lb_other": (canary_lb["hrsp_4xx"] + canary_lb["hrsp_other"] + canary_lb["eresp"] +
                                               canary_lb["econ"]) if canary_lb else None,
                           "canary_app_ok": canary_last.get("requests") if canary_last else None,
                           "canary_app_errors": canary_last.get("errors") if canary_last else None,
                           "canary_in_rotation_ms":
                               round((canary_entered - t0_wall) * 1000.0) if canary_entered else None,
                           "reason_requests": int(m.group(1)) if m else None,
                           "reason_error_pct": float(m.group(2)) if m else None})
        return result


def print_timeline(r):
    for t, (state, phase, batch, replaced, target, serving) in r["timeline"]:
        print("    +%6.0f ms  %-12s %-6s batch %s  replaced %s  target-version instances %s  serving %s" %
              (t, state, phase, batch, replaced, target, serving))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.environ.get("TIDE_BUILD_DIR", "build"))
    parser.add_argument("--scenarios", default="6,20,canary", help="comma-separated: 6, 20, canary")
    parser.add_argument("--ready-after-ms", type=int, default=2000, help="the application's start-up delay")
    parser.add_argument("--canary-size", type=int, default=6, help="instances of the canary scenario's group")
    parser.add_argument("--error-percent", type=int, default=20, help="the bad canary's share of 500s")
    parser.add_argument("--calibrations", type=int, default=2, help="start-up samples per scenario")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=16)
    parser.add_argument("--scenario-limit-s", type=int, default=90, help="a rollout must finish within this")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    for tool in ("wrk", "haproxy"):
        if shutil.which(tool) is None:
            raise SystemExit("rollout_bench: needs %s" % tool)
    for b in ("tide-coordinator", "tide-agent", "tide-sample-app"):
        if not os.access(os.path.join(args.build, "bin", b), os.X_OK):
            raise SystemExit("rollout_bench: %s/bin/%s missing (build it first)" % (args.build, b))

    # SIGTERM (a CI time-out, kill) unwinds like Ctrl-C, through the cleanups.
    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)

    work = tempfile.mkdtemp(prefix="tide-rollout-")
    print("rollout_bench: scenarios %s, application ready %d ms after start, wrk -t%d -c%d; load average %s" %
          (args.scenarios, args.ready_after_ms, args.wrk_threads, args.wrk_connections,
           open("/proc/loadavg").read().strip()), flush=True)
    started = time.monotonic()
    results = []
    status = 0
    try:
        for name in args.scenarios.split(","):
            size = args.canary_size if name == "canary" else int(name)
            sc = Scenario(args, name, size, work)
            try:
                r = sc.run()
            except Failed as e:
                print("  %s: FAILED: %s (logs in %s)" % (name, e, sc.dir), flush=True)
                args.keep = True
                status = 1
                continue
            finally:
                sc.cleanup()
            results.append(r)
            print("  %s: %s in %d ms (coordinator %s ms); %d requests, %d non-2xx, %d socket errors; in rotation "
                  "%s..%s; served before ready %d%s" %
                  (name, r["state"], r["wall_ms"], r["coordinator_ms"], r["requests"], r["non2xx"],
                   r["socket_errors"], r["fewest_in_rotation"], r["most_in_rotation"], r["served_before_ready"],
                   "; reason: " + r["reason"] if r["reason"] else ""), flush=True)
            print("    HAProxy during the rollout's load: %s" % json.dumps(r["haproxy"], sort_keys=True), flush=True)
            print_timeline(r)
    except KeyboardInterrupt:
        print("rollout_bench: interrupted; everything it started is stopped", flush=True)
        status = 130
    finally:
        if args.keep:
            print("work directory kept:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    if any(r["scenario"] != "canary" for r in results):
        print()
        print("| rollout | POST -> succeeded | start-up (launch -> in rotation) | bound: start-up x batches | ratio | "
              "bound: start-up x waves | ratio | requests | non-2xx | socket errors | fewest in rotation |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if r["scenario"] == "canary":
            continue
        print("| %d instances | %.1f s (%s) | %.2f s | %d x = %.1f s | %.2f | %d x = %.1f s | %.2f | %d | %d | %d | "
              "%s of %d |" %
              (r["instances"], r["wall_ms"] / 1000.0, r["state"], r["startup_ms"] / 1000.0, r["batches"],
               r["bound_batches_ms"] / 1000.0, r["ratio_batches"], r["waves"], r["bound_waves_ms"] / 1000.0,
               r["ratio_waves"], r["requests"], r["non2xx"], r["socket_errors"], r["fewest_in_rotation"],
               r["instances"]))
    for r in results:
        if r["scenario"] != "canary":
            continue
        print()
        print("| bad canary (%d%% 500s) | POST -> judged (canary in rotation -> judged) | POST -> %s | canary served, "
              "HAProxy's counters of its slot | of them 500 | its own /stats, last answer | reason says | "
              "wrk requests | wrk non-2xx | socket errors |" % (args.error_percent, r["state"]))
        print("|---|---|---|---|---|---|---|---|---|---|")
        app = "-" if r["canary_app_ok"] is None else "%d (%d of them 500), %d ms before judged" % (
            r["canary_app_ok"] + r["canary_app_errors"], r["canary_app_errors"], r["judged_ms"] - r["canary_last_read_ms"])
        print("| %d instances | %.1f s (%s) | %.1f s | %s | %s | %s | %s requests, %s%% errors | %d | %d | %d |" %
              (r["instances"], r["judged_ms"] / 1000.0,
               "-" if r["canary_in_rotation_ms"] is None else "%.1f s" % ((r["judged_ms"] - r["canary_in_rotation_ms"]) / 1000.0),
               r["wall_ms"] / 1000.0,
               None if r["canary_lb_2xx"] is None else r["canary_lb_2xx"] + r["canary_lb_5xx"] + r["canary_lb_other"],
               r["canary_lb_5xx"], app, r["reason_requests"], r["reason_error_pct"], r["requests"], r["non2xx"],
               r["socket_errors"]))
    for r in results:
        print("RESULT " + json.dumps({k: v for k, v in r.items() if k != "timeline"}, sort_keys=True))
    print("total %.0f s; load average after: %s" % (time.monotonic() - started, open("/proc/loadavg").read().strip()))
    return status


if __name__ == "__main__":
    sys.exit(main())
