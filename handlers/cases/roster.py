"""The cadre roster and the promises per category, read from content/cadres.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CATEGORIES = ("legal", "enrolment", "medicine", "service", "other")
CATEGORY_NAMES = {
    "legal": "法律援助",
    "enrolment": "入会",
    "medicine": "购药",
    "service": "服务",
    "other": "其他",
}


@dataclass(frozen=True)
class Cadre:
    userid: str  # WeCom userid
    name: str
    categories: tuple[str, ...]
    on_duty: bool = True


@dataclass(frozen=True)
class Target:
    first_response_hours: float = 4.0
    resolution_hours: float = 40.0


@dataclass(frozen=True)
class Roster:
    cadres: dict[str, Cadre] = field(default_factory=dict)
    supervisors: tuple[str, ...] = ()
    targets: dict[str, Target] = field(default_factory=dict)

    def is_cadre(self, userid: str) -> bool:
        return userid in self.cadres or userid in self.supervisors

    def on_duty(self, category: str) -> list[Cadre]:
        """Cadres on duty for ``category``; with none, those on duty for "other"."""
        chosen = [c for c in self.cadres.values() if c.on_duty and category in c.categories]
        if not chosen and category != "other":
            return self.on_duty("other")
        return chosen

    def target(self, category: str) -> Target:
        return self.targets.get(category) or self.targets.get("other") or Target()

    def name_of(self, userid: str | None) -> str:
        cadre = self.cadres.get(userid or "")
        return cadre.name if cadre else (userid or "—")


class RosterError(ValueError):
    pass


def load_roster(path: Path) -> Roster:
    if not path.exists():
        return Roster()
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    cadres: dict[str, Cadre] = {}
    for item in raw.get("cadre", []):
        userid = str(item.get("userid", "")).strip()
        if not userid:
            raise RosterError(f"{path}: a [[cadre]] has no userid")
        categories = tuple(item.get("categories", ["other"]))
        unknown = set(categories) - set(CATEGORIES)
        if unknown:
            raise RosterError(f"{path}: cadre {userid}: unknown categories {sorted(unknown)}")
        cadres[userid] = Cadre(
            userid, str(item.get("name", userid)), categories, bool(item.get("on_duty", True))
        )
    targets = {
        name: Target(float(t.get("first_response_hours", 4)), float(t.get("resolution_hours", 40)))
        for name, t in raw.get("targets", {}).items()
    }
    return Roster(cadres, tuple(raw.get("supervisors", [])), targets)
