"""Knowledge-base content: entries, evaluation cases and the synonym table, read from TOML.

Content may come from several folders. A deployment points at its own copy after the shipped
one: an entry with the same id in a later folder replaces the earlier one, new ids are added.
Everything is checked after the folders are merged, so a deployment may also fix a reference
that only makes sense together with its own entries. A mistake raises :class:`ContentError`
naming the file and the entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ContentError
from handlers.knowledge.text import DictionaryWord, normalize

SYNONYMS_FILE = "synonyms.toml"
DICTIONARY_FILE = "dict.txt"
TOPIC_FILE = "topic.txt"
DECLINE_FILE = "decline.txt"
EVAL_PREFIX = "eval_"
CATEGORIES = frozenset({"enrolment", "legal"})
SPLITS = frozenset({"tune", "test"})
NO_ENTRY = "none"  # what an evaluation case expects when the bot should decline

_ENTRY_KEYS = frozenset(
    {
        "id",
        "category",
        "title",
        "questions",
        "answer",
        "source",
        "related",
        "offer_cadre",
        "followup",
    }
)


# Builds the error for the entry being read, so helpers need not carry its path and id.
_Fail = Callable[[str], ContentError]


@dataclass(frozen=True)
class Followup:
    """A question asked after the answer; the worker's reply picks a more specific entry."""

    ask: str
    choices: tuple[tuple[str, str], ...]  # (reply, entry id), in file order

    def target(self, reply: str) -> str | None:
        key = normalize(reply)
        return next((entry_id for choice, entry_id in self.choices if choice == key), None)


@dataclass(frozen=True)
class Entry:
    id: str
    category: str
    title: str
    questions: tuple[str, ...]
    answer: str  # a Jinja2 plain-text template
    source: str
    related: tuple[str, ...] = ()
    offer_cadre: bool = False
    followup: Followup | None = None
    origin: Path = Path()  # the file it was read from, for messages about it


@dataclass(frozen=True)
class EvalCase:
    text: str
    expect: str  # an entry id, or NO_ENTRY
    split: str  # "tune" or "test"
    origin: Path = Path()


def entry_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.toml") if p.name != SYNONYMS_FILE and not _is_eval(p))


def eval_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.toml") if _is_eval(p))


def load_entries(folders: Sequence[Path]) -> dict[str, Entry]:
    """All entries of the folders, later folders overriding earlier ones by id, checked."""
    entries: dict[str, Entry] = {}
    for folder in _existing(folders):
        in_folder: dict[str, Entry] = {}
        for path in entry_files(folder):
            for entry in _read_entries(path):
                if entry.id in in_folder:
                    first = in_folder[entry.id].origin
                    raise ContentError(path, f"duplicate id, also in {first}", entry.id)
                in_folder[entry.id] = entry
        entries.update(in_folder)
    _check_references(entries)
    _check_questions(entries)
    return entries


def load_eval_cases(
    folders: Sequence[Path], *, known_ids: Collection[str] | None = None
) -> list[EvalCase]:
    """Evaluation cases of all folders, in order; with ``known_ids`` every expectation is
    checked against them."""
    expectable = None if known_ids is None else {*known_ids, NO_ENTRY}
    cases: list[EvalCase] = []
    for folder in _existing(folders):
        for path in eval_files(folder):
            for number, raw in enumerate(_array(path, _read_toml(path), "case"), 1):
                case = _eval_case(path, number, raw)
                if expectable is not None and case.expect not in expectable:
                    raise ContentError(path, f"case {number} expects unknown id {case.expect!r}")
                cases.append(case)
    return cases


@dataclass(frozen=True)
class Synonyms:
    """The rewriting tables of ``synonyms.toml``: misspellings and pinyin are fixed first, then
    every way of saying a thing becomes its canonical words."""

    typos: dict[str, str]  # misspelling or pinyin → right word
    variants: dict[str, str]  # way of saying → canonical words


