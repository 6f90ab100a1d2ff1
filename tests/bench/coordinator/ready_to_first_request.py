#!/usr/bin/env python3
"""Application becomes ready -> its first request through HAProxy, p50/p99,
tide with DEFAULT settings side by side with HAProxy's own health checks.

Every sample is one new instance of tide-sample-app that listens at once but
answers 503 until --ready-after-ms (drawn per instance from [min, max)) has
passed. The application stamps both ends itself (/stats: ready_unix_ms when
it turned ready, first_served_unix_ms when it answered its first request on
the application path), so the delay is measured on one clock and includes
everything between: probe, report, coordinator, HAProxy, the next request.

A steady paced load (--rps requests/s over one keep-alive connection, GET /)
runs through HAProxy the whole time, against one permanent instance plus the
new ones, so a new instance's first request follows its entry into rotation
by at most (instances in rotation) / rps (--batch 4, --rps 1000: <= 5 ms).

  (a) tide     tide-coordinator, local provider, embedded HAProxy, one
               tide-agent per instance with the DEFAULT settings (the launch
               configuration sets no readiness period: the agent probes
               /ready every 100 ms until first ready, then every 1 s).
               Rounds: desired 1 -> 1 + batch, wait until every new instance
               served a request, desired -> 1 (newest_instance).
  (b) checks   HAProxy from the configuration tide generated in (a), plus its
               own active checks as render_config() writes them for
               health_check = true: `option httpchk GET /ready`, `check inter
               2000ms rise 2 fall 3`. The bench starts each application and
               registers it at once (`set server addr`, `enable health`,
               `state ready; set server health down`): HAProxy puts it in
               rotation after `rise 2` passing checks.

  tests/bench/coordinator/ready_to_first_request.py --build build
"""
import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

API_PORT = 17631
AGENT_PORT = 17630
LB_PORT = 18630
TIDE_PREFIX = "127.0.14."
CHECKS_PREFIX = "127.0.15."


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


def wait_for(cond, what, limit_s, step_s=0.05):
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(step_s)
    raise SystemExit("ready_to_first_request: timed out waiting for " + what)


def percentile(sorted_values, p):
    """Nearest rank."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1)]


class Load:
    """GET / through HAProxy at a steady pace over one keep-alive connection."""

    def __init__(self, rps):
        self.interval = 1.0 / rps
        self.stop_flag = threading.Event()
        self.status = {}
        self.errors = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_flag.set()
        self.thread.join(10)

    def run(self):
        conn = None
        next_at = time.monotonic()
        while not self.stop_flag.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", LB_PORT, timeout=5)
                conn.request("GET", "/")
                r = conn.getresponse()
                r.read()
                self.status[r.status] = self.status.get(r.status, 0) + 1
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()


def wait_first_served(addresses, port, limit_s):
    """Polls each new application's /stats until it served a request."""
    stats = {}
    end = time.monotonic() + limit_s
    while len(stats) < len(addresses) and time.monotonic() < end:
        for a in addresses:
            if a in stats:
                continue
            try:
                s = get_json("http://%s:%d/stats" % (a, port))
            except OSError:
                continue
            if s["first_served_unix_ms"]:
                stats[a] = s
        time.sleep(0.05)
    if len(stats) < len(addresses):
        raise SystemExit("ready_to_first_request: an instance never served a request")
    return [stats[a] for a in addresses]


def ready_after_command(app, lo, hi):
    # /bin/sh arithmetic on 2 random bytes: each instance draws its own delay.
    return ("exec %s --ready-after-ms $((%d + $(od -An -N2 -tu2 /dev/urandom) %% %d))" % (app, lo, hi - lo))


