#!/usr/bin/env python3
"""tide-coordinator as a Type=notify service: it sends READY=1 to
$NOTIFY_SOCKET only once its admin API answers, and STOPPING=1 when it is
told to stop. A unix datagram socket stands in for systemd's.

Usage: notify_ready.py <tide-coordinator>
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def fail(message, log=None):
    if log:
        with open(log, encoding="utf-8", errors="replace") as f:
            sys.stderr.write(f.read())
    sys.exit(f"FAIL: {message}")


def expect_datagram(notify, expected, when, log):
    """The next datagram on the stand-in notify socket must be `expected`."""
    try:
        message = notify.recv(4096).decode()
    except socket.timeout:
        fail(f"no sd_notify datagram {when}", log)
    if message != expected:
        fail(f"{when} the datagram is {message!r}, not {expected}", log)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main():
    coordinator = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="tide-notify-") as work:
        agent_port, api_port = free_ports(2)
        config = os.path.join(work, "coordinator.yaml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"state_dir: {work}/state\n"
                    f"agents:\n  listen: tcp://127.0.0.1:{agent_port}\n"
                    f"api:\n  listen_port: {api_port}\n"
                    "load_balancer:\n  type: none\n")
        notify_path = os.path.join(work, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        log = os.path.join(work, "coordinator.log")
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        with open(log, "w", encoding="utf-8") as out:
            proc = subprocess.Popen([coordinator, "--config", config], env=env, stdout=out, stderr=out)
        try:
            notify.settimeout(120)
            expect_datagram(notify, "READY=1", "within 120 s of the start", log)
            # READY=1 promises a listening API: ask it at once, no retry.
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=30) as answer:
                    status = answer.status
            except OSError as error:
                fail(f"READY=1 came before the admin API answered: {error}", log)
            if status != 200:
                fail(f"GET /healthz after READY=1 answered {status}", log)
            print(f"READY=1, then GET /healthz: {status}")

            proc.send_signal(signal.SIGTERM)
            expect_datagram(notify, "STOPPING=1", "after SIGTERM", log)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                fail("the coordinator did not exit within 60 s of SIGTERM", log)
            if code != 0:
                fail(f"the coordinator exited {code} after SIGTERM", log)
            print("SIGTERM: STOPPING=1, exit 0")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print("PASS: READY=1 once the API answers, STOPPING=1 on SIGTERM")


if __name__ == "__main__":
    main()
