"""Run ``unionbot`` commands in-process against the test's database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT
from handlers.cli import main


def write_config(folder: Path, db_url: str, extra: str = "") -> Path:
    file = folder / "cli-config.toml"
    file.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[bot]\ncontent_dirs = ["{PROJECT_ROOT / "content"}"]\n'
        f'[log]\nlevel = "WARNING"\n{extra}',
        encoding="utf-8",
    )
    return file


async def unionbot(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one command (it runs its own event loop, so in a
    thread beside the test's)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(args))
    out = capsys.readouterr()
    return code, out.out, out.err
