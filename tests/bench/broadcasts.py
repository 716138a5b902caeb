"""Scheduled pushes at scale: a broadcast to 100,000 WeCom members through the fake API with a
configured rate, once undisturbed and once with the service killed (SIGKILL) in the middle.

Everything runs as an operator would run it: the fake API and ``unionbot serve`` as processes,
the roster loaded with ``unionbot members import``, each run started with ``unionbot broadcasts
run-now``. The figures come from the fake (what reached a worker, what WeCom's duplicate check
held back, what reached a worker twice) and from the database (every delivery settled).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.bench.callbacks import free_port
from tests.fakes.wechat_server import AGENTID, APP_SEND, CORP_SECRET, CORPID

PROJECT = Path(__file__).resolve().parents[2]
RECIPIENTS = int(os.environ.get("UNIONBOT_BENCH_RECIPIENTS", "100000"))
RATE = int(os.environ.get("UNIONBOT_BENCH_RATE", "1000"))  # WeCom app messages a second
KILL_AT = 0.4  # the service is killed when this share of the second run has been delivered

BROADCASTS = """
[[broadcast]]
id = "{id}"
title = "压测通知{id}"
schedule = {{ cron = "0 10 1 1 *" }}
text = "{{{{ event.title }}}}：{{{{ date }}}} {id}"
audience = {{ members = true }}
event = {{ title = "工会驿站开放日" }}
"""


@dataclass
class Outcome:
    name: str
    delivered: int  # distinct workers who got the message
    repeats: int  # workers who got it a second time
    held_back: int  # sends WeCom's duplicate check kept from the worker
    seconds: float  # first delivery to last
    stalled: float  # of which nothing arrived for a second or more (service down, leases)
    unsettled: int  # outbox rows not sent at the end
    rss_mb: float  # the service's peak resident memory
    expand_seconds: float
    expand_rss_mb: float
    downtime: float = 0.0

    def lines(self) -> list[str]:
        # The limit is RATE per one-second window: from the first send to the last, N seconds
        # hold N + 1 windows' worth, so the time counted is one window longer.
        sending = self.seconds - self.stalled + 1.0
        rate = self.delivered / sending if sending > 0 else 0.0
        lost = RECIPIENTS - self.delivered
        out = [
            f"{self.name}: {self.delivered:,} of {RECIPIENTS:,} delivered in {self.seconds:.1f} s",
            f"  while sending: {rate:,.0f}/s against {RATE:,}/s configured ({rate / RATE:.1%})",
            f"  duplicates {self.repeats}  losses {lost}  unsettled rows {self.unsettled}"
            f"  resent after the crash and held back by WeCom's duplicate check {self.held_back}",
            f"  peak memory: service {self.rss_mb:.0f} MB, run-now (audience expansion"
            f" {self.expand_seconds:.1f} s) {self.expand_rss_mb:.0f} MB",
        ]
        if self.downtime:
            out.append(
                f"  service down {self.downtime:.1f} s (killed, then started again); nothing"
                f" arrived for {self.stalled:.1f} s in all (the downtime, and any wait for the"
                " lease on sends in flight at the kill)"
            )
        return out


class Bench:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fake_port, self.port = free_port(), free_port()
        self.db = folder / "bench.db"
        self.config = folder / "bench.toml"
        self.service: subprocess.Popen[bytes] | None = None
        self.peak_kb = 0

    def write(self) -> None:
        content = self.folder / "content" / "broadcasts"
        content.mkdir(parents=True)
        (content / "bench.toml").write_text(
            BROADCASTS.format(id="a") + BROADCASTS.format(id="b"), encoding="utf-8"
        )
        self.config.write_text(
            f"""[database]
