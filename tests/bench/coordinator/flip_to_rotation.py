#!/usr/bin/env python3
"""Application flip -> HAProxy state, end to end (ready -> in rotation, not
ready -> out of rotation), p50 and p99.

The real binaries: tide-coordinator (embedded HAProxy, CURVE agent link) and,
per instance, tide-sample-app with a tide-agent beside it. The instances come
from the coordinator's `exec` provider, served by this same script
(`--provider`), because the embedded `local` provider starts every agent with
the default probe (HTTP, period 1 s, failure_threshold 3) and nothing else;
the exec launch here starts the same two processes with an agent YAML that
chooses the readiness source:

  --probe default   HTTP probe of /ready, period 1000 ms, success 1, failure 3
                    (exactly what the local provider gives an agent)
  --probe fast      HTTP probe, period --period-ms (100), failure_threshold
                    --failure-threshold (1)
  --probe notify    no probe: the application's sd_notify datagrams
                    (READY=1 / READY=0) on the agent's notify socket

The bench flips every instance at once through the application
(`GET /admin/ready?state=0|1`), taking the time just before each request, and
polls HAProxy's runtime socket (`show servers state`) every ~1 ms until each
slot shows the new state: in rotation = operational state 2 and no maint or
drain admin flag; out = a maint or drain flag. Rounds start at random offsets
so flips land at random points of the probe period.

  tests/bench/coordinator/flip_to_rotation.py --build build --probe notify
"""
import argparse
import fcntl
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

API_PORT = 17611
AGENT_PORT = 17610
LB_PORT = 18610
PREFIX = "127.0.10."


# ---- the exec provider (invoked by tide-coordinator) ---------------------------