def summarize(name, samples, early, load, extra=""):
    values = sorted(samples)
    out = {"variant": name, "samples": len(values), "p50_ms": percentile(values, 50),
           "p90_ms": percentile(values, 90), "p99_ms": percentile(values, 99), "max_ms": values[-1],
           "min_ms": values[0], "served_before_ready": early, "load_status": load.status,
           "load_errors": load.errors}
    print("  %-9s n=%d  ready -> first request: p50 %d ms  p90 %d ms  p99 %d ms  max %d ms (min %d)  "
          "503s from not-ready instances %d  load %s errors %d%s" %
          (name, len(values), out["p50_ms"], out["p90_ms"], out["p99_ms"], out["max_ms"], out["min_ms"], early,
           json.dumps(load.status, sort_keys=True), load.errors, extra), flush=True)
    return out


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
    address_prefix: "{TIDE_PREFIX}"
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

    def instances():
        return json.loads(ctl("-o", "json", "instance", "list", "--group", "web").stdout)["instances"]

    load = Load(args.rps)
    try:
        wait_for(lambda: ctl("status", check=False).returncode == 0, "the coordinator's API", 20)
        app = os.path.join(bin_dir, "tide-sample-app")
        # Without --readiness-period: the agent's defaults.
        period = ["--readiness-period", "%dms" % args.readiness_period_ms] if args.readiness_period_ms else []
        ctl("lc", "create", "app", "--command", ready_after_command(app, args.ready_min_ms, args.ready_max_ms),
            "--port", "8080", *period)
        lc = json.loads(ctl("-o", "json", "lc", "show", "app").stdout)
        assert lc["agent"]["readiness_period_ms"] == args.readiness_period_ms, lc
        ctl("group", "create", "web", "--launch-config", "app", "--min", "0", "--max", str(1 + args.batch),
            "--desired", "1", "--backend", "web", "--drain-timeout", "1", "--termination-policy", "newest_instance")
        wait_for(lambda: group()["in_service"] == 1, "the first instance in service", 60)
        first = instances()[0]["address"]
        load.start()
        samples, early = [], 0
        for r in range(args.rounds):
            ctl("group", "set", "web", "--desired", str(1 + args.batch))
            wait_for(lambda: len([i for i in instances() if i["address"] and i["address"] != first]) == args.batch,
                     "the new instances' addresses", 30)
            new = [i["address"] for i in instances() if i["address"] != first]
            for s in wait_first_served(new, 8080, 30):
                samples.append(s["first_served_unix_ms"] - s["ready_unix_ms"])
                early += s["served_before_ready"]
            ctl("group", "set", "web", "--desired", "1")
            wait_for(lambda: group()["actual"] == 1, "scale-in to 1", 60)
            print("  (a) round %d/%d: %s" % (r + 1, args.rounds, samples[-args.batch:]), flush=True)
            time.sleep(random.uniform(0, 0.3))
        load.stop()
        result = summarize("(a) tide", samples, early, load)
        hacfg = open(os.path.join(d, "state", "haproxy.cfg")).read()
        ctl("group", "set", "web", "--desired", "0", check=False)
        wait_for(lambda: group()["actual"] == 0, "scale-in to 0", 30)
        return result, hacfg
    finally:
        load.stop()
        coordinator.terminate()
        try:
            coordinator.wait(15)
        except subprocess.TimeoutExpired:
            coordinator.kill()


