"""Knowledge-base figures: start-up (content, jieba's dictionary, index) and search latency
over the whole evaluation set."""

from __future__ import annotations

from pathlib import Path

from bot.knowledge import bench, format_bench

PROJECT = Path(__file__).resolve().parents[2]


def run() -> list[str]:
    return [format_bench(bench([PROJECT / "content" / "kb"]))]
