"""Search quality on the held-out evaluation cases, overrides, typos and the decision."""

from __future__ import annotations

import copy
import dataclasses
import textwrap
from pathlib import Path

import pytest

from handlers.knowledge import (
    EvalCase,
    KnowledgeBase,
    Scored,
    cross_validate,
    evaluate,
    format_report,
    load_eval_cases,
)
from handlers.knowledge.chat import load_kb
from handlers.knowledge.retrieval import Tuning, decide
from handlers.knowledge.text import Rewriter, char_ngrams, normalize, plain_question

KB = Path(__file__).resolve().parents[2] / "content" / "kb"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_kb([KB.parent])  # the service's own loader: shared with the app's tests


@pytest.fixture(scope="module")
def cases(kb: KnowledgeBase) -> list[EvalCase]:
    return load_eval_cases([KB], known_ids=kb.entries.keys())


# The product's target for both figures (held-out top-1 and out-of-scope decline); measured
# 0.901 and 0.951. Never tune on "test": a change that fails here is judged on tune and cv.
TARGET = 0.90


def test_held_out_accuracy_and_decline_rate(kb: KnowledgeBase, cases: list[EvalCase]) -> None:
    report = evaluate(kb, cases, "test")
    # Plain numbers in the asserts: pytest would otherwise print the whole report, failing
    # held-out messages included, and nobody should tune on those.
    accuracy, decline_rate, summary = report.accuracy, report.decline_rate, format_report(report)
    assert report.in_scope >= 100 and report.out_of_scope >= 20
    assert accuracy >= TARGET, summary
    assert decline_rate >= TARGET, summary


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("公会会费交多少", "enrol.dues_amount"),
        ("汇费交多少", "enrol.dues_amount"),
        ("怎么加入公会", "enrol.how_to_apply"),
        ("老板拖欠工资咋整", "labour.wage_arrears"),
        ("被炒鱿鱼了能要补偿吗", "labour.dismissal"),
    ],
)
def test_typos_and_synonyms_find_the_entry(kb: KnowledgeBase, text: str, expected: str) -> None:
    match = kb.search(text)
    assert match.decision != "none"
    assert expected in [c.entry.id for c in match.candidates], match


@pytest.mark.parametrize("text", ["asdfghjkl", "的的的", "。。。", "今天天气怎么样", "🙂"])
def test_nonsense_is_declined(kb: KnowledgeBase, text: str) -> None:
    match = kb.search(text)
    assert match.decision == "none"
    assert match.candidates == () and match.entry is None


def test_messages_like_those_not_ours_are_declined_despite_a_shared_word(
    kb: KnowledgeBase,
) -> None:
    # 端午, 国庆 and 材料 are words of entries (holiday overtime, the papers an injury claim
    # needs); what the messages are about is what decline.txt is about (none is a line of it).
    not_ours = ["端午节带孩子去哪玩", "国庆去哪旅游", "小孩转学要准备什么材料"]
    assert all(kb.search(text).decision == "none" for text in not_ours)
    for text in ["周末加班给多少钱", "国庆加班工资怎么算", "工伤认定要啥材料"]:
        assert kb.search(text).decision == "answer", text
    unlearnt = KnowledgeBase(kb.entries, kb.analyzer, kb.tuning, topic_words=kb.topic_words)
    assert all(unlearnt.search(text).decision != "none" for text in not_ours)
    # Re-ordering by the classifier switched off, its declining stays on.
    unordered = copy.copy(kb)
    unordered.tuning = dataclasses.replace(kb.tuning, classifier=0.0)
    assert all(unordered.search(text).decision == "none" for text in not_ours)


def test_an_asked_question_is_answered(kb: KnowledgeBase) -> None:
    match = kb.search("老板拖了三个月工资咋整")
    assert match.decision == "answer"
    assert match.entry is not None and match.entry.id == "labour.wage_arrears"
    assert match.candidates[0].score >= kb.tuning.answer_at


def test_override_folder_replaces_and_adds_entries(tmp_path: Path) -> None:
    local = tmp_path / "kb"
    local.mkdir()
    (local / "local.toml").write_text(
        textwrap.dedent(
            """
            [[entry]]
            id = "labour.wage_arrears"
            category = "legal"
            title = "被拖欠工资怎么办"
            questions = ["老板拖了三个月工资咋整"]
            answer = "本地工会的欠薪答复"
            source = "《中华人民共和国劳动合同法》第三十条"
            related = ["local.canteen"]

            [[entry]]
            id = "local.canteen"
            category = "enrolment"
            title = "职工食堂几点开饭"
            questions = ["食堂什么时候开饭", "午饭几点"]
            answer = "职工食堂十一点半开饭。"
            source = "《本会职工食堂管理办法》第三条"
            """
        ),
        encoding="utf-8",
    )
    (local / "synonyms.toml").write_text('[typos]\n"饭堂" = "食堂"\n', encoding="utf-8")
    kb = KnowledgeBase.load([KB, local])
    assert kb.entries["labour.wage_arrears"].answer == "本地工会的欠薪答复"
    assert kb.entries["labour.wage_arrears"].followup is None  # replaced whole, not merged
    match = kb.search("饭堂几点开饭")
    assert match.entry is not None and match.entry.id == "local.canteen"
    assert kb.search("老板拖了三个月工资咋整").entry == kb.entries["labour.wage_arrears"]


