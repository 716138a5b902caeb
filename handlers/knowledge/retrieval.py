"""Finding the entry a worker's message asks about, and how sure we are.

A message is cut into jieba words (after its pinyin is read back as words, see pinyin.py,
and synonyms are rewritten; with the domain dictionary), character bigrams and single
characters; the characters still match through a typo or a word the dictionary lacks. It
is then matched, with BM25, against three views of every entry:

- each question (and the title) on its own: the entry scores as its best question;
- all its questions together: the ways people ask it, pooled;
- its answer: the words a worker may already know from it.

Each match is scaled by the message's own weight (about 1.0 when all its terms are found), and
the weighted sum by the total weight, so a score is between 0 and 1 whatever the length of the
message, and one set of thresholds decides for all messages. Last, all scores of a message are
scaled by the share of its characters the knowledge base uses at all: a question about fuel
prices or train tickets shares a 怎么 with many entries, but little else; and lowered by the
share of its words no entry uses (油价, 火车票, 好吃): a message made of such words is about
something the knowledge base does not cover, however many characters it shares with it.

Whether to answer at all is decided on that score, and by a linear classifier trained on all
the questions and on messages that are not ours (decline.txt; see classifier.py): a message it
places among the latter is declined, whatever words it shares with an entry (下周会不会降温
shares 降温 with the summer-heat entry). The classifier also re-orders the best few entries,
and so picks which one is answered: it tells apart neighbouring entries (overtime on a weekday
or at the weekend) better than word overlap does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from handlers.knowledge.classifier import EntryClassifier
from handlers.knowledge.content import (
    Entry,
    load_declines,
    load_dictionary,
    load_entries,
    load_synonyms,
    load_topic_words,
)
from handlers.knowledge.index import BM25Index
from handlers.knowledge.pinyin import PinyinReader
from handlers.knowledge.text import Analyzer, Rewriter, Terms

Decision = Literal["answer", "choose", "none"]

_TEMPLATE_TAG = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL)
# A character is familiar once this many texts (titles, questions, answers) use it; a single
# use may be a place or brand name in an example.
FAMILIAR_IN_TEXTS = 3


@dataclass(frozen=True)
class Tuning:
    """Weights and thresholds, set on the evaluation cases of the "tune" split and on the
    entries' own questions, each held out in turn (``unionbot kb eval --split cv``)."""

    # The best single question, by words; plus how much of that question the message covers,
    # so that of two questions containing the message the one saying little more wins.
    question_words: float = 0.9
    question_covered: float = 0.3
    # All questions of the entry together.
    entry_words: float = 0.45
    entry_bigrams: float = 1.3
    entry_chars: float = 0.3
    entry_chars_share: float = 0.6  # share of the message's characters found in them
    # The answer text.
    answer_words: float = 0.3
    answer_bigrams: float = 0.65
    # Decision on the best score (0…1) and the gap to the next entry.
    answer_at: float = 0.4  # answer when the best scores at least this …
    answer_margin: float = 0.08  # … and this much more than the next one
    # Nothing scoring below this is close enough: decline … Low, because what is not ours is
    # mostly told by the classifier (``decline_over``): a score bar high enough to turn away
    # 快递到哪了 also turned away long, chatty questions that are ours (我表弟在家具厂开电锯把
    # 手指头锯了一截…). With the classifier, 0.16 declines 2.4% of the entries' own questions
    # held out, against 4.2% at 0.22 without it.
    none_below: float = 0.16
    # … and for a message without a single word of the domain (no word of topic.txt, the
    # synonym table or the dictionary: 你叫什么名字, 加油站几点关门), which is rarely a
    # question for us, the bar is higher.
    none_below_off_topic: float = 0.35
    choose_within: float = 0.15  # offer the entries scoring this close to the best one
    max_choices: int = 3
    # Scores are lowered by this much times the share of the message's words no entry uses.
    unseen_words: float = 0.2
    # The classifier's standardised margin, times this, re-orders the entries BM25 found
    # (among the best ``reorder_among``).
    classifier: float = 0.04
    reorder_among: int = 8
    # A message the classifier places among those not ours (decline.txt) by more than this
    # (standardised margin over the best entry's) is declined, however many words it shares
    # with an entry: 下周会不会降温 shares 降温 with the summer-heat entry.
    decline_over: float = 1.0

    @property
    def total_weight(self) -> float:
        return (
            self.question_words
            + self.question_covered
            + self.entry_words
            + self.entry_bigrams
            + self.entry_chars
            + self.entry_chars_share
            + self.answer_words
            + self.answer_bigrams
        )


