"""Field types of a chat form: how an answer typed on a phone is read, checked and shown.

Each type turns the worker's text into a JSON value (str, int, bool, or None for a skipped
optional field) or raises :class:`Invalid` with the sentence to say before asking again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from bot.logs import mask_phone
from bot.text import as_choice, fold_digits, normalise, read_count

TYPES = ("text", "integer", "phone", "choice", "date", "address", "yesno")
SKIP_WORDS = frozenset({"跳过", "无", "没有", "不用", "不填", "略", "没了", "没有了", "不需要"})
YES_WORDS = frozenset(
    {"是", "是的", "对", "对的", "要", "需要", "有", "有的", "好", "好的", "同意", "我同意"}
    | {"可以", "嗯", "y", "yes", "确认", "1"}
)
NO_WORDS = frozenset(
    {"否", "不", "不是", "不对", "不要", "不需要", "没有", "无", "不同意", "n", "no", "2"}
)
_ADDRESS_WORDS = "楼号栋幢座室单元村路街巷道区镇乡弄院里苑园府小区社区大厦公寓宿舍"


class Invalid(ValueError):
    """The answer does not fit the field; the message says how to answer."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str
    prompt: str  # a Jinja2 template; ``answers`` holds what was answered so far
    optional: bool = False
    when: str = ""  # a Jinja2 expression over earlier answers; the field is asked when true
    error: str = ""  # replaces the type's own re-ask sentence
    options: tuple[str, ...] = ()  # choice
    min: int | None = None  # integer
    max: int | None = None  # integer
    max_length: int = 100  # text, address
    unit: str = ""  # integer: shown after the number
    yes_label: str = "是"  # yesno
    no_label: str = "否"  # yesno
    require_yes: bool = False  # yesno: "no" ends the form (consent)
    refusal: str = ""  # said when a required "yes" is refused
    allow_month: bool = False  # date: "2026-03" is enough
    past: bool = False  # date: not after today
    future: bool = False  # date: not before today
    # Compiled ``when``; set by the loader.
    condition: Callable[[dict[str, Any]], bool] | None = field(
        default=None, compare=False, repr=False
    )

    def applies(self, answers: dict[str, Any]) -> bool:
        return self.condition is None or self.condition(answers)

    @property
    def long_text(self) -> bool:
        """A description: free text that may well contain question words."""
        return self.type == "text" and self.max_length > 50

    def parse(self, text: str, today: date) -> Any:
        # ①②③ and the digits of other scripts read as 1 2 3 (bot/text.py).
        cleaned = fold_digits(unicodedata.normalize("NFKC", text)).strip()
        if self.optional and self.type != "yesno" and normalise(cleaned) in SKIP_WORDS:
            return None
        try:
            return _PARSERS[self.type](self, cleaned, today)
        except Invalid as exc:
            raise Invalid(self.error or str(exc)) from None

    def display(self, value: Any, masked: bool = False) -> str:
        if value is None:
            return "（未填）"
        if self.type == "yesno":
            return self.yes_label if value else self.no_label
        if self.type == "integer":
            return f"{value}{self.unit}"
        # Masked for cards in group chats: a phone number may hide in any free text too.
        return mask_phone(str(value)) if masked else str(value)

    def choices_hint(self) -> list[str]:
        return list(self.options) if self.type == "choice" else []


def _text(f: Field, text: str, today: date) -> str:
    value = re.sub(r"\s+", " ", text)
    if not value:
        raise Invalid(f"请输入{f.label}。")
    if len(value) > f.max_length:
        raise Invalid(f"{f.label}请不超过{f.max_length}个字，请简短一些再发一次。")
    return value


def _integer(f: Field, text: str, today: date) -> int:
    number = read_count(text, unit_chars=3)
    low, high = f.min, f.max
    span = f"{low}到{high}之间的" if low is not None and high is not None else ""
    if number is None:
        raise Invalid(f"请回复{span}数字，例如：{low if low is not None else 1}")
    if (low is not None and number < low) or (high is not None and number > high):
        raise Invalid(f"请回复{span}数字。")
    return number


