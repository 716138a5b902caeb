"""One day of one form as a table: CSV (UTF-8 with BOM, so Excel shows the Chinese) or XLSX.

The export is the volunteers' delivery list, so phone numbers are in full unless asked
otherwise; it is a file an administrator hands over, not a message in a group chat.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.logs import mask_phone
from bot.render import cn_time
from handlers.forms.definitions import FormDef
from handlers.forms.models import FormSubmission
from handlers.forms.submissions import source_of


def table(
    form: FormDef, rows: Sequence[FormSubmission], masked: bool = False
) -> tuple[list[str], list[list[Any]]]:
    """Header titles and one row of cells per submission, in the form's export columns."""
    header = [form.column_title(c) for c in form.export]
    body = [[_cell(form, sub, column, masked) for column in form.export] for sub in rows]
    return header, body


def _cell(form: FormDef, sub: FormSubmission, column: str, masked: bool) -> Any:
    if column == "number":
        return sub.number
    if column == "submitted_at":
        return cn_time(sub.created_at, "%Y-%m-%d %H:%M")
    if column == "status":
        return form.status_label(sub.status)
    if column == "source":
        return source_of(sub)
    value = sub.answers.get(column)
    field = form.field(column)
    if value is None:
        return ""
    if field.type == "integer" and isinstance(value, int):
        return value  # a number cell, so the volunteers can add them up
    text = field.display(value)
    return mask_phone(text) if masked else text


def write_csv(path: Path, header: list[str], body: list[list[Any]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(body)


def write_xlsx(path: Path, title: str, header: list[str], body: list[list[Any]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title[:31]  # Excel's limit for a sheet name
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in body:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    for index, title_cell in enumerate(header, start=1):
        widest = max([len(str(title_cell)), *(len(str(r[index - 1])) for r in body)])
        letter = sheet.cell(row=1, column=index).column_letter
        # CJK characters are about two Latin characters wide.
        sheet.column_dimensions[letter].width = min(60, 2 * widest + 2)
    workbook.save(path)
