"""Text helpers every part of the bot shares: reading the numbers workers type.

Input methods offer ①②③ to a worker choosing a menu item, phones type full-width １２３, and
other scripts have digits of their own (٣, ፪). ``str.isdigit()`` is true for all of them while
``int()`` fails for most, so every number a worker sends is folded to ASCII digits first.
"""

from __future__ import annotations

import re
import unicodedata

# A regular-expression class for one digit as workers type it: \d (decimal digits of every
# script, １２３ ٣ included) and the number signs fold_digits reads (² ፪ ᧚ ①–⒇ ⓵ ⓿ ❶ ➀ …).
DIGIT = (
    r"[\d\u00b2\u00b3\u00b9\u1369-\u1371\u19da\u2070-\u2079\u2080-\u2089"
    r"\u2460-\u24ff\u2776-\u2793]"
)
# A choice or a count never has more digits than this (and int() refuses past 4,300 digits).
MAX_DIGITS = 9


class _DigitTable(dict[int, str]):
    """``str.translate`` table: a digit of any script (and an integer-valued number sign such
    as ① ❿ ⑳) to its ASCII digits; anything else to itself. Filled as characters are met."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = char
        digit = unicodedata.digit(char, None)
        if digit is not None:
            value = str(digit)
        elif unicodedata.category(char) == "No":  # ⑩ ❿ ⑳ …, but not ½ or CJK numerals
            number = unicodedata.numeric(char, None)
            if number is not None and number == int(number):
                value = str(int(number))
        self[code] = value
        return value


_DIGITS = _DigitTable()


def fold_digits(text: str) -> str:
    """①②③ ⓵ ❶ １２３ ٣ ፪ → 123 …; everything else as it was."""
    if text.isascii():
        return text
    return text.translate(_DIGITS)


def as_number(text: str) -> int | None:
    """The whole text as a whole number (digits of any script), or None."""
    digits = fold_digits(text.strip())
    if not digits or len(digits) > MAX_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits)


def as_choice(text: str, count: int) -> int | None:
    """A 1-based choice among ``count`` options (「2」「②」「２」), or None."""
    number = as_number(text)
    return number if number is not None and 1 <= number <= count else None


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000}
_NUMERALS = frozenset(_CN_DIGITS) | frozenset(_CN_UNITS)


def chinese_number(text: str) -> int | None:
    """A number written in Chinese numerals: 两 → 2, 十五 → 15, 二十 → 20, 一百零五 → 105,
    三千 → 3000; None for anything that is not one (二三, 十十, 一百盒)."""
    if not text or len(text) > 12 or not set(text) <= _NUMERALS:
        return None
    if len(text) > 1 and text[-2] in "百千万" and text[-1] in _CN_DIGITS:
        return None  # 「一万二」 is 12000 when said, 10002 when read: ask for digits instead
    total, section, digit = 0, 0, None
    last_unit = 10**9
    for char in text:
        if char in _CN_DIGITS:
            if digit is not None and digit != 0:
                return None  # 「二三」 is not a number
            digit = _CN_DIGITS[char]
            continue
        unit = _CN_UNITS[char]
        if unit == 10_000:
            section = (section + (digit or 0)) * unit
            total, section, digit, last_unit = total + section, 0, None, 10**9
            continue
        if unit >= last_unit:
            return None  # 「十百」, 「十十」
        if digit is None:
            if unit != 10 or section or total:
                return None  # a bare 百 or 千; only 十 stands for 一十
            digit = 1
        section += digit * unit
        digit, last_unit = None, unit
    return total + section + (digit or 0)


def read_count(text: str, unit_chars: int = 2) -> int | None:
    """A count as workers type it: 「3」「３盒」「③」「两盒」「三个月」「十五个」 — digits of any
    script or Chinese numerals, with at most ``unit_chars`` characters of a unit after them."""
    folded = fold_digits(text.strip()).replace(",", "").replace(" ", "")
    end = len(folded)
    while end and not (folded[end - 1].isdigit() or folded[end - 1] in _NUMERALS):
        end -= 1
    if not end or len(folded) - end > unit_chars:
        return None
    number = folded[:end]
    if number.isascii() and number.isdigit():
        return int(number) if len(number) <= MAX_DIGITS else None
    return chinese_number(number)


_STRIP = re.compile(r"[\s,.!?;:，。！？；：、~～…·'\"“”‘’()（）【】\[\]<>《》]+")


def normalise(text: str) -> str:
    """Fold full-width characters, case and punctuation so 「菜单！」 equals 「菜单」, and digits of
    any script so 「②」 equals 「2」."""
    return _STRIP.sub("", fold_digits(unicodedata.normalize("NFKC", text))).lower()
