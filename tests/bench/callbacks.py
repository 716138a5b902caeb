"""Callback throughput: the full path (AES callback → dedup → state → menu reply) against a
bare wechatpy endpoint, each server on one core, the load from another process and core."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.support import wechat

PROJECT = Path(__file__).resolve().parents[2]
CONNECTIONS = 50
ROUNDS = 5


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000

    def line(self) -> str:
        return (
            f"{self.name:<28} {self.rps:8.0f} req/s   p50 {self.pct(0.50):6.1f} ms   "
            f"p99 {self.pct(0.99):6.1f} ms   errors {self.errors}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # The server gets core 0 to itself; the load generator runs on core 1.
    pinned = ["taskset", "-c", "0", *cmd] if _has_taskset() else cmd
    proc = subprocess.Popen(
        pinned,
        cwd=PROJECT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _has_taskset() -> bool:
    from shutil import which

    return which("taskset") is not None and (os.cpu_count() or 1) > 1


def menu_messages(requests: int, first_id: int) -> list[wechat.Signed]:
    """你好 from 2,000 workers, every one a new MsgId (no dedup shortcut): the menu path."""
    return [
        wechat.mp_aes("/wechat/mp", wechat.text_xml(f"o_bench_{i % 2000}", "你好", first_id + i))
        for i in range(requests)
    ]


async def drive(name: str, port: int, signed: list[wechat.Signed]) -> Result:
    """Send ``signed`` over CONNECTIONS connections as fast as the server answers."""
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[wechat.Signed] = asyncio.Queue()
    for s in signed:
        queue.put_nowait(s)
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(base, connector=connector) as http:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                s = queue.get_nowait()
                t0 = time.perf_counter()
                async with http.post(s.path, data=s.body) as resp:
                    body = await resp.read()
                latencies.append(time.perf_counter() - t0)
                if resp.status != 200 or b"<Encrypt>" not in body:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    return Result(name, len(signed), elapsed, latencies, errors)


def _merged(name: str, results: list[Result]) -> Result:
    return Result(
        name,
        sum(r.requests for r in results),
        sum(r.seconds for r in results),
        [latency for r in results for latency in r.latencies],
        sum(r.errors for r in results),
    )


def alternating_rounds(
    ports: dict[str, int], messages: Callable[[int, int], list[wechat.Signed]]
) -> dict[str, list[Result]]:
    """ROUNDS rounds, each server driven once a round and the order swapped every round (the
    machine's speed drifts by a third within minutes, so each ratio comes from one round).
    ``messages(round, server index)`` gives the messages of that run."""
    names = list(ports)
    results: dict[str, list[Result]] = {name: [] for name in names}
    for r in range(ROUNDS):
        for name in names if r % 2 == 0 else reversed(names):
            signed = messages(r, names.index(name))
            results[name].append(asyncio.run(drive(name, ports[name], signed)))
    return results


def summary(label: str, base: list[Result], other: list[Result]) -> tuple[Result, Result, str]:
    """The two servers' merged results and the line of their throughput ratio, per round too."""
    merged_base, merged_other = _merged(base[0].name, base), _merged(other[0].name, other)
    ratios = sorted(o.rps / b.rps for b, o in zip(base, other, strict=True))
    line = (
        f"{label:<28} {merged_other.rps / merged_base.rps:8.2f}x   per round "
        + "  ".join(f"{x:.2f}" for x in ratios)
        + f"   median {statistics.median(ratios):.2f}x"
    )
    return merged_base, merged_other, line


def write_config(folder: Path, database: Path) -> Path:
    """A service config for the benchmarks: the Official Account in AES mode, on SQLite."""
    config = folder / f"{database.stem}.toml"
    config.write_text(
        f"""[database]
url = "sqlite+aiosqlite:///{database}"
migrate_on_start = true
[bot]
content_dirs = ["{PROJECT / "content"}"]
timestamp_window_seconds = 3600
[log]
level = "ERROR"
[wechat.mp]
enabled = true
app_id = "{wechat.MP_APP_ID}"
token = "{wechat.MP_TOKEN}"
encoding_aes_key = "{wechat.MP_AES_KEY}"
[outbox]
enabled = false
""",
        encoding="utf-8",
    )
    return config


def serve_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "handlers.cli", "serve", "--config", str(config), "--port"]


def run(requests: int = 10_000) -> list[str]:
    if _has_taskset():
        os.sched_setaffinity(0, {1})
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), Path(tmp) / "bench.db")
        commands = {
            "bare wechatpy endpoint": [
                sys.executable,
                "-m",
                "tests.bench.bare_endpoint",
                "--port",
            ],
            "unionbot full path": serve_command(config),
        }
        ports = {name: free_port() for name in commands}
        procs = [start([*cmd, str(ports[name])], ports[name]) for name, cmd in commands.items()]
        try:
            for n, name in enumerate(commands):
                asyncio.run(
                    drive(name, ports[name], menu_messages(500, 10_000_000 + n * 1_000_000))
                )
            per_round = max(1, requests // ROUNDS)
            rounds = alternating_rounds(
                ports,
                lambda r, n: menu_messages(per_round, 20_000_000 + r * 1_000_000 + n * 100_000),
            )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
        bare, full, ratio = summary("full / bare throughput", *rounds.values())
        lines.append(
            f"callbacks: {per_round * ROUNDS} distinct AES text messages each, {CONNECTIONS} "
            f"connections, server on one core, {ROUNDS} alternating rounds"
        )
        lines.extend(r.line() for r in (bare, full))
        lines.append(ratio)
    return lines


if __name__ == "__main__":
    print("\n".join(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
