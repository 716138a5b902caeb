"""Knowledge-base figures: start-up (content, jieba's dictionary, index, classifier) and search
latency over the whole evaluation set; and a cold start in a new process, imports included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from handlers.knowledge import bench, format_bench

PROJECT = Path(__file__).resolve().parents[2]
KB = PROJECT / "content" / "kb"

COLD_START = f"""
import time
started = time.perf_counter()
from handlers.knowledge.retrieval import KnowledgeBase
KnowledgeBase.load([__import__("pathlib").Path({str(KB)!r})]).search("工资拖了怎么办")
print(f"{{time.perf_counter() - started:.2f}}")
"""


def run() -> list[str]:
    cold = subprocess.run(
        [sys.executable, "-c", COLD_START], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.strip()
    return [format_bench(bench([KB])), f"新进程冷启动（含导入、首次检索）{cold} s"]
