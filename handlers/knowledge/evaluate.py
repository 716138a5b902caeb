"""How well the search does on the evaluation cases, and how fast it is.

Tune on the "tune" split only. The "test" split is held out: its report shows the aggregate
figures and not the failing messages, so nobody tunes on them by accident.

The entries' own questions make a second, larger tuning set ("cv"): each question is held out
in turn (one fold in five), searched in a knowledge base built without it, and expected to
find its entry. It tells how well a new way of asking is understood, and long, chatty
messages, rare in the evaluation cases, are common there.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from handlers.knowledge.content import NO_ENTRY, EvalCase, load_eval_cases
from handlers.knowledge.retrieval import KnowledgeBase, Match

HELD_OUT = "test"
CROSS_VALIDATION = "cv"


@dataclass(frozen=True)
class Failure:
    text: str
    expect: str
    decision: str
    got: str  # the top entry's id, or "none"


@dataclass(frozen=True)
class EvalReport:
    split: str | None
    in_scope: int  # cases that expect an entry
    out_of_scope: int  # cases that expect "none"
    answered_right: int  # decision "answer" with the expected entry
    chose_right: int  # decision "choose" with the expected entry first
    chose_listed: int  # decision "choose" with the expected entry offered, but not first
    answered: int  # in-scope cases answered (right or wrong)
    chose: int  # in-scope cases given a choice
    declined_right: int  # out-of-scope cases declined
    # Kept out of repr(): a failing assert that prints the report must not show held-out texts.
    confusions: tuple[tuple[str, str, int], ...] = field(repr=False)  # most frequent first
    failures: tuple[Failure, ...] = field(repr=False)
    asked: tuple[tuple[str, int], ...] = field(repr=False, default=())  # cases per entry

    def weakest(self, *, least: int = 5) -> list[tuple[str, int, int]]:
        """Entries asked at least ``least`` times, by the share found top-1, lowest first:
        (id, found, asked). Where to add ways of asking, or to tell two entries apart."""
        missed = Counter(f.expect for f in self.failures if f.expect != NO_ENTRY)
        rows = [(entry, n - missed[entry], n) for entry, n in self.asked if n >= least]
        return sorted(rows, key=lambda row: (row[1] / row[2], row[0]))

    @property
    def accuracy(self) -> float:
        """Top-1: answered with the expected entry, or offered it first."""
        return _ratio(self.answered_right + self.chose_right, self.in_scope)

    @property
    def answer_accuracy(self) -> float:
        """Strict: answered with the expected entry."""
        return _ratio(self.answered_right, self.in_scope)

    @property
    def choose_accuracy(self) -> float:
        """Offered a choice with the expected entry first."""
        return _ratio(self.chose_right, self.in_scope)

    @property
    def answer_precision(self) -> float:
        """Of the direct answers, the right ones."""
        return _ratio(self.answered_right, self.answered)

    @property
    def answer_rate(self) -> float:
        return _ratio(self.answered, self.in_scope)

    @property
    def choose_rate(self) -> float:
        return _ratio(self.chose, self.in_scope)

    @property
    def decline_rate(self) -> float:
        """Out-of-scope messages declined."""
        return _ratio(self.declined_right, self.out_of_scope)

    @property
    def false_decline_rate(self) -> float:
        """In-scope messages declined."""
        return _ratio(self.in_scope - self.answered - self.chose, self.in_scope)


def evaluate(kb: KnowledgeBase, cases: Sequence[EvalCase], split: str | None) -> EvalReport:
    """Search every case of ``split`` (all cases when None) and count the outcomes."""
    chosen = [c for c in cases if split is None or c.split == split]
    return _report(split, ((kb, case) for case in chosen))


def cross_validate(kb: KnowledgeBase, folds: int = 5) -> EvalReport:
    """Every entry question held out once: fold k leaves out each entry's questions number k,
    k + folds, … (the title always stays) and searches them in a knowledge base built
    without them."""
    if folds < 2:
        raise ValueError("cross-validation needs at least two folds")
    return _report(CROSS_VALIDATION, _held_out(kb, folds))


def _held_out(kb: KnowledgeBase, folds: int) -> Iterator[tuple[KnowledgeBase, EvalCase]]:
    for fold in range(folds):
        kept, held = {}, []
        for entry in kb.entries.values():
            questions = entry.questions
            held += [
                EvalCase(q, entry.id, CROSS_VALIDATION, entry.origin)
                for q in questions[fold::folds]
            ]
            rest = tuple(q for i, q in enumerate(questions) if i % folds != fold)
            kept[entry.id] = dataclasses.replace(entry, questions=rest)
        without = kb.with_entries(kept)
        yield from ((without, case) for case in held)


def _report(split: str | None, searches: Iterable[tuple[KnowledgeBase, EvalCase]]) -> EvalReport:
    """Each case searched in its knowledge base, the outcomes counted."""
    counts: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    failures: list[Failure] = []
    asked: Counter[str] = Counter()
    for kb, case in searches:
        match = kb.search(case.text)
        outcome = _outcome(case, match)
        counts[outcome] += 1
        counts["cases"] += 1
        if case.expect != NO_ENTRY:
            asked[case.expect] += 1
            counts["in_scope"] += 1
            counts[match.decision] += 1
        if outcome in ("wrong", "chose_listed", "answered_none"):
            got = match.entry.id if match.entry else NO_ENTRY
            confusions[case.expect, got] += 1
            failures.append(Failure(case.text, case.expect, match.decision, got))
    return EvalReport(
        split=split,
        in_scope=counts["in_scope"],
        out_of_scope=counts["cases"] - counts["in_scope"],
        answered_right=counts["answered_right"],
        chose_right=counts["chose_right"],
        chose_listed=counts["chose_listed"],
        answered=counts["answer"],
        chose=counts["choose"],
        declined_right=counts["declined_right"],
        confusions=tuple((e, g, n) for (e, g), n in confusions.most_common()),
        failures=tuple(failures),
        asked=tuple(sorted(asked.items())),
    )


def _outcome(case: EvalCase, match: Match) -> str:
    if case.expect == NO_ENTRY:
        return "declined_right" if match.decision == "none" else "answered_none"
    if match.entry is not None and match.entry.id == case.expect:
        return "answered_right" if match.decision == "answer" else "chose_right"
    if match.decision == "choose" and any(s.entry.id == case.expect for s in match.candidates):
        return "chose_listed"  # not top-1, so it also counts as wrong below
    return "wrong"


def format_report(report: EvalReport, *, details: bool | None = None, limit: int = 20) -> str:
    """Plain text. ``details`` (confused pairs and failing messages) defaults to on except
    for the held-out "test" split."""
    if details is None:
        details = report.split != HELD_OUT
    if report.split == CROSS_VALIDATION:
        title = f"知识库评测（cv：条目自己的问法轮流留出）：问法 {report.in_scope} 条"
    else:
        title = (
            f"知识库评测（{report.split or '全部'}）：在范围内 {report.in_scope} 条，"
            f"范围外 {report.out_of_scope} 条"
        )
    lines = [
        title,
        f"  top-1 正确率（直接回答或候选第一）  {_pct(report.accuracy)}",
        f"  直接回答且正确                      {_pct(report.answer_accuracy)}"
        f"  ({report.answered_right})",
        f"  候选第一且正确                      {_pct(report.choose_accuracy)}"
        f"  ({report.chose_right})",
        f"  直接回答的准确率                    {_pct(report.answer_precision)}",
        f"  回答率 {_pct(report.answer_rate)}  候选率 {_pct(report.choose_rate)}"
        f"  误拒率 {_pct(report.false_decline_rate)}",
    ]
    if report.out_of_scope:
        lines.append(
            f"  范围外拒答率                        {_pct(report.decline_rate)}"
            f"  ({report.declined_right}/{report.out_of_scope})"
        )
    if details and report.confusions:
        lines.append("最常混淆（期望 → 实际，次数）：")
        lines += [f"  {e} → {g}  {n}" for e, g, n in report.confusions[:limit]]
    if details and (weakest := report.weakest()):
        lines.append("最难认出的条目（top-1 找对 / 问法数）：")
        lines += [f"  {e}  {found}/{n}  {_pct(found / n)}" for e, found, n in weakest[:10]]
    if details and report.failures:
        lines.append("未答对的问题：")
        lines += [
            f"  [{f.decision}] {f.text}  期望 {f.expect}，得到 {f.got}"
            for f in report.failures[:limit]
        ]
    return "\n".join(lines)


def bench(kb_folders: Sequence[Path], *, rounds: int = 3) -> dict[str, float]:
    """Start-up time (loading content, jieba's dictionary, building the index) and search
    latency over every evaluation text, after one warm-up pass."""
    started = time.perf_counter()
    kb = KnowledgeBase.load(kb_folders)
    startup = time.perf_counter() - started
    texts = [case.text for case in load_eval_cases(kb_folders)]
    for text in texts:  # warm-up: first calls fill jieba's and re's caches
        kb.search(text)
    timings: list[float] = []
    for _ in range(rounds):
        for text in texts:
            before = time.perf_counter_ns()
            kb.search(text)
            timings.append((time.perf_counter_ns() - before) / 1e6)
    timings.sort()
    return {
        "entries": float(len(kb.entries)),
        "queries": float(len(timings)),
        "startup_s": startup,
        "p50_ms": _percentile(timings, 0.50),
        "p99_ms": _percentile(timings, 0.99),
        "max_ms": timings[-1] if timings else 0.0,
        "mean_ms": statistics.fmean(timings) if timings else 0.0,
    }


def format_bench(result: dict[str, float]) -> str:
    return (
        f"知识库 {int(result['entries'])} 条，启动 {result['startup_s']:.2f} s"
        f"（含 jieba 词典加载）；检索 {int(result['queries'])} 次："
        f"p50 {result['p50_ms']:.3f} ms，p99 {result['p99_ms']:.3f} ms，"
        f"最慢 {result['max_ms']:.3f} ms，平均 {result['mean_ms']:.3f} ms"
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _pct(value: float) -> str:
    return f"{value * 100:5.1f}%"
