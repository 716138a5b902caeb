"""Chat forms: definitions read from ``<content>/forms/*.toml``, the step-by-step engine,
submission numbers, pushes, reminders, the daily digest and the export.

``handlers.forms.chat`` is the chat side; this package holds no chat handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.forms.definitions import STATUSES, FormDef, FormRegistry, load_form, load_forms
from handlers.forms.fields import Field, Invalid
from handlers.services import app_services

if TYPE_CHECKING:
    from bot.services import Services


def registry_of(services: Services) -> FormRegistry:
    return app_services(services).forms


__all__ = [
    "FEATURE",
    "STATUSES",
    "Field",
    "FormDef",
    "FormRegistry",
    "Invalid",
    "load_form",
    "load_forms",
    "registry_of",
]
