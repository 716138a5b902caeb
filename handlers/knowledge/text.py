"""Turning a message into search terms: normalisation, synonym rewriting, words and n-grams.

Questions in the knowledge base and the worker's message go through the same steps, so the
two sides always meet on the same spelling.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jieba

from bot.text import fold_digits

# Runs of anything but letters and digits (punctuation, symbols, emoji, spaces, "_").
_NOT_WORD = re.compile(r"[\W_]+")
# "A 不 A" questions (交不交, 合不合法, 可以不可以) ask about A: keep A, so the verb matches.
# Modal "A 不 A" (能不能, 会不会, 可不可以 …) only asks whether: keep A apart, so that it does not
# glue onto the next word (能不能线上入会 must not become 能线上入会 and be cut into 能线).
_MODAL_A_NOT_A = re.compile(r"(可)[不没]可以|([能会要是有行该用])[不没]\2")
_A_NOT_AB = re.compile(r"(\w)[不没]\1(\w)")
_AB_NOT_AB = re.compile(r"(\w\w)[不没]\1")
_A_NOT_A = re.compile(r"(\w)[不没]\1")
# Latin letters and digits stay whole (pinyin, "12351"); Chinese is cut into n-grams.
_LATIN_OR_CJK = re.compile(r"[a-z0-9]+|[^\sa-z0-9]+")

# Function words, pronouns, modal verbs, filler, and question words: none says what a message
# is about. Question words match nearly every entry and made "油价什么时候降" look half
# answered; they still count through the character n-grams, which keep 会费交多少 apart from
# 会费怎么交.
STOPWORDS = frozenset(
    """
    的 地 得 了 吗 呢 啊 呀 吧 哦 嘛 么 哈 啦 嗯 噢 喔 诶 哎 唉 呗 咧 哇 着 过 就 都 也 还 又 再 才
    和 与 及 或 跟 把 被 给 让 对 向 从 在 是 有 个 些 点 下 上
    我 你 您 他 她 它 俺 咱 我们 你们 他们 咱们 俺们 大家 自己 人家 这 那 这个 那个 这样 那样
    这么 那么 一个 一下 一些 我要 我想 想要 我该 请问 请 问下 问问 问一下 想问 想知道 知道 麻烦
    谢谢 然后 但是 可是 而且 因为 所以 如果 就是 还是 或者 现在 已经 一直 真的 到底 究竟 其实
    能 能不能 可以 可不可以 会 会不会 要 要不要 需要 应该 该 得 是不是 是否 有没有 行不行
    怎么 什么 多少 哪里 哪儿 哪 为什么 什么时候 多久 几 谁 如何 怎么办 怎样 怎么样
    """.split()
)

# jieba would otherwise log its dictionary loading at DEBUG level straight to stderr.
_JIEBA_LOG_LEVEL = logging.WARNING


def normalize(text: str) -> str:
    """Full-width → half-width (NFKC), digits of any script → 0-9, lower case, punctuation and
    spaces → one space."""
    folded = fold_digits(unicodedata.normalize("NFKC", text)).lower()
    return _NOT_WORD.sub(" ", folded).strip()


def plain_question(text: str) -> str:
    """交不交 → 交, 合不合法 → 合法, 可以不可以 → 可以, 能不能走 → 能 走."""
    text = _MODAL_A_NOT_A.sub(lambda m: f" {m.group(1) or m.group(2)} ", text)
    text = _A_NOT_AB.sub(r"\1\2", text)
    text = _AB_NOT_AB.sub(r"\1", text)
    return _A_NOT_A.sub(r"\1", text)


class Rewriter:
    """Rewrites variants to canonical words, one table after the other (typos first, so that a
    misspelt variant is then rewritten like the variant). Within a table the longest match
    wins and a rewritten word is not rewritten again."""

    def __init__(self, *tables: Mapping[str, str]) -> None:
        self._passes = [_Pass(table) for table in tables if table]

    def __call__(self, text: str) -> str:
        for rewrite in self._passes:
            text = rewrite(text)
        return text


class _Pass:
    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = {variant: _follow(table, variant) for variant in table}
        # Canonical words match themselves, so that a shorter variant inside one (会员 in
        # 工会会员) cannot break it up.
        words = sorted(set(self.table) | set(self.table.values()), key=lambda w: (-len(w), w))
        self._pattern = re.compile("|".join(map(re.escape, words)))

    def __call__(self, text: str) -> str:
        table = self.table
        return self._pattern.sub(lambda m: table.get(m.group(), m.group()), text)


def _follow(table: Mapping[str, str], variant: str) -> str:
    """The end of a chain such as a typo of a variant (社宝 → 社保 → 社会保险)."""
    word, seen = table[variant], {variant}
    while word in table and word not in seen:
        seen.add(word)
        word = table[word]
    return word


def char_ngrams(text: str, n: int = 2) -> list[str]:
    """Character n-grams of each Chinese run (a shorter run is kept whole) and whole Latin or
    digit runs. They find a question despite a typo or a word the dictionary lacks."""
    grams: list[str] = []
    for run in _LATIN_OR_CJK.findall(text):
        if run.isascii() or len(run) <= n:
            grams.append(run)
        else:
            grams.extend(run[i : i + n] for i in range(len(run) - n + 1))
    return grams


@dataclass(frozen=True)
class DictionaryWord:
    """A line of a jieba user dictionary: the word, and optionally its frequency and tag."""

    word: str
    freq: int | None
    tag: str | None


class Terms(NamedTuple):
    """A text cut three ways: jieba words, character bigrams, single characters."""

    words: list[str]
    bigrams: list[str]
    chars: list[str]


class Analyzer:
    """Normalises, rewrites synonyms and cuts text into words (jieba) and characters."""

    def __init__(
        self,
        rewriter: Rewriter,
        words: Sequence[DictionaryWord] = (),
        *,
        stopwords: frozenset[str] = STOPWORDS,
    ) -> None:
        self.rewrite = rewriter
        self.stopwords = stopwords
        jieba.setLogLevel(_JIEBA_LOG_LEVEL)
        # An instance of our own, not jieba's global one: another part of the process may
        # load other words, and a reload must start from a clean dictionary.
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()  # eagerly, so the first message does not pay for it
        for entry in words:
            # Without a frequency jieba works out one just high enough to keep the word whole.
            self._jieba.add_word(entry.word, entry.freq, entry.tag)

    def prepare(self, text: str, reader: Callable[[str], str] | None = None) -> str:
        """Normalised, pinyin read as words (by ``reader``), 交不交 → 交, synonyms rewritten."""
        folded = normalize(text)
        return self.rewrite(plain_question(reader(folded) if reader else folded))

    def words(self, prepared: str) -> list[str]:
        return [
            w for w in self._jieba.lcut(prepared) if not w.isspace() and w not in self.stopwords
        ]

    def terms(self, text: str, reader: Callable[[str], str] | None = None) -> Terms:
        prepared = self.prepare(text, reader)
        return Terms(self.words(prepared), char_ngrams(prepared, 2), char_ngrams(prepared, 1))