def load_synonyms(folders: Sequence[Path]) -> Synonyms:
    """``[synonyms]`` maps canonical words to the ways people say them; ``[typos]`` maps a
    common misspelling to the right word. A later folder may point a variant elsewhere."""
    typos: dict[str, str] = {}
    variants: dict[str, str] = {}
    for folder in _existing(folders):
        path = folder / SYNONYMS_FILE
        if not path.is_file():
            continue
        data = _read_toml(path)
        unknown = set(data) - {"synonyms", "typos"}
        if unknown:
            raise ContentError(path, f"unknown tables {sorted(unknown)}")
        synonyms, misspellings = data.get("synonyms", {}), data.get("typos", {})
        if not isinstance(synonyms, dict) or not isinstance(misspellings, dict):
            raise ContentError(path, "[synonyms] and [typos] must be tables")
        for canonical, said in synonyms.items():
            if not isinstance(said, list) or not all(isinstance(v, str) for v in said):
                raise ContentError(path, f"synonyms of {canonical!r} must be a list of strings")
        for wrong, right in misspellings.items():
            if not isinstance(right, str):
                raise ContentError(path, f"typo {wrong!r} must map to a string")
        variants.update(_rewrites(path, ((v, c) for c, said in synonyms.items() for v in said)))
        typos.update(_rewrites(path, misspellings.items()))
    return Synonyms(typos=typos, variants=variants)


def _rewrites(path: Path, pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for variant, canonical in pairs:
        key, word = normalize(variant), normalize(canonical)
        if not key or not word:
            raise ContentError(path, f"empty word in {variant!r} → {canonical!r}")
        if table.get(key, word) != word:
            raise ContentError(path, f"{variant!r} is under both {table[key]!r} and {word!r}")
        if key != word:
            table[key] = word
    return table


def load_dictionary(folders: Sequence[Path]) -> list[DictionaryWord]:
    """Words of the jieba user dictionaries (``dict.txt``) of the folders, in order.

    A line is ``word [frequency] [tag]`` as jieba reads it; blank lines and ``#`` comments
    are skipped. Without a frequency the word is kept whole wherever it appears.
    """
    words: list[DictionaryWord] = []
    for path, number, parts in _word_lines(folders, DICTIONARY_FILE):
        if len(parts) > 3 or (len(parts) > 1 and not parts[1].isdigit()):
            raise ContentError(path, f"line {number}: expected 'word [frequency] [tag]'")
        freq = int(parts[1]) if len(parts) > 1 else None
        if freq == 0:  # jieba would force-split the word in its global HMM table
            raise ContentError(path, f"line {number}: frequency must be positive")
        tag = parts[2] if len(parts) > 2 else None
        words.append(DictionaryWord(normalize(parts[0]), freq, tag))
    return words


def load_topic_words(folders: Sequence[Path]) -> list[str]:
    """The domain's own words (``topic.txt`` of the folders, any number per line, ``#``
    comments): a message with none of them needs a higher score to be answered."""
    return [normalize(w) for _, _, parts in _word_lines(folders, TOPIC_FILE) for w in parts]


def load_declines(
    folders: Sequence[Path],
    entries: Mapping[str, Entry],
    *,
    same: Callable[[str], str] = normalize,
) -> list[str]:
    """Messages that are not ours to answer (``decline.txt`` of the folders, one per line,
    ``#`` comments): 车险咋买, 周末带娃去哪玩. The classifier learns them as one more class,
    and a message it places there is declined. A line that is also a question of one of the
    ``entries`` is refused: the same words cannot be both answered and declined. ``same``
    gives what is compared (the search's own rewriting, so that 入工会 and 入会 are one)."""
    questions = {
        same(q): entry.id for entry in entries.values() for q in (entry.title, *entry.questions)
    }
    declines: list[str] = []
    for path, number, parts in _word_lines(folders, DECLINE_FILE):
        text = " ".join(parts)
        owner = questions.get(same(text))
        if owner is not None:
            raise ContentError(path, f"line {number}: {text!r} is a question of {owner!r}")
        declines.append(text)
    return declines


def _word_lines(folders: Sequence[Path], name: str) -> Iterator[tuple[Path, int, list[str]]]:
    """The words of each non-blank line of the plain-text file ``name`` in the folders, in
    order, without ``#`` comments; with the file and line number for error messages."""
    for folder in _existing(folders):
        path = folder / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8-sig") as f:
            for number, line in enumerate(f, 1):
                parts = line.split("#", 1)[0].split()
                if parts:
                    yield path, number, parts


def _is_eval(path: Path) -> bool:
    return path.name.startswith(EVAL_PREFIX)


def _existing(folders: Sequence[Path]) -> list[Path]:
    # A deployment's content folder need not have a knowledge base of its own; but with no
    # folder at all the bot would silently know nothing, which is a configuration mistake.
    for folder in folders:
        if folder.exists() and not folder.is_dir():
            raise ContentError(folder, "not a folder")
    existing = [f for f in folders if f.is_dir()]
    if folders and not existing:
        raise ContentError(folders[0], "no knowledge-base folder found")
    return existing


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(path, f"not valid TOML: {exc}") from exc


def _array(path: Path, data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ContentError(path, f"'{key}' must be an array of tables ([[{key}]])")
    return items


def _read_entries(path: Path) -> Iterator[Entry]:
    data = _read_toml(path)
    for number, raw in enumerate(_array(path, data, "entry"), 1):
        entry_id = raw.get("id")
        if not isinstance(entry_id, str) or not entry_id.strip():
            raise ContentError(path, f"entry {number} has no id")
        yield _entry(path, entry_id, raw)


def _entry(path: Path, entry_id: str, raw: Mapping[str, Any]) -> Entry:
    def fail(message: str) -> ContentError:
        return ContentError(path, message, entry_id)

    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}")
    category = _text(raw, "category", fail)
    if category not in CATEGORIES:
        raise fail(f"category must be one of {sorted(CATEGORIES)}, not {category!r}")
    questions = _texts(raw, "questions", fail)
    if not questions:
        raise fail("no questions")
    offer_cadre = raw.get("offer_cadre", False)
    if not isinstance(offer_cadre, bool):
        raise fail("offer_cadre must be true or false")
    return Entry(
        id=entry_id,
        category=category,
        title=_text(raw, "title", fail),
        questions=questions,
        answer=_text(raw, "answer", fail).strip(),
        source=_text(raw, "source", fail),
        related=_texts(raw, "related", fail),
        offer_cadre=offer_cadre,
        followup=_followup(raw.get("followup"), fail),
        origin=path,
    )


def _eval_case(path: Path, number: int, raw: Mapping[str, Any]) -> EvalCase:
    text, expect, split = raw.get("text"), raw.get("expect"), raw.get("split")
    if set(raw) != {"text", "expect", "split"}:
        raise ContentError(path, f"case {number} must have exactly text, expect and split")
    if not isinstance(text, str) or not text.strip() or not isinstance(expect, str):
        raise ContentError(path, f"case {number} needs a text and an expected id")
    if split not in SPLITS:
        raise ContentError(path, f"case {number}: split must be one of {sorted(SPLITS)}")
    return EvalCase(text=text, expect=expect, split=str(split), origin=path)


def _followup(raw: object, fail: _Fail) -> Followup | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"ask", "choices"}:
        raise fail("followup must have 'ask' and 'choices' only")
    choices = raw.get("choices")
    if not isinstance(choices, dict) or not choices:
        raise fail("followup has no choices")
    pairs = []
    for reply, target in choices.items():
        if not isinstance(target, str) or not normalize(reply):
            raise fail(f"followup choice {reply!r} must name an entry id")
        pairs.append((normalize(reply), target))
    return Followup(ask=_text(raw, "ask", fail), choices=tuple(pairs))


