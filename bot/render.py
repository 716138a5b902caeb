"""Jinja2 for reply texts. Replies are plain text, so nothing is HTML-escaped here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


CHINA = ZoneInfo("Asia/Shanghai")


def cn_time(value: datetime, fmt: str = "%m-%d %H:%M") -> str:
    """Times are stored in UTC; people read them in Beijing time."""
    return value.astimezone(CHINA).strftime(fmt)


class Renderer:
    def __init__(self, extra_dirs: Sequence[Path] = ()) -> None:
        # A deployment's content folder may carry templates that override the shipped ones.
        dirs = [d / "templates" for d in extra_dirs if (d / "templates").is_dir()]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*dirs, TEMPLATES / "replies"]),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["cn_time"] = cn_time

    def __call__(self, template: str, **values: Any) -> str:
        name = template if template.endswith(".j2") else f"{template}.txt.j2"
        return self.env.get_template(name).render(**values).strip()

    def from_string(self, source: str, **values: Any) -> str:
        return self.env.from_string(source).render(**values).strip()
