"""`unionbot kb reload` makes a running service pick up edited content without a restart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ask(port: int, text: str) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/dev/chat",
        data=json.dumps({"user_id": "reload-test", "text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return "\n".join(r["text"] for r in json.loads(resp.read())["replies"])


def test_reload_picks_up_an_edited_answer(tmp_path: Path) -> None:
    shutil.copytree(PROJECT / "content", tmp_path / "content")
    config = tmp_path / "config.toml"
    config.write_text(
        '[database]\nurl = "sqlite+aiosqlite:///var/bot.db"\nmigrate_on_start = true\n'
        '[dev]\nenabled = true\n[log]\nlevel = "WARNING"\n',
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIONBOT_")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "handlers.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                before = ask(port, "会费交多少")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("service did not start")
        assert "【新版】" not in before
        labour = tmp_path / "content" / "kb" / "enrolment.toml"
        text = labour.read_text(encoding="utf-8")
        labour.write_text(
            text.replace('answer = """\n', 'answer = """\n【新版】', 1), encoding="utf-8"
        )
        out = subprocess.run(
            [sys.executable, "-m", "handlers.cli", "kb", "reload", "--config", str(config)],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        for _ in range(100):
            edited = [ask(port, q) for q in ("会费交多少", "谁可以加入工会", "怎么入会")]
            if any("【新版】" in a for a in edited):
                break
            time.sleep(0.1)
        assert any("【新版】" in a for a in edited)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(20)