def provider(work):
    op = os.environ.get("TIDE_PROVIDER_OPERATION", "")
    request = json.loads(sys.stdin.read() or "{}")
    records = os.path.join(work, "records")
    os.makedirs(records, exist_ok=True)
    settings = json.load(open(os.path.join(work, "settings.json")))

    def load_all():
        out = []
        for name in sorted(os.listdir(records)):
            if name.endswith(".json"):
                out.append(json.load(open(os.path.join(records, name))))
        return out

    def alive(pid):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        # A zombie is not alive; the coordinator is not our parent, so a
        # finished process is reaped by init and kill() fails.
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(") ")[1].split()[0] != "Z"
        except OSError:
            return False

    if op == "launch":
        # The coordinator launches instances concurrently: one at a time here,
        # or two could pick the same address.
        lock = open(os.path.join(work, "launch.lock"), "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        key = request["idempotency_key"]
        path = os.path.join(records, key + ".json")
        if os.path.exists(path):
            r = json.load(open(path))
            if alive(r["app_pid"]):
                print(json.dumps({"provider_id": key, "address": r["address"], "port": r["port"], "existing": True}))
                return 0
        used = {r["address"] for r in load_all()}
        address = next(PREFIX + str(n) for n in range(1, 255) if PREFIX + str(n) not in used)
        port = 8080
        home = os.path.join(work, "instances", key)
        state = os.path.join(home, "agent-state")
        os.makedirs(state, exist_ok=True)
        agent = request["agent"]
        notify_sock = os.path.join(state, "notify.sock")
        lines = [
            "coordinator:",
            "  endpoint: %s" % agent["coordinator_endpoint"],
            "  public_key: \"%s\"" % agent.get("coordinator_public_key", ""),
            "instance:",
            "  id: %s" % request["instance_id"],
            "  enrollment_token: \"%s\"" % agent.get("enrollment_token", ""),
            "  group: %s" % request["group"],
            "  service_address: %s" % address,
            "  service_port: %d" % port,
            "state_dir: %s" % state,
            "log_level: warn",
            "readiness:",
        ]
        mode = settings["probe"]
        if mode == "notify":
            lines += ["  notify: true", "notify:", "  socket: %s" % notify_sock]
        else:
            period = 1000 if mode == "default" else settings["period_ms"]
            failure = 3 if mode == "default" else settings["failure_threshold"]
            lines += ["  probes:",
                      "    - name: web",
                      "      type: http",
                      "      url: http://%s:%d/ready" % (address, port),
                      "      period_ms: %d" % period,
                      "      timeout_ms: %d" % min(1000, period),
                      "      success_threshold: 1",
                      "      failure_threshold: %d" % failure]
        config = os.path.join(home, "agent.yaml")
        open(config, "w").write("\n".join(lines) + "\n")
        devnull = open(os.devnull, "rb")
        agent_log = open(os.path.join(home, "agent.log"), "ab")
        agent_proc = subprocess.Popen([agent["path"], "--config", config], stdin=devnull, stdout=agent_log,
                                      stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if mode == "notify":
            # The agent binds the socket; READY=1 sent before that would be lost.
            deadline = time.monotonic() + 5
            while not os.path.exists(notify_sock) and time.monotonic() < deadline:
                time.sleep(0.01)
            env["NOTIFY_SOCKET"] = notify_sock
        app_log = open(os.path.join(home, "app.log"), "ab")
        app_proc = subprocess.Popen([settings["app"], "--address", address, "--port", str(port),
                                     "--ready-after-ms", str(settings["ready_after_ms"]),
                                     "--name", request["instance_id"]],
                                    stdin=devnull, stdout=app_log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, close_fds=True)
        record = {"provider_id": key, "instance_id": request["instance_id"], "group": request["group"],
                  "idempotency_key": key, "address": address, "port": port, "app_pid": app_proc.pid,
                  "agent_pid": agent_proc.pid, "started_at_ms": int(time.time() * 1000)}
        tmp = path + ".tmp"
        open(tmp, "w").write(json.dumps(record))
        os.rename(tmp, path)
        print(json.dumps({"provider_id": key, "address": address, "port": port, "existing": False}))
        return 0
    if op == "terminate":
        path = os.path.join(records, request["provider_id"] + ".json")
        if os.path.exists(path):
            r = json.load(open(path))
            for pid in (r["app_pid"], r["agent_pid"]):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and (alive(r["app_pid"]) or alive(r["agent_pid"])):
                time.sleep(0.05)
            for pid in (r["app_pid"], r["agent_pid"]):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.unlink(path)
        print("{}")
        return 0
    if op == "list":
        out = []
        for r in load_all():
            state = "running" if alive(r["app_pid"]) else "gone"
            out.append({k: r[k] for k in ("provider_id", "instance_id", "group", "idempotency_key", "address",
                                          "port", "started_at_ms")} | {"state": state, "message": ""})
        print(json.dumps({"instances": out}))
        return 0
    sys.stderr.write("unknown operation %r\n" % op)
    return 2


# ---- HAProxy runtime socket ---------------------------------------------------

def haproxy(sock_path, command):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(sock_path)
    s.sendall((command + "\n").encode())
    chunks = []
    while True:
        data = s.recv(65536)
        if not data:
            break
        chunks.append(data)
    s.close()
    return b"".join(chunks).decode()


def slot_states(sock_path, backend):
    """address -> True (in rotation) / False (out), from `show servers state`."""
    states = {}
    for line in haproxy(sock_path, "show servers state " + backend).splitlines():
        f = line.split()
        if len(f) < 7 or not f[0].isdigit():
            continue
        address, op_state, admin = f[4], int(f[5]), int(f[6])
        in_rotation = op_state == 2 and (admin & 0x29) == 0  # 0x01/0x20 maint, 0x08 drain
        # A slot re-used later keeps its address; prefer one in rotation.
        states[address] = states.get(address, False) or in_rotation
    return states


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provider", metavar="WORKDIR", help=argparse.SUPPRESS)
    parser.add_argument("--build", default="build")
    parser.add_argument("--probe", choices=("default", "fast", "notify"), default="default")
    parser.add_argument("--period-ms", type=int, default=100)
    parser.add_argument("--failure-threshold", type=int, default=1)
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--flips", type=int, default=10, help="flips per direction and instance")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.provider:
        return provider(args.provider)

    deadline = time.monotonic() + 600  # everything stops by itself
    bin_dir = os.path.abspath(os.path.join(args.build, "bin"))
    work = tempfile.mkdtemp(prefix="tide-flip-")
    json.dump({"probe": args.probe, "period_ms": args.period_ms, "failure_threshold": args.failure_threshold,
               "app": os.path.join(bin_dir, "tide-sample-app"), "ready_after_ms": 1500},
              open(os.path.join(work, "settings.json"), "w"))
    script = os.path.join(work, "provider")
    open(script, "w").write("#!/bin/sh\nexec python3 %s --provider %s\n" % (os.path.abspath(__file__), work))
    os.chmod(script, 0o755)
    open(os.path.join(work, "c.yaml"), "w").write(f"""state_dir: {work}/state
tick_interval_ms: 100
log_level: warn
agents:
  listen: tcp://127.0.0.1:{AGENT_PORT}
api:
  listen_port: {API_PORT}
provider:
  type: exec
  exec:
    launch: {script}
    terminate: {script}
    list: {script}
load_balancer:
  backends:
    - name: web
      bind_port: {LB_PORT}
      slots: 16
""")
    coordinator = subprocess.Popen([os.path.join(bin_dir, "tide-coordinator"), "-c", os.path.join(work, "c.yaml")],
                                   stdout=open(os.path.join(work, "coordinator.log"), "wb"),
                                   stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    env = dict(os.environ, TIDE_ENDPOINT="http://127.0.0.1:%d" % API_PORT)
    tidectl = os.path.join(bin_dir, "tidectl")

    def ctl(*argv):
        return subprocess.run([tidectl, *argv], env=env, capture_output=True, text=True, timeout=30)

    def group():
        r = ctl("-o", "json", "group", "show", "web")
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def wait(cond, what, limit_s):
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            if cond():
                return
            time.sleep(0.1)
        raise SystemExit("flip_to_rotation: timed out waiting for " + what)

    up, down = [], []
    try:
        wait(lambda: ctl("status").returncode == 0, "the coordinator's API", 20)
        r = ctl("lc", "create", "app", "--command", "unused-by-this-provider", "--port", "8080")
        if r.returncode != 0:
            raise SystemExit("lc create: " + r.stderr)
        r = ctl("group", "create", "web", "--launch-config", "app", "--min", "0", "--max", str(args.instances),
                "--desired", str(args.instances), "--backend", "web", "--drain-timeout", "2")
        if r.returncode != 0:
            raise SystemExit("group create: " + r.stderr)
        wait(lambda: group().get("in_service") == args.instances, "every instance in service", 90)
        instances = json.loads(ctl("-o", "json", "instance", "list", "--group", "web").stdout)["instances"]
        addresses = ["%s:%d" % (i["address"], i["port"]) for i in instances]
        if len({a.split(":")[0] for a in addresses}) != args.instances:
            raise SystemExit("flip_to_rotation: instances do not have distinct addresses: %s" % addresses)
        sock = os.path.join(work, "state", "haproxy.sock")
        print("flip_to_rotation: probe=%s, %d instances, %d flips each way; load %s" %
              (args.probe, len(addresses), args.flips, open("/proc/loadavg").read().split(" ")[0]), flush=True)
        for round_no in range(args.flips):
            for want, samples in ((False, down), (True, up)):
                if time.monotonic() > deadline:
                    raise SystemExit("flip_to_rotation: out of time")
                time.sleep(random.uniform(0.2, 1.2))  # a random phase against the probe period
                t0 = {}
                for a in addresses:
                    t0[a] = time.monotonic()
                    urllib.request.urlopen("http://%s/admin/ready?state=%d" % (a, 1 if want else 0), timeout=5).read()
                pending = {a.split(":")[0]: a for a in addresses}
                end = time.monotonic() + 15
                while pending and time.monotonic() < end:
                    states = slot_states(sock, "web")
                    now = time.monotonic()
                    for ip in list(pending):
                        if states.get(ip, False) == want:
                            samples.append((now - t0[pending.pop(ip)]) * 1000.0)
                    time.sleep(0.001)
                if pending:
                    raise SystemExit("flip_to_rotation: %s never went %s" % (sorted(pending), "in" if want else "out"))
            print("  round %d: last down %.1f ms, last up %.1f ms" % (round_no + 1, down[-1], up[-1]), flush=True)
        load = open("/proc/loadavg").read().split(" ")[0]
        for name, s in (("ready -> in rotation", up), ("not ready -> out of rotation", down)):
            print("  %-30s n=%d p50 %.1f ms  p99 %.1f ms  max %.1f ms  mean %.1f ms" %
                  (name, len(s), percentile(s, 0.5), percentile(s, 0.99), max(s), statistics.mean(s)))
        print("RESULT probe=%s n=%d up_p50_ms=%.1f up_p99_ms=%.1f down_p50_ms=%.1f down_p99_ms=%.1f load=%s" %
              (args.probe if args.probe != "fast" else "fast-%dms-f%d" % (args.period_ms, args.failure_threshold),
               len(up), percentile(up, 0.5), percentile(up, 0.99), percentile(down, 0.5),
               percentile(down, 0.99), load), flush=True)
    finally:
        ctl("group", "set", "web", "--desired", "0")
        end = time.monotonic() + 20
        while time.monotonic() < end and group().get("actual", 0) != 0:
            time.sleep(0.2)
        coordinator.terminate()
        try:
            coordinator.wait(10)
        except subprocess.TimeoutExpired:
            coordinator.kill()
        # Whatever the coordinator did not terminate.
        records = os.path.join(work, "records")
        if os.path.isdir(records):
            for name in os.listdir(records):
                try:
                    r = json.load(open(os.path.join(records, name)))
                    for pid in (r["app_pid"], r["agent_pid"]):
                        os.kill(pid, signal.SIGKILL)
                except (OSError, ValueError, KeyError):
                    pass
        if not args.keep:
            subprocess.run(["rm", "-rf", work])
        else:
            print("work directory kept:", work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