@dataclass(frozen=True)
class Scored:
    entry: Entry
    # BM25's 0…1, moved by the classifier (a clear favourite can end a little above 1)
    score: float


@dataclass(frozen=True)
class Match:
    """What to do with a message: answer with one entry, let the worker choose among a few
    (best first, usually two or three), or decline ("none", no candidates)."""

    decision: Decision
    candidates: tuple[Scored, ...]

    @property
    def entry(self) -> Entry | None:
        return self.candidates[0].entry if self.candidates else None


class KnowledgeBase:
    """The entries with their indexes; immutable once built, so one instance may serve many
    requests, and a reload builds a new one."""

    def __init__(
        self,
        entries: dict[str, Entry],
        analyzer: Analyzer,
        tuning: Tuning = Tuning(),
        *,
        topic_words: Collection[str] = (),
        declines: Sequence[str] = (),
    ) -> None:
        self.entries = entries
        self.declines = tuple(declines)
        self.analyzer = analyzer
        self.tuning = tuning
        self.topic_words = tuple(topic_words)
        # The domain's own words, cut the way a message is.
        self._topic = frozenset(w for text in topic_words for w in analyzer.terms(text).words)
        self._order = list(entries.values())  # entry number → entry
        self._question_entry: list[int] = []  # question number → entry number
        question_words: list[list[str]] = []
        question_terms: list[Terms] = []
        # The answers first: their words are the ones pinyin in a question may spell.
        answers = [
            analyzer.terms(entry.title + " " + _TEMPLATE_TAG.sub(" ", entry.answer))
            for entry in self._order
        ]
        uses = Counter(word for t in answers for word in set(t.words))
        uses.update(self._topic)
        latin = (word for t in answers for word in t.words if word.isascii())
        self._pinyin = PinyinReader(uses, keep=latin)
        pooled: list[Terms] = []
        char_uses: Counter[str] = Counter()
        for number, entry in enumerate(self._order):
            for question in (entry.title, *entry.questions):
                terms = analyzer.terms(question, self._pinyin)
                question_terms.append(terms)
                self._question_entry.append(number)
                question_words.append(terms.words)
                char_uses.update(set(terms.chars))
            pooled.append(analyzer.terms(" ".join((entry.title, *entry.questions)), self._pinyin))
            char_uses.update(set(answers[number].chars))
        self._questions = BM25Index(question_words)
        # Each entry's first question number (an entry's questions are numbered in a row).
        self._first_question = np.searchsorted(self._question_entry, np.arange(len(self._order)))
        self._classifier = EntryClassifier(
            question_terms,
            self._question_entry,
            declines=[analyzer.terms(text, self._pinyin) for text in self.declines],
        )
        self._entry_words = BM25Index([t.words for t in pooled])
        self._entry_bigrams = BM25Index([t.bigrams for t in pooled])
        self._entry_chars = BM25Index([t.chars for t in pooled])
        self._answer_words = BM25Index([t.words for t in answers])
        self._answer_bigrams = BM25Index([t.bigrams for t in answers])
        self._familiar = frozenset(c for c, n in char_uses.items() if n >= FAMILIAR_IN_TEXTS)
        # An entry with a follow-up question, and the entries its answers lead to.
        self._families = {
            entry.id: {entry.id, *(target for _, target in entry.followup.choices)}
            for entry in self._order
            if entry.followup is not None
        }
        self._vocabulary = frozenset(word for t in (*pooled, *answers) for word in t.words)

    @classmethod
    def load(cls, folders: Sequence[Path], tuning: Tuning = Tuning()) -> KnowledgeBase:
        """Entries, synonyms and dictionary of the folders (later ones override), indexed."""
        entries = load_entries(folders)
        synonyms = load_synonyms(folders)
        rewriter = Rewriter(synonyms.typos, synonyms.variants)
        dictionary = load_dictionary(folders)
        topic = {
            *synonyms.variants.values(),
            *(w.word for w in dictionary),
            *load_topic_words(folders),
        }
        analyzer = Analyzer(rewriter, dictionary)
        declines = load_declines(folders, entries, same=analyzer.prepare)
        return cls(entries, analyzer, tuning, topic_words=topic, declines=declines)

    def with_entries(self, entries: dict[str, Entry]) -> KnowledgeBase:
        """Other entries, searched with the same words, dictionary, declines and tuning."""
        return KnowledgeBase(
            entries,
            self.analyzer,
            self.tuning,
            topic_words=self.topic_words,
            declines=self.declines,
        )

    def search(self, text: str) -> Match:
        terms = self.analyzer.terms(text, self._pinyin)
        # A message without a word of the domain must score higher to be answered.
        on_topic = not self._topic.isdisjoint(terms.words)
        ranked, closest = self._rank(terms)
        return self._within_family(decide(ranked, self.tuning, on_topic=on_topic, closest=closest))

    def _within_family(self, match: Match) -> Match:
        """Unsure only between an entry with a follow-up question and the entries that
        question leads to (拖欠工资: 在职 / 已离职)? Then answer the general entry: its
        answer carries the core fact at once, and its question does the choosing."""
        if match.decision != "choose":
            return match
        ids = {s.entry.id for s in match.candidates}
        for parent, family in self._families.items():
            if ids <= family:
                listed = next((s for s in match.candidates if s.entry.id == parent), None)
                top = match.candidates[0].score
                return Match("answer", (listed or Scored(self.entries[parent], top),))
        return match

    def _rank(self, terms: Terms, limit: int = 5) -> tuple[list[Scored], float]:
        """The best entries for a message with their scores, best first, and the best BM25
        score (before the classifier's re-ordering); none when the classifier places the
        message among those to decline."""
        t = self.tuning
        scores = np.zeros(len(self._order))
        questions = self._questions.coverage(terms.words)
        if questions is not None:
            by_question = (
                t.question_words * np.minimum(questions.bm25, 1.0)
                + t.question_covered * questions.document
            )
            # An entry scores as its best question (its questions are numbered in a row).
            scores += np.maximum.reduceat(by_question, self._first_question)
        for index, query, weight, share_weight in (
            (self._entry_words, terms.words, t.entry_words, 0.0),
            (self._entry_bigrams, terms.bigrams, t.entry_bigrams, 0.0),
            (self._entry_chars, terms.chars, t.entry_chars, t.entry_chars_share),
            (self._answer_words, terms.words, t.answer_words, 0.0),
            (self._answer_bigrams, terms.bigrams, t.answer_bigrams, 0.0),
        ):
            match = index.coverage(query)
            if match is not None:
                scores += weight * np.minimum(match.bm25, 1.0) + share_weight * match.query
        scale = self._familiarity(terms) * (1 - t.unseen_words * self._unseen(terms))
        scale /= t.total_weight
        count = min(max(limit, t.reorder_among), len(scores))
        top = np.argpartition(-scores, count - 1)[:count] if count else np.arange(0)
        best = sorted(
            ((int(entry), float(scores[entry])) for entry in top if scores[entry] > 0),
            key=lambda item: (-item[1], item[0]),
        )
        if not best:
            return [], 0.0
        closest = best[0][1] * scale
        # Always asked: a re-ordering weight of 0 must not also stop the declining.
        margins = self._classifier.margins(terms)
        if margins is not None:
            best_entry = float(margins.entries.max())
            if margins.decline is not None and margins.decline - best_entry > t.decline_over:
                return [], 0.0
            best = [
                (entry, score * scale + t.classifier * float(margins.entries[entry]))
                for entry, score in best
            ]
            best.sort(key=lambda item: item[1], reverse=True)
        else:
            best = [(entry, score * scale) for entry, score in best]
        return [Scored(self._order[entry], score) for entry, score in best[:limit]], closest

    def _unseen(self, terms: Terms) -> float:
        """The share of the message's words that no entry uses."""
        words = set(terms.words)
        return len(words - self._vocabulary) / len(words) if words else 0.0

    def _familiarity(self, terms: Terms) -> float:
        """The share of the message's characters (and Latin words) the knowledge base uses."""
        chars = set(terms.chars)
        return len(chars & self._familiar) / len(chars) if chars else 0.0


def decide(
    ranked: Sequence[Scored],
    tuning: Tuning,
    *,
    on_topic: bool = True,
    closest: float | None = None,
) -> Match:
    """Sure → answer; a few close entries, or one not quite sure → choose; nothing → none.
    ``closest`` is the best score before re-ordering, when it differs from the first's."""
    none_below = tuning.none_below if on_topic else tuning.none_below_off_topic
    best = closest if closest is not None else ranked[0].score if ranked else 0.0
    if not ranked or best < none_below:
        return Match("none", ())
    top = ranked[0].score
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    if top >= tuning.answer_at and top - runner_up >= tuning.answer_margin:
        return Match("answer", (ranked[0],))
    close = tuple(
        s
        for s in ranked[: tuning.max_choices]
        if s.score >= none_below and top - s.score <= tuning.choose_within
    )
    if len(close) == 1 and len(ranked) > 1 and ranked[1].score >= none_below:
        close += (ranked[1],)  # one option alone reads like an answer; offer the next too
    return Match("choose", close)
