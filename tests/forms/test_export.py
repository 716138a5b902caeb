"""`unionbot forms export`: one day of one form as an XLSX or CSV the volunteers open."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bot.render import CHINA
from handlers.app import init_app
from tests.conftest import make_config
from tests.forms.chat import MEDICINE, Client, Clock, fill, number_in, say
from tests.forms.cli import unionbot, write_config

HEADER = [
    "编号",
    "提交时间",
    "状态",
    "姓名",
    "住址",
    "药品和规格",
    "数量",
    "处方药",
    "已有处方",
    "联系电话",
    "紧急程度",
    "备注",
]


async def submit_two(client: Client) -> list[str]:
    numbers = []
    for user, name in (("x1", "张三"), ("x2", "李四")):
        await say(client, "我要买药", user=user)
        await fill(client, [name, *MEDICINE[1:]], user=user)
        numbers.append(number_in(await say(client, "确认", user=user)))
    return numbers


async def test_export_xlsx_opens_with_the_right_columns(
    aiohttp_client: Any, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    client: Client = await aiohttp_client(init_app(make_config(db_url), clock=clock))
    numbers = await submit_two(client)
    day = clock().astimezone(CHINA).date().isoformat()
    out = tmp_path / "medicine.xlsx"
    config = str(write_config(tmp_path, db_url))
    code, stdout, _ = await unionbot(
        capsys, "forms", "export", "--form", "medicine", "--date", day, "--format", "xlsx",
        "--out", str(out), "--config", config,
    )  # fmt: skip
    assert code == 0 and "2 rows" in stdout

    sheet = openpyxl.load_workbook(out).active
    assert sheet.title == "购药登记"
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADER
    assert [r[0] for r in rows[1:]] == numbers
    first = dict(zip(HEADER, rows[1], strict=True))
    assert first["姓名"] == "张三" and first["住址"] == "3号楼2单元501"
    assert first["数量"] == 2  # a number cell
    assert first["处方药"] == "否" and first["已有处方"] is None and first["备注"] is None
    assert first["联系电话"] == "13812345678"  # the volunteers call to deliver
    assert first["紧急程度"] == "很急（马上要用）" and first["状态"] == "已提交"
    assert str(first["提交时间"]).startswith(day)


async def test_export_csv_with_masked_phones_and_other_days_empty(
    aiohttp_client: Any, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    client: Client = await aiohttp_client(init_app(make_config(db_url), clock=clock))
    await submit_two(client)
    config = str(write_config(tmp_path, db_url))
    out = tmp_path / "m.csv"
    day = clock().astimezone(CHINA).date().isoformat()
    code, _, _ = await unionbot(
        capsys, "forms", "export", "--form", "medicine", "--date", day, "--format", "csv",
        "--mask-phone", "--out", str(out), "--config", config,
    )  # fmt: skip
    assert code == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads it as UTF-8
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == HEADER and len(rows) == 3
    assert rows[1][HEADER.index("联系电话")] == "138****5678"

    code, stdout, _ = await unionbot(
        capsys, "forms", "export", "--form", "medicine", "--date", "2020-01-01",
        "--out", str(tmp_path / "empty.xlsx"), "--config", config,
    )  # fmt: skip
    assert code == 0 and "0 rows" in stdout
    assert [list(r) for r in openpyxl.load_workbook(tmp_path / "empty.xlsx").active.values] == [
        HEADER
    ]
    code, _, err = await unionbot(capsys, "forms", "export", "--form", "nope", "--config", config)
    assert code == 2 and "medicine" in err
