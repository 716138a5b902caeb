"""Where a worker is in a form, and how an answer, 上一步 or 修改 moves them on.

Pure functions over :class:`Progress`, which is stored as the conversation's JSON state data
(``form:<id>``), so a restart between two answers continues where the worker was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.text import as_number, normalise
from handlers.forms.definitions import FormDef
from handlers.forms.fields import Field

CONFIRM = "confirm"  # the step after the last field: the summary waits for 「确认」


@dataclass
class Progress:
    answers: dict[str, Any] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)  # answered fields in order, for 上一步
    step: str = CONFIRM
    editing: bool = False  # 修改 from the summary: the next answer returns to the summary
    started_at: str = ""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Progress:
        return cls(
            answers=dict(data.get("answers") or {}),
            asked=[str(n) for n in data.get("asked") or []],
            step=str(data.get("step") or CONFIRM),
            editing=bool(data.get("editing")),
            started_at=str(data.get("started_at") or ""),
        )

    def to_data(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "asked": self.asked,
            "step": self.step,
            "editing": self.editing,
            "started_at": self.started_at,
        }


def begin(form: FormDef, started_at: str) -> Progress:
    progress = Progress(started_at=started_at)
    progress.step = next_step(form, progress.answers)
    return progress


def next_step(form: FormDef, answers: dict[str, Any]) -> str:
    """The first field that applies and has no answer yet, else the summary."""
    for f in form.applicable(answers):
        if f.name not in answers:
            return f.name
    return CONFIRM


def current_field(form: FormDef, progress: Progress) -> Field | None:
    if progress.step == CONFIRM or not form.has_field(progress.step):
        return None
    return form.field(progress.step)


def answer(form: FormDef, progress: Progress, value: Any) -> None:
    name = progress.step
    progress.answers[name] = value
    if name not in progress.asked:
        progress.asked.append(name)
    _prune(form, progress)
    progress.editing = False
    progress.step = next_step(form, progress.answers)


def back(form: FormDef, progress: Progress) -> Any:
    """Step back one field; returns the answer that field had (to show it), or raises
    ``LookupError`` at the first field. From a 修改 it returns to where the worker was: the
    summary, or the question still waiting for an answer."""
    if progress.editing:
        progress.editing = False
        progress.step = next_step(form, progress.answers)
        return None
    if not progress.asked:
        raise LookupError("at the first field")
    previous = progress.asked.pop()
    old = progress.answers.pop(previous, None)
    progress.step = previous
    return old


def edit(progress: Progress, target: Field) -> None:
    progress.step = target.name
    progress.editing = True


def find_field(form: FormDef, progress: Progress, text: str) -> Field | None:
    """「修改 电话」, 「修改 联系电话」 or 「修改 6」 (the line number in the summary)."""
    wanted = normalise(text)
    shown = [f for f in form.applicable(progress.answers) if f.name in progress.answers]
    if (number := as_number(wanted)) is not None:
        return shown[number - 1] if 1 <= number <= len(shown) else None
    return _by_label(shown, wanted)


def names_field(form: FormDef, text: str) -> bool:
    """Whether ``text`` names one of the form's fields (answered or not): 「电话」, 「住址」."""
    return _by_label(form.fields, normalise(text)) is not None


def _by_label(fields: Sequence[Field], wanted: str) -> Field | None:
    if not wanted:
        return None
    for f in fields:
        if wanted in (normalise(f.label), f.name):
            return f
    for f in fields:
        label = normalise(f.label)
        if wanted in label or label in wanted:
            return f
    return None


def summary(form: FormDef, answers: dict[str, Any], masked: bool = False) -> list[dict[str, str]]:
    """Label and shown value of every answered field, in form order."""
    return [
        {"name": f.name, "label": f.label, "value": f.display(answers[f.name], masked)}
        for f in form.applicable(answers)
        if f.name in answers
    ]


def position(form: FormDef, progress: Progress) -> tuple[int, int]:
    """(number of the current question, how many questions the form has as answered so far)."""
    fields = form.applicable(progress.answers)
    names = [f.name for f in fields]
    index = names.index(progress.step) + 1 if progress.step in names else len(names)
    return index, len(names)


def _prune(form: FormDef, progress: Progress) -> None:
    # An answer changed a condition: drop what no longer applies (e.g. 处方 → 否).
    keep = {f.name for f in form.applicable(progress.answers)}
    for name in [n for n in progress.answers if n not in keep]:
        del progress.answers[name]
    progress.asked = [n for n in progress.asked if n in keep]
