"""Pinyin in a message, read back as the knowledge base's own words.

Workers type pinyin when the input method gets in the way, in full (gongzi, tiao jie) or as
initials (ldgx for 劳动关系, syq for 试用期). The synonym table can list a few by hand; this
reads any of them: every word the knowledge base uses in its titles and answers is spelt in
pinyin, in full and by initials, and a run of Latin letters that spells such words is
replaced by them before the message is cut into words. Where two words share a spelling
(gz: 工资, 工作), the one more texts use wins.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# Runs of Latin words separated by spaces: "tiao jie wei yuan hui", "gz".
_LATIN_RUN = re.compile(r"[a-z]+(?: +[a-z]+)*")
_CJK_WORD = re.compile(r"[\u4e00-\u9fff]{2,}")
# Initials say little: at least two letters, and at most as many as a long word has.
INITIALS = range(2, 7)


class PinyinReader:
    """Built from the words of the knowledge base and how many texts use each."""

    def __init__(self, uses: Counter[str], *, keep: Iterable[str] = ()) -> None:
        # Imported here, as the classifier's LIBLINEAR: its phrase dictionary takes 0.4 s and
        # 50 MB, which only building a knowledge base needs, not every command importing us.
        from pypinyin import Style, lazy_pinyin

        spelt: dict[str, tuple[int, str]] = {}
        initials: dict[str, tuple[int, str]] = {}
        for word, count in uses.items():
            if not _CJK_WORD.fullmatch(word):
                continue
            for table, spelling in (
                (spelt, "".join(lazy_pinyin(word))),
                (initials, "".join(lazy_pinyin(word, style=Style.FIRST_LETTER))),
            ):
                if spelling.isascii() and spelling.isalpha():
                    best = table.get(spelling)
                    if best is None or (-count, word) < (-best[0], best[1]):
                        table[spelling] = (count, word)
        self._spelt = {s: w for s, (_, w) in spelt.items()}
        self._initials = {s: w for s, (_, w) in initials.items() if len(s) in INITIALS}
        self._longest = max(map(len, self._spelt), default=0)
        # Latin words the knowledge base itself uses (app, wifi) stay as they are.
        self._keep = frozenset(keep)

    def __call__(self, text: str) -> str:
        """``text`` normalised (lower case, single spaces); its pinyin runs read as words."""
        return _LATIN_RUN.sub(lambda m: self._read(m.group().split(" ")), text)

    def _read(self, tokens: list[str]) -> str:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            # The longest stretch of tokens that reads as words, spaces dropped
            # (gong shang ren ding → 工伤认定); else one token by its initials.
            for end in range(len(tokens), i, -1):
                joined = "".join(tokens[i:end])
                words = self._spelling(joined) if joined not in self._keep else None
                if words is not None:
                    out.append(words)
                    i = end
                    break
            else:
                token = tokens[i]
                out.append(self._initials.get(token, token) if token not in self._keep else token)
                i += 1
        return " ".join(out)

    def _spelling(self, letters: str) -> str | None:
        """The words whose full pinyin, one after the other, is exactly ``letters``; fewest
        words first (xianyu zhixing is 先予执行 before 先 予 执行)."""
        best: list[list[str] | None] = [None] * (len(letters) + 1)
        best[0] = []
        for start in range(len(letters)):
            done = best[start]
            if done is None:
                continue
            for end in range(start + 2, min(len(letters), start + self._longest) + 1):
                word = self._spelt.get(letters[start:end])
                if word is not None:
                    candidate = [*done, word]
                    current = best[end]
                    if current is None or len(candidate) < len(current):
                        best[end] = candidate
        found = best[len(letters)]
        return "".join(found) if found else None