def _phone(f: Field, text: str, today: date) -> str:
    digits = re.sub(r"[\s\-()（）]", "", text)
    digits = re.sub(r"^(\+?86)(?=1\d{10}$)", "", digits)
    if not re.fullmatch(r"1[3-9]\d{9}", digits):
        raise Invalid("手机号应为11位数字，请重新输入。")
    return digits


def _choice(f: Field, text: str, today: date) -> str:
    folded = normalise(text)
    if (number := as_choice(folded, len(f.options))) is not None:
        return f.options[number - 1]
    for option in f.options:
        head = normalise(re.split(r"[（(]", option)[0])
        if folded in (normalise(option), head) or (head and head in folded):
            return option
    listed = "\n".join(f"{n}. {o}" for n, o in enumerate(f.options, 1))
    raise Invalid(f"请回复序号选择：\n{listed}")


_FULL_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?")
_SHORT_DATE = re.compile(r"(\d{1,2})[-/.月](\d{1,2})[日号]?")
_MONTH = re.compile(r"(\d{4})[-/.年](\d{1,2})月?(份)?")
_RELATIVE = {"今天": 0, "今日": 0, "明天": 1, "后天": 2, "昨天": -1, "前天": -2}


def _date(f: Field, text: str, today: date) -> str:
    folded = text.replace(" ", "")
    example = "2026-03-01 或 3月1日" + ("，也可以只写月份，例如 2026年3月" if f.allow_month else "")
    wrong = Invalid(f"没看懂这个日期，请按 {example} 的样子写。")
    day: date | None = None
    try:
        if folded in _RELATIVE:
            day = today + timedelta(days=_RELATIVE[folded])
        elif m := _FULL_DATE.fullmatch(folded):
            day = date(int(m[1]), int(m[2]), int(m[3]))
        elif m := _SHORT_DATE.fullmatch(folded):
            day = date(today.year, int(m[1]), int(m[2]))
            # 「12月20日」 said in January is last year's when the date must be past.
            if f.past and day > today:
                day = day.replace(year=today.year - 1)
            elif f.future and day < today:
                day = day.replace(year=today.year + 1)
        elif f.allow_month and (m := _MONTH.fullmatch(folded)):
            month = date(int(m[1]), int(m[2]), 1)
            if f.past and month > today:
                raise Invalid("这个月份还没到，请再看一下。")
            return month.strftime("%Y-%m")
    except ValueError:
        raise wrong from None
    if day is None:
        raise wrong
    if f.past and day > today:
        raise Invalid("这个日期还没到，请再看一下。")
    if f.future and day < today:
        raise Invalid("这个日期已经过了，请再看一下。")
    return day.isoformat()


def _address(f: Field, text: str, today: date) -> str:
    value = re.sub(r"\s+", " ", text)
    if len(value) < 3 or len(value) > f.max_length:
        raise Invalid("请写清楼号和房间号，或详细地址，例如：3号楼2单元501。")
    if not (re.search(r"\d", value) or any(c in _ADDRESS_WORDS for c in value)):
        raise Invalid("请写清楼号和房间号，或详细地址，例如：3号楼2单元501。")
    return value


def _yesno(f: Field, text: str, today: date) -> bool:
    folded = normalise(text)
    if folded in YES_WORDS or folded == normalise(f.yes_label):
        return True
    if folded in NO_WORDS or folded == normalise(f.no_label):
        return False
    raise Invalid(f"请回复「{f.yes_label}」或「{f.no_label}」。")


_PARSERS: dict[str, Callable[[Field, str, date], Any]] = {
    "text": _text,
    "integer": _integer,
    "phone": _phone,
    "choice": _choice,
    "date": _date,
    "address": _address,
    "yesno": _yesno,
}