def _text(raw: Mapping[str, Any], key: str, fail: _Fail) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise fail(f"'{key}' is missing or empty")
    return value.strip() if key != "answer" else value


def _texts(raw: Mapping[str, Any], key: str, fail: _Fail) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(f"'{key}' must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _check_references(entries: Mapping[str, Entry]) -> None:
    for entry in entries.values():
        targets = list(entry.related)
        if entry.followup is not None:
            targets += [target for _, target in entry.followup.choices]
        for target in targets:
            if target not in entries:
                raise ContentError(entry.origin, f"refers to unknown entry {target!r}", entry.id)
            if target == entry.id:
                raise ContentError(entry.origin, "refers to itself", entry.id)


def _check_questions(entries: Mapping[str, Entry]) -> None:
    # Compared after normalisation: the same question with other punctuation is the same,
    # and one question under two entries would make the search pick between them by chance.
    owner: dict[str, str] = {}
    for entry in entries.values():
        own: set[str] = set()
        for question in entry.questions:
            key = normalize(question)
            if key in own:
                raise ContentError(entry.origin, f"question {question!r} appears twice", entry.id)
            own.add(key)
        # The title is searched like a question; repeating it as a question is harmless.
        for key in own | {normalize(entry.title)}:
            other = owner.setdefault(key, entry.id)
            if other != entry.id:
                raise ContentError(
                    entry.origin, f"question {key!r} is also under {other!r}", entry.id
                )