url = "sqlite+aiosqlite:///{self.db}"
migrate_on_start = true
[bot]
content_dirs = ["{PROJECT / "content"}", "{self.folder / "content"}"]
[log]
level = "ERROR"
[wechat.work]
corp_id = "{CORPID}"
agent_id = {AGENTID}
secret = "{CORP_SECRET}"
api_base = "http://127.0.0.1:{self.fake_port}"
[broadcasts]
enabled = true
[outbox.rate_limits]
work_app = "{RATE}/1"
""",
            encoding="utf-8",
        )
        with (self.folder / "roster.csv").open("w", encoding="utf-8") as roster:
            roster.write("姓名,userid\n")
            for n in range(RECIPIENTS):
                roster.write(f"工友{n},w{n:06d}\n")

    def unionbot(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "handlers.cli", *args, "--config", str(self.config)],
            cwd=PROJECT,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait(self, proc: subprocess.Popen[bytes]) -> tuple[str, float]:
        """Wait for a command; its output and its peak resident memory in MB."""
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = (proc.stdout.read() if proc.stdout else b"").decode()
        err = (proc.stderr.read() if proc.stderr else b"").decode()
        if proc.returncode != 0:
            raise RuntimeError(f"unionbot failed ({proc.returncode}): {out}{err}")
        return out, usage.ru_maxrss / 1024

    def start_service(self) -> None:
        self.service = self.unionbot("serve", "--port", str(self.port))
        _wait_for_port(self.port, self.service)

    def sample_memory(self) -> None:
        if self.service is None:
            return
        try:
            status = Path(f"/proc/{self.service.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def kill_service(self) -> None:
        assert self.service is not None
        self.service.send_signal(signal.SIGKILL)
        self.service.wait()
        self.service = None

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.send_signal(signal.SIGTERM)
            try:
                self.service.wait(30)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()
            self.service = None

    def stats(self) -> dict[str, dict[str, int]]:
        url = f"http://127.0.0.1:{self.fake_port}/_fake/stats"
        with urllib.request.urlopen(url, timeout=5) as resp:
            data: dict[str, dict[str, int]] = json.loads(resp.read())
        return data

    def counts(self) -> tuple[int, int, int]:
        """(accepted, repeats, held back) at the app-message endpoint."""
        stats = self.stats()
        return (
            stats["accepted"].get(APP_SEND, 0),
            stats["repeats"].get(APP_SEND, 0),
            stats["duplicates_dropped"].get(APP_SEND, 0),
        )

    def unsettled(self, run_id: int) -> int:
        with sqlite3.connect(self.db) as db:
            row = db.execute(
                "SELECT count(*) FROM deliveries d JOIN outbox o"
                " ON o.dedup_key = d.dedup_key WHERE d.run_id = ? AND o.status != 'sent'",
                (run_id,),
            ).fetchone()
        return int(row[0])

    def run(self, broadcast: str, kill: bool) -> Outcome:
        self.peak_kb = 0
        before = self.counts()
        started = time.perf_counter()
        out, expand_mb = self.wait(self.unionbot("broadcasts", "run-now", broadcast))
        expand_seconds = time.perf_counter() - started
        run_id = int(out.split("#", 1)[1].split(":", 1)[0])
        first = last = 0.0
        stalled = 0.0
        delivered = 0
        downtime = 0.0
        idle_since = time.perf_counter()
        while delivered < RECIPIENTS:
            time.sleep(0.2)
            self.sample_memory()
            accepted, repeats, _ = self.counts()
            now = time.perf_counter()
            got = accepted - repeats - (before[0] - before[1])
            if got > delivered:
                if first and now - last > 1.0:
                    stalled += now - last - 0.2  # less one poll: sends arrive between polls
                first = first or now
                last, delivered, idle_since = now, got, now
            if now - idle_since > 120:
                break  # nothing for two minutes: report what was lost
            if kill and self.service is not None and delivered >= RECIPIENTS * KILL_AT:
                self.kill_service()
                down = time.perf_counter()
                self.start_service()
                downtime = time.perf_counter() - down
                kill = False
        # Sends in flight at the kill may still arrive: give them a moment to be counted.
        time.sleep(1.0)
        accepted, repeats, held = self.counts()
        return Outcome(
            name=f"run {broadcast}" + (" (service killed at 40%)" if downtime else ""),
            delivered=(accepted - repeats) - (before[0] - before[1]),
            repeats=repeats - before[1],
            held_back=held - before[2],
            seconds=last - first,
            stalled=stalled,
            unsettled=self.unsettled(run_id),
            rss_mb=self.peak_kb / 1024,
            expand_seconds=expand_seconds,
            expand_rss_mb=expand_mb,
            downtime=downtime,
        )


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIONBOT_")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            pass
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"process exited: {err}")
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def run() -> list[str]:
    os.sched_setaffinity(0, range(os.cpu_count() or 1))  # an earlier section may have pinned us
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        bench.write()
        fake = subprocess.Popen(
            [
                sys.executable,
                *("-m", "tests.fakes.wechat_server", "--quiet", "--keep", "0"),
                *("--port", str(bench.fake_port)),
            ],
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            started = time.perf_counter()
            out, _ = bench.wait(
                bench.unionbot("members", "import", str(bench.folder / "roster.csv"))
            )
            lines.append(
                f"roster: {out.strip().splitlines()[0]} in {time.perf_counter() - started:.1f} s"
            )
            bench.start_service()
            lines += bench.run("a", kill=False).lines()
            lines += bench.run("b", kill=True).lines()
        finally:
            bench.stop_service()
            fake.send_signal(signal.SIGTERM)
            fake.wait(10)
    return lines


if __name__ == "__main__":
    for line in run():
        print(line, flush=True)
