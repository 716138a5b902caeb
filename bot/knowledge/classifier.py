"""A linear classifier trained on the knowledge base's own questions.

BM25 asks which entry shares the most telling words with a message; the classifier asks which
entry these words point at, having seen every way each entry is asked. It is trained when the
knowledge base is built (well under a second with scikit-learn's LinearSVC) and only its
weights are kept: a message is scored by adding up the weights of its terms, so it costs tens
of microseconds. Its margins, standardised over all entries, re-order the entries BM25 found.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from bot.knowledge.text import Terms


def features(terms: Terms) -> list[str]:
    """Words, character bigrams and characters, each kind with its own prefix."""
    return [
        *("w" + w for w in terms.words),
        *("b" + b for b in terms.bigrams),
        *("c" + c for c in terms.chars),
    ]


def _as_is(doc: list[str]) -> list[str]:
    return doc


class EntryClassifier:
    """Entries are numbered 0…n-1; ``docs[i]`` is a question of entry ``labels[i]``."""

    def __init__(self, docs: Sequence[Terms], labels: Sequence[int], *, c: float = 0.3) -> None:
        vectorizer = TfidfVectorizer(analyzer=_as_is, sublinear_tf=True)
        matrix = vectorizer.fit_transform([features(d) for d in docs])
        model = LinearSVC(C=c, random_state=0, max_iter=10_000).fit(matrix, labels)
        self.size = len(model.classes_)
        if list(model.classes_) != list(range(self.size)):
            raise ValueError("every entry needs at least one question")
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._idf: np.ndarray = vectorizer.idf_
        # One row per entry (LinearSVC keeps a single row when there are only two).
        self._weights: np.ndarray = model.coef_
        self._intercept: np.ndarray = model.intercept_

    def margins(self, terms: Terms) -> np.ndarray | None:
        """Each entry's margin, standardised over all entries (mean 0, deviation 1); None
        when the message has no term the classifier knows, or there are two entries or
        fewer (nothing to re-order by)."""
        if self.size < 3:
            return None
        counts = Counter(f for f in features(terms) if f in self._vocabulary)
        if not counts:
            return None
        columns = [self._vocabulary[f] for f in counts]
        # The vectorizer's own weighting: sublinear tf times idf, then unit length.
        tf = [1 + math.log(n) for n in counts.values()]
        values = np.array(tf) * self._idf[columns]
        values /= np.linalg.norm(values)
        raw = self._weights[:, columns] @ values + self._intercept
        spread = raw.std()
        return (raw - raw.mean()) / spread if spread else None
