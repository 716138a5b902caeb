"""Pinyin typed by workers, read back as the knowledge base's words."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from handlers.knowledge.chat import load_kb
from handlers.knowledge.pinyin import PinyinReader

KB = Path(__file__).resolve().parents[2] / "content" / "kb"


@pytest.fixture(scope="module")
def reader() -> PinyinReader:
    uses = Counter({"工资": 5, "工作": 3, "劳动关系": 2, "调解": 2, "委员会": 1, "先予执行": 1})
    return PinyinReader(uses, keep=["app"])


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("gongzi 不发咋办", "工资 不发咋办"),  # in full
        ("tiao jie wei yuan hui 在哪", "调解委员会 在哪"),  # syllable by syllable
        ("tiaojie weiyuanhui", "调解委员会"),
        ("xianyu zhixing 怎么申请", "先予执行 怎么申请"),
        ("没有ht怎么证明ldgx", "没有ht怎么证明劳动关系"),  # by initials; ht spells no word here
        ("gz 被扣了", "工资 被扣了"),  # 工资 and 工作 share gz: the more used wins
        ("美团app闪退", "美团app闪退"),  # a Latin word the answers use
        ("打12351问", "打12351问"),
        ("kou 了三百", "kou 了三百"),  # one syllable is too little to tell
    ],
)
def test_pinyin_runs_become_words(reader: PinyinReader, text: str, read: str) -> None:
    assert reader(text) == read


def test_pinyin_questions_find_their_entry() -> None:
    kb = load_kb([KB.parent])
    for text, expected in [
        ("ldgx 怎么证明", "labour.prove_employment"),
        ("syq 超时了能要pc吗", "labour.probation_illegal"),
        ("fdjjr 有几天", "labour.statutory_holidays"),
        ("jinqiu zhuxue", "enrol.jinqiu_zhuxue"),
    ]:
        match = kb.search(text)
        assert match.entry is not None and match.entry.id == expected, text
