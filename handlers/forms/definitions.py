"""Form definitions: one TOML file per form under ``<content>/forms/``.

A union adds a form by adding a file; a later content folder replaces a form of the same id.
Everything is checked at load time, so a typo stops start-up with the file and field named
instead of failing in the middle of a worker's conversation.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from bot.errors import ContentError
from bot.text import normalise
from handlers.forms.fields import TYPES, Field

STATUSES = ("submitted", "accepted", "done", "cancelled")
STATUS_LABELS = {
    "submitted": "已提交",
    "accepted": "已受理",
    "done": "已办结",
    "cancelled": "已取消",
}
# Columns an export may use besides the form's own fields.
META_COLUMNS = {"number": "编号", "submitted_at": "提交时间", "status": "状态", "source": "来源"}

# What a [[fields]] table may hold, and the TOML type of each key.
_FIELD_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "label": str,
    "type": str,
    "prompt": str,
    "optional": bool,
    "when": str,
    "error": str,
    "options": list,
    "min": int,
    "max": int,
    "max_length": int,
    "unit": str,
    "yes_label": str,
    "no_label": str,
    "require_yes": bool,
    "refusal": str,
    "allow_month": bool,
    "past": bool,
    "future": bool,
}
_FORM_KEYS = {
    "id",
    "title",
    "prefix",
    "opens_case",
    "keywords",
    "menu_key",
    "menu_title",
    "intro",
    "submitted",
    "notify",
    "export",
    "digest",
    "status_labels",
    "fields",
}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class FormDef:
    id: str
    title: str
    prefix: str  # of the submission number: 药-20261122-0007
    fields: tuple[Field, ...]
    keywords: tuple[str, ...] = ()  # whole messages that start the form
    menu_key: str = ""  # custom-menu CLICK key that starts the form
    menu_title: str = ""  # a form a union adds shows in the numbered menu under this title
    intro: str = ""  # said before the first question
    submitted: str = ""  # said after the number: what happens next
    notify: tuple[str, ...] = ()  # robot names for cards; empty: forms.notify_robot
    export: tuple[str, ...] = ()  # export columns: field names or META_COLUMNS
    digest: tuple[str, ...] = ()  # fields shown per submission in the daily digest
    status_labels: Mapping[str, str] = field(default_factory=dict)
    opens_case: str = ""  # a case category: a submission also opens a case for the cadres
    origin: Path = Path()

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def has_field(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    def applicable(self, answers: dict[str, Any]) -> list[Field]:
        return [f for f in self.fields if f.applies(answers)]

    def status_label(self, status: str) -> str:
        return self.status_labels.get(status) or STATUS_LABELS.get(status, status)

    def column_title(self, column: str) -> str:
        return META_COLUMNS.get(column) or self.field(column).label


@dataclass(frozen=True)
class FormRegistry:
    forms: Mapping[str, FormDef] = field(default_factory=dict)
    # Every text message is checked against the start words: look them up, do not loop.
    _words: dict[str, FormDef] = field(default_factory=dict, init=False, repr=False)
    _keys: dict[str, FormDef] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for form in self.forms.values():
            self._words.update({normalise(k): form for k in form.keywords})
            if form.menu_key:
                self._keys[form.menu_key] = form

    def get(self, form_id: str) -> FormDef | None:
        return self.forms.get(form_id)

    def by_keyword(self, folded: str) -> FormDef | None:
        return self._words.get(folded)

    def by_menu_key(self, key: str) -> FormDef | None:
        return self._keys.get(key)


def load_forms(content_dirs: Sequence[Path]) -> FormRegistry:
    forms: dict[str, FormDef] = {}
    env = SandboxedEnvironment(undefined=jinja2.ChainableUndefined)
    for folder in content_dirs:
        directory = folder / "forms"
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            form = load_form(path, env)
            forms[form.id] = form  # a later folder (the deployment's) wins
    _check_unique_starts(forms.values())
    return FormRegistry(forms)


def load_form(path: Path, env: SandboxedEnvironment | None = None) -> FormDef:
    env = env or SandboxedEnvironment(undefined=jinja2.ChainableUndefined)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(path, f"not valid TOML: {exc}") from None

    def fail(message: str, where: str | None = None) -> ContentError:
        return ContentError(path, message, where)

    unknown = set(raw) - _FORM_KEYS
    if unknown:
        raise fail(f"unknown key {sorted(unknown)[0]!r}")
    for key in ("id", "title", "prefix"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise fail(f"{key} is required")
    form_id = raw["id"]
    if not _NAME.fullmatch(form_id):
        raise fail("id must be lower-case letters, digits and _", form_id)
    if len(raw["prefix"]) > 4 or "-" in raw["prefix"]:
        raise fail("prefix must be at most 4 characters without '-'", form_id)
    fields = tuple(_field(item, env, fail) for item in _tables(raw.get("fields"), fail))
    if not fields:
        raise fail("a form needs at least one [[fields]]", form_id)
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise fail("field names must be unique", form_id)
    for f in fields:
        if f.when:
            _check_references(env, f.when, names[: names.index(f.name)], fail, f.name)
    export = _strings(raw, "export", fail) or ("number", "submitted_at", "status", *names)
    for column in export:
        if column not in META_COLUMNS and column not in names:
            raise fail(f"export column {column!r} is neither a field nor in {list(META_COLUMNS)}")
    digest = _strings(raw, "digest", fail) or tuple(names[:3])
    for name in digest:
        if name not in names:
            raise fail(f"digest field {name!r} is not a field of the form")
    labels = raw.get("status_labels", {})
    if not isinstance(labels, dict) or not all(
        k in STATUSES and isinstance(v, str) for k, v in labels.items()
    ):
        raise fail(f"status_labels keys must be among {list(STATUSES)}")
    for text_key in ("intro", "submitted", "menu_key", "menu_title"):
        if not isinstance(raw.get(text_key, ""), str):
            raise fail(f"{text_key} must be a string")
    return FormDef(
        id=form_id,
        title=raw["title"].strip(),
        prefix=raw["prefix"].strip(),
        fields=fields,
        keywords=_strings(raw, "keywords", fail),
        menu_key=raw.get("menu_key", ""),
        menu_title=raw.get("menu_title", "").strip(),
        intro=raw.get("intro", "").strip(),
        submitted=raw.get("submitted", "").strip(),
        notify=_strings(raw, "notify", fail),
        export=export,
        digest=digest,
        status_labels=dict(labels),
        opens_case=_case_category(raw.get("opens_case", ""), fail),
        origin=path,
    )


def _field(
    raw: dict[str, Any],
    env: SandboxedEnvironment,
    fail: Callable[[str, str | None], ContentError],
) -> Field:
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail("every field needs a name of lower-case letters, digits and _", None)
    unknown = set(raw) - set(_FIELD_KEYS)
    if unknown:
        raise fail(f"unknown key {sorted(unknown)[0]!r}", name)
    for key, value in raw.items():
        if not isinstance(value, _FIELD_KEYS[key]) or (
            isinstance(value, bool) and _FIELD_KEYS[key] is int
        ):
            raise fail(f"{key} has the wrong type ({type(value).__name__})", name)
    if raw.get("type") not in TYPES:
        raise fail(f"type must be one of {list(TYPES)}", name)
    for key in ("label", "prompt"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise fail(f"{key} is required", name)
    try:
        env.parse(raw["prompt"])
    except jinja2.TemplateSyntaxError as exc:
        raise fail(f"prompt is not a valid template: {exc}", name) from None
    values = dict(raw)
    values["options"] = tuple(str(o) for o in values.get("options", []))
    if raw["type"] == "choice" and not values["options"]:
        raise fail("a choice field needs options", name)
    if raw["type"] == "yesno" and raw.get("optional"):
        raise fail("a yes/no field cannot be optional (「没有」 is an answer)", name)
    built = Field(**values)
    if built.when:
        try:
            expression = env.compile_expression(built.when)
        except jinja2.TemplateSyntaxError as exc:
            raise fail(f"when is not a valid expression: {exc}", name) from None

        def condition(answers: dict[str, Any]) -> bool:
            return bool(expression(**answers))

        built = Field(**{**values, "condition": condition})
    return built


def _check_references(
    env: SandboxedEnvironment,
    expression: str,
    earlier: list[str],
    fail: Callable[[str, str | None], ContentError],
    name: str,
) -> None:
    # A condition may only look at fields asked before it, or the form could never settle.
    used = meta.find_undeclared_variables(env.parse("{{ " + expression + " }}"))
    wrong = sorted(used - set(earlier))
    if wrong:
        raise fail(f"when refers to {wrong[0]!r}, which is not a field asked before it", name)


def _tables(value: Any, fail: Callable[[str, str | None], ContentError]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise fail("[[fields]] must be a list of tables", None)
    return value


def _strings(
    raw: Mapping[str, Any], key: str, fail: Callable[[str, str | None], ContentError]
) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"{key} must be a list of strings", None)
    return tuple(value)


def _check_unique_starts(forms: Iterable[FormDef]) -> None:
    seen: dict[str, str] = {}
    for form in forms:
        for word in (normalise(k) for k in form.keywords):
            if word in seen and seen[word] != form.id:
                raise ContentError(form.origin, f"keyword {word!r} also starts {seen[word]!r}")
            seen[word] = form.id


def _case_category(value: object, fail: Any) -> str:
    from handlers.cases.roster import CATEGORIES

    if value in ("", None):
        return ""
    if value not in CATEGORIES:
        raise fail(f"opens_case must be one of {', '.join(CATEGORIES)}")
    return str(value)