def test_report_counts_and_hides_held_out_failures(kb: KnowledgeBase) -> None:
    cases = [
        EvalCase("老板拖了三个月工资咋整", "labour.wage_arrears", "test"),
        EvalCase("明天会下雨吗", "none", "test"),
        EvalCase("明天会下雨吗", "labour.wage_arrears", "test"),  # a deliberate failure
        EvalCase("会费交多少", "enrol.dues_amount", "tune"),
    ]
    report = evaluate(kb, cases, "test")
    assert (report.in_scope, report.out_of_scope) == (2, 1)
    assert report.accuracy == 0.5 and report.decline_rate == 1.0
    assert report.confusions == (("labour.wage_arrears", "none", 1),)
    assert "明天会下雨吗" not in format_report(report)
    assert "明天会下雨吗" in format_report(report, details=True)
    assert evaluate(kb, cases, None).in_scope == 3


def test_cross_validation_searches_each_question_without_it(kb: KnowledgeBase) -> None:
    chosen = (
        "enrol.dues_amount",
        "enrol.how_to_apply",
        "labour.wage_arrears",
        "labour.work_injury",
    )
    small = kb.with_entries({i: kb.entries[i] for i in chosen})
    questions = [EvalCase(q, i, "cv") for i in chosen for q in kb.entries[i].questions]
    with_them = evaluate(small, questions, None)
    report = cross_validate(small, folds=5)
    # Every question searched once, each in a knowledge base built without it: found less
    # often than when it is in there, but mostly found through the entry's other questions.
    assert (report.split, report.in_scope, report.out_of_scope) == ("cv", len(questions), 0)
    assert with_them.accuracy == 1.0
    assert 0.7 <= report.accuracy < 1.0
    # Entry by entry, the weakest first: where to add ways of asking.
    weakest = report.weakest(least=1)
    assert sorted(e for e, _, _ in weakest) == sorted(chosen)
    assert sum(n for _, _, n in weakest) == len(questions)
    assert sum(found for _, found, _ in weakest) == report.answered_right + report.chose_right
    shares = [found / n for _, found, n in weakest]
    assert shares == sorted(shares) and shares[0] < 1.0
    assert f"{weakest[0][0]}  {weakest[0][1]}/{weakest[0][2]}" in format_report(report)
    assert f"问法 {len(questions)} 条" in format_report(report)
    assert "范围外" not in format_report(report)
    with pytest.raises(ValueError):
        cross_validate(small, folds=1)


# ── the decision on its own ───────────────────────────────────────────────────────────────


def scored(kb: KnowledgeBase, *scores: float) -> list[Scored]:
    entries = list(kb.entries.values())
    return [Scored(entries[i], s) for i, s in enumerate(scores)]


def test_decide_answers_chooses_or_declines(kb: KnowledgeBase) -> None:
    t = Tuning(answer_at=0.5, answer_margin=0.1, none_below=0.3, choose_within=0.15)
    assert decide(scored(kb, 0.8, 0.5), t).decision == "answer"
    close = decide(scored(kb, 0.6, 0.55, 0.5, 0.49), t)
    assert close.decision == "choose" and len(close.candidates) == 3
    alone = decide(scored(kb, 0.4, 0.31), t)  # unsure, and the next is still in range
    assert alone.decision == "choose" and len(alone.candidates) == 2
    assert decide(scored(kb, 0.29, 0.2), t).decision == "none"
    assert decide([], t).decision == "none"


# ── text handling ─────────────────────────────────────────────────────────────────────────


def test_normalize_folds_width_case_and_punctuation() -> None:
    assert normalize("ＡＢＣ１２３，工资？！  没发") == "abc123 工资 没发"


def test_a_longer_way_of_saying_wins_over_a_shorter_one_starting_before_it(
    kb: KnowledgeBase,
) -> None:
    # 被炒 (a way of saying 辞退) starts one character before 炒鱿鱼 and used to win,
    # leaving 辞退鱿鱼.
    assert kb.analyzer.prepare("我被炒鱿鱼了") == "我辞退了"


def test_rewriter_fixes_typos_before_synonyms() -> None:
    rewrite = Rewriter({"公会": "工会"}, {"加入工会": "入会", "会员": "工会会员"})
    assert rewrite("怎么加入公会") == "怎么入会"
    assert rewrite("工会会员") == "工会会员"  # a variant inside a canonical word stays


def test_a_not_a_questions_keep_the_verb() -> None:
    assert plain_question("骑手交不交会费") == "骑手交会费"
    assert plain_question("这样合不合法") == "这样合法"


def test_modal_a_not_a_stays_apart_from_the_next_word() -> None:
    assert plain_question("能不能线上入会").split() == ["能", "线上入会"]
    assert plain_question("可不可以退会").split() == ["可", "退会"]
    assert plain_question("算不算工伤") == "算工伤"


def test_char_ngrams_keep_latin_runs_whole() -> None:
    assert char_ngrams("gongzi 拖欠") == ["gongzi", "拖欠"]
    assert char_ngrams("不发工资") == ["不发", "发工", "工资"]
