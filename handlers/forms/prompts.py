"""The texts of a form conversation: the next question, the summary to confirm."""

from __future__ import annotations

from typing import Any

from bot.services import Services
from handlers.forms import engine
from handlers.forms.definitions import FormDef
from handlers.forms.engine import Progress
from handlers.forms.fields import Field


def field_prompt(services: Services, form: FormDef, field: Field, answers: dict[str, Any]) -> str:
    # The prompt is a template: 「{{ answers.medicine }} 需要几盒？」
    shown = {f.name: f.display(answers[f.name]) for f in form.fields if f.name in answers}
    return services.render.from_string(field.prompt, answers=shown, form=form)


def question(
    services: Services,
    form: FormDef,
    progress: Progress,
    *,
    error: str = "",
    note: str = "",
    previous: Any = None,
    first: bool = False,
    masked: bool = False,
) -> str:
    field = engine.current_field(form, progress)
    if field is None:
        return confirmation(services, form, progress, note=note or error, masked=masked)
    index, total = engine.position(form, progress)
    current = progress.answers.get(field.name) if progress.editing else previous
    return services.render(
        "form_ask",
        form=form,
        field=field,
        prompt=field_prompt(services, form, field, progress.answers),
        options=field.choices_hint(),
        index=index,
        total=total,
        error=error,
        note=note,
        current=field.display(current, masked) if current is not None else "",
        editing=progress.editing,
        first=first,
    )


def confirmation(
    services: Services, form: FormDef, progress: Progress, note: str = "", masked: bool = False
) -> str:
    """The summary to confirm. ``masked`` in a group chat: everyone there reads the reply."""
    return services.render(
        "form_confirm", form=form, items=engine.summary(form, progress.answers, masked), note=note
    )
