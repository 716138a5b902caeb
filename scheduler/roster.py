"""The members' roster from a CSV file (``unionbot members import``): name, phone, birthday and
how to reach them (an Official Account openid, a WeCom userid, or both).

Rows are matched on the WeChat identity, so importing the same file again updates, and a
member who later writes to the bot is the same user. Headers may be English or Chinese.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Config
from bot.storage.models import User
from bot.storage.repo import upsert_insert

HEADERS = {
    "name": ("name", "姓名", "名字"),
    "phone": ("phone", "mobile", "手机", "手机号", "电话", "联系电话"),
    "birthday": ("birthday", "生日", "出生日期"),
    "openid": ("openid", "公众号openid"),
    "userid": ("userid", "企业微信", "企业微信账号", "成员账号"),
}
# Imported members have not written yet: the customer-service window is closed for them.
NEVER = datetime(2000, 1, 1, tzinfo=UTC)
_PHONE = re.compile(r"1[3-9]\d{9}")
_DATE = re.compile(r"(\d{4})\D?(\d{1,2})\D?(\d{1,2})")
CHUNK = 1000


@dataclass(frozen=True)
class Member:
    line: int
    name: str
    phone: str | None
    birthday: str | None
    openid: str | None
    userid: str | None


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    problems: list[str] = field(default_factory=list)


def read_roster(path: Path) -> tuple[list[Member], list[str]]:
    """The members of the file, and a problem line for each row that cannot be used."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return [], [f"{path}: the file is empty"]
        columns = _columns(header)
        if "openid" not in columns and "userid" not in columns:
            return [], [f"{path}: needs an openid or a userid column (header: {', '.join(header)})"]
        members: list[Member] = []
        problems: list[str] = []
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue

            def cell(key: str, row: list[str] = row) -> str | None:
                index = columns.get(key)
                value = row[index].strip() if index is not None and index < len(row) else ""
                return value or None

            try:
                members.append(
                    Member(
                        line=line,
                        name=(cell("name") or "")[:64],
                        phone=_phone(cell("phone")),
                        birthday=normalise_birthday(cell("birthday")),
                        openid=cell("openid"),
                        userid=cell("userid"),
                    )
                )
            except ValueError as exc:
                problems.append(f"line {line}: {exc}")
                continue
            if members[-1].openid is None and members[-1].userid is None:
                members.pop()
                problems.append(f"line {line}: no openid and no userid")
    return members, problems


def _columns(header: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, title in enumerate(header):
        folded = title.strip().lower().replace(" ", "")
        for key, names in HEADERS.items():
            if folded in names and key not in found:
                found[key] = index
    return found


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    digits = re.sub(r"[\s-]", "", value).removeprefix("+86")
    if not _PHONE.fullmatch(digits):
        raise ValueError(f"phone {value!r} is not an 11-digit mobile number")
    return digits


def normalise_birthday(value: str | None) -> str | None:
    """``1990-05-01``, ``1990/5/1``, ``19900501``, ``1990年5月1日`` → ``1990-05-01``."""
    if value is None:
        return None
    match = _DATE.fullmatch(value.strip().rstrip("日"))
    if match is None:
        raise ValueError(f"birthday {value!r} is not a date such as 1990-05-01")
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"birthday {value!r} is not a real date") from None
    if not 1900 <= day.year <= date.today().year:
        raise ValueError(f"birthday {value!r} is out of range")
    return day.isoformat()


async def import_members(
    sessions: async_sessionmaker[AsyncSession], config: Config, members: Sequence[Member]
) -> ImportReport:
    report = ImportReport()
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for m in members:
        for channel, account, external in (
            ("mp", config.wechat.mp.app_id, m.openid),
            ("work", config.wechat.work.corp_id, m.userid),
        ):
            if external is None:
                continue
            if not account:
                key = "wechat.mp.app_id" if channel == "mp" else "wechat.work.corp_id"
                report.problems.append(f"line {m.line}: {key} is not configured")
                continue
            rows.append(
                {
                    "channel": channel,
                    "account": account,
                    "external_id": external[:128],
                    "name": m.name or None,
                    "phone": m.phone,
                    "birthday": m.birthday,
                    "member_status": "member",
                    "created_at": now,
                    "last_seen_at": NEVER,
                }
            )
    # One row per identity (the last wins): PostgreSQL refuses to update a row twice in one
    # statement.
    rows = list({(r["channel"], r["account"], r["external_id"]): r for r in rows}.values())
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        async with sessions.begin() as session:
            keys = [(r["channel"], r["account"], r["external_id"]) for r in chunk]
            known = await session.execute(
                select(User.channel, User.account, User.external_id).where(
                    tuple_(User.channel, User.account, User.external_id).in_(keys)
                )
            )
            existing = {tuple(k) for k in known}
            report.updated += sum(1 for k in keys if k in existing)
            report.added += len(chunk) - sum(1 for k in keys if k in existing)
            stmt = upsert_insert(session, User)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["channel", "account", "external_id"],
                    # An empty cell keeps what the roster had.
                    set_={
                        "name": func.coalesce(stmt.excluded.name, User.name),
                        "phone": func.coalesce(stmt.excluded.phone, User.phone),
                        "birthday": func.coalesce(stmt.excluded.birthday, User.birthday),
                        "member_status": "member",
                    },
                ),
                chunk,
            )
    return report
