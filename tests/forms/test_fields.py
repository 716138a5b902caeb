"""How answers typed on a phone are read: each field type, its re-ask, and skipping."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from handlers.forms import Field, Invalid

TODAY = date(2026, 11, 22)


def field(type_: str, **options: Any) -> Field:
    return Field(name="f", label="项目", type=type_, prompt="?", **options)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("13812345678", "13812345678"),
        ("138 1234 5678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 13812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),  # full-width digits from a phone keyboard
    ],
)
def test_phone_numbers_in_the_ways_people_type_them(text: str, value: str) -> None:
    assert field("phone").parse(text, TODAY) == value


@pytest.mark.parametrize("text", ["1381234567", "23812345678", "138123456789", "电话"])
def test_wrong_phone_numbers_get_the_helpful_reask(text: str) -> None:
    with pytest.raises(Invalid, match="手机号应为11位数字，请重新输入"):
        field("phone").parse(text, TODAY)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2026-11-25", "2026-11-25"),
        ("2026年3月1日", "2026-03-01"),
        ("3月1日", "2026-03-01"),
        ("12/1", "2026-12-01"),
        ("明天", "2026-11-23"),
        ("昨天", "2026-11-21"),
    ],
)
def test_dates(text: str, value: str) -> None:
    assert field("date").parse(text, TODAY) == value


def test_dates_in_the_past_or_future_and_months() -> None:
    since = field("date", past=True, allow_month=True)
    assert since.parse("12月20日", TODAY) == "2025-12-20"  # not yet this year: last year's
    assert since.parse("2026年3月", TODAY) == "2026-03"
    with pytest.raises(Invalid, match="还没到"):
        since.parse("2027-01-01", TODAY)
    with pytest.raises(Invalid, match="没看懂"):
        since.parse("2026-02-30", TODAY)
    pickup = field("date", future=True)
    assert pickup.parse("1月5日", TODAY) == "2027-01-05"
    with pytest.raises(Invalid, match="已经过了"):
        pickup.parse("2026-11-01", TODAY)
    with pytest.raises(Invalid, match="没看懂"):
        pickup.parse("2026年3月", TODAY)  # a month alone is not enough here


def test_choices_by_number_text_or_its_head() -> None:
    urgency = field("choice", options=("一般（24小时内）", "较急（今天内）", "很急（马上要用）"))
    assert urgency.parse("3", TODAY) == "很急（马上要用）"
    assert urgency.parse("很急", TODAY) == "很急（马上要用）"
    assert urgency.parse("比较急，较急吧", TODAY) == "较急（今天内）"
    with pytest.raises(Invalid, match="请回复序号选择") as error:
        urgency.parse("4", TODAY)
    assert "1. 一般（24小时内）" in str(error.value)


def test_yes_no_with_its_own_words() -> None:
    consent = field("yesno", yes_label="同意", no_label="不同意")
    assert consent.parse("同意", TODAY) is True
    assert consent.parse("好的", TODAY) is True
    assert consent.parse("不同意", TODAY) is False
    with pytest.raises(Invalid, match="请回复「同意」或「不同意」"):
        consent.parse("再想想", TODAY)
    assert consent.display(True) == "同意"


def test_addresses_text_and_skipping() -> None:
    address = field("address")
    assert address.parse("3号楼2单元501", TODAY) == "3号楼2单元501"
    assert address.parse("幸福小区东门", TODAY) == "幸福小区东门"
    with pytest.raises(Invalid, match="楼号和房间号"):
        address.parse("家里", TODAY)
    name = field("text", max_length=5)
    with pytest.raises(Invalid, match="不超过5个字"):
        name.parse("一二三四五六", TODAY)
    note = field("text", optional=True)
    assert note.parse("跳过", TODAY) is None and note.display(None) == "（未填）"
    with pytest.raises(Invalid):
        field("text").parse("   ", TODAY)


def test_integers_with_units_and_chinese_numerals() -> None:
    quantity = field("integer", min=1, max=20, unit="盒")
    assert [quantity.parse(t, TODAY) for t in ("2", "2盒", "两盒", "十二", "二十")] == [
        2,
        2,
        2,
        12,
        20,
    ]
    for text in ("一百盒", "0", "1.5", "二三", "几盒"):
        with pytest.raises(Invalid, match="1到20之间"):
            quantity.parse(text, TODAY)
    assert quantity.display(3) == "3盒"
    assert field("integer", error="只要数字").parse("12,000", TODAY) == 12000


def test_masked_display_hides_phone_numbers_anywhere() -> None:
    assert field("phone").display("13812345678", masked=True) == "138****5678"
    assert field("text").display("打13812345678找我", masked=True) == "打138****5678找我"