def run_checks(args, bin_dir, work, hacfg):
    d = os.path.join(work, "b")
    os.makedirs(d)
    sock = os.path.join(d, "haproxy.sock")
    cfg = re.sub(r"stats socket \S+", "stats socket " + sock, hacfg)
    cfg = re.sub(r"pidfile \S+\n", "", cfg)
    # Exactly what render_config() writes for health_check = true.
    cfg = re.sub(r"(\n  # Slots are pre-declared[^\n]*\n  server-template [^\n]* disabled)",
                 lambda m: "\n  option httpchk GET /ready" + m.group(1) + " check inter 2000ms rise 2 fall 3", cfg)
    assert "check inter 2000ms" in cfg, "unexpected haproxy.cfg layout"
    path = os.path.join(d, "haproxy.cfg")
    open(path, "w").write(cfg)
    slot = re.search(r"server-template (\S+) 1-", cfg).group(1)
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", path], stdout=open(os.path.join(d, "haproxy.log"), "wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    apps = {}
    app = os.path.join(bin_dir, "tide-sample-app")

    def launch(n, ready_after_ms):
        address = CHECKS_PREFIX + str(n)
        apps[n] = subprocess.Popen([app, "--address", address, "--port", "8080", "--ready-after-ms",
                                    str(ready_after_ms), "--name", "i-%d" % n, "--no-notify"],
                                   stdout=open(os.path.join(d, "app%d.log" % n), "ab"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        server = "web/%s%d" % (slot, n)
        haproxy_cmd(sock, "set server %s addr %s port 8080" % (server, address))
        haproxy_cmd(sock, "enable health %s" % server)
        # In rotation only after `rise` passing checks. Leaving maintenance
        # makes a server UP whatever its checks said, so "health down" comes
        # after "state ready", in the same command line.
        haproxy_cmd(sock, "set server %s state ready; set server %s health down" % (server, server))
        return address

    def retire(n):
        server = "web/%s%d" % (slot, n)
        haproxy_cmd(sock, "set server %s state maint" % server)
        haproxy_cmd(sock, "disable health %s" % server)
        p = apps.pop(n)
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()

    load = Load(args.rps)
    try:
        wait_for(lambda: os.path.exists(sock) and "web" in haproxy_cmd(sock, "show servers state web"),
                 "haproxy", 10)
        launch(1, 0)

        def first_serves():
            with urllib.request.urlopen("http://127.0.0.1:%d/" % LB_PORT, timeout=2) as r:
                return r.status == 200
        wait_for(first_serves, "the first instance serving through haproxy", 30)
        load.start()
        samples, early = [], 0
        for r in range(args.check_rounds):
            ns = list(range(2, 2 + args.batch))
            new = [launch(n, random.randrange(args.ready_min_ms, args.ready_max_ms)) for n in ns]
            for s in wait_first_served(new, 8080, 30):
                samples.append(s["first_served_unix_ms"] - s["ready_unix_ms"])
                early += s["served_before_ready"]
            for n in ns:
                retire(n)
            print("  (b) round %d/%d: %s" % (r + 1, args.check_rounds, samples[-args.batch:]), flush=True)
            time.sleep(random.uniform(0, 0.3))
        load.stop()
        return summarize("(b) checks", samples, early, load)
    finally:
        load.stop()
        for p in apps.values():
            p.send_signal(signal.SIGTERM)
        haproxy.terminate()
        for p in list(apps.values()) + [haproxy]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--rounds", type=int, default=30, help="tide rounds of --batch new instances")
    parser.add_argument("--check-rounds", type=int, default=10, help="HAProxy-checks rounds")
    parser.add_argument("--batch", type=int, default=4, help="new instances per round")
    parser.add_argument("--ready-min-ms", type=int, default=1000, help="start-up delay of a new instance, from")
    parser.add_argument("--ready-max-ms", type=int, default=2000, help="... to (exclusive)")
    parser.add_argument("--rps", type=float, default=1000.0, help="paced load through HAProxy")
    parser.add_argument("--readiness-period-ms", type=int, default=0,
                        help="(a): the launch configuration's agent.readiness_period_ms; 0 = the agent's default "
                             "(a shorter period also shortens the 100 ms startup period: the agent takes the "
                             "smaller)")
    parser.add_argument("--skip-checks", action="store_true", help="run (a) only")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if shutil.which("haproxy") is None:
        raise SystemExit("ready_to_first_request: needs haproxy")
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    work = tempfile.mkdtemp(prefix="tide-ready-first-")
    print("ready_to_first_request: %d + %d rounds of %d new instances, ready %d..%d ms after start, paced load "
          "%d req/s, agent readiness period %s; load average %s" %
          (args.rounds, 0 if args.skip_checks else args.check_rounds, args.batch, args.ready_min_ms,
           args.ready_max_ms, args.rps,
           "%d ms" % args.readiness_period_ms if args.readiness_period_ms else "default",
           open("/proc/loadavg").read().strip()), flush=True)
    results = []
    try:
        result, hacfg = run_tide(args, bin_dir, work)
        results.append(result)
        if not args.skip_checks:
            results.append(run_checks(args, bin_dir, work, hacfg))
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
