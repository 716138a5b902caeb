"""A linear classifier trained on the knowledge base's own questions.

BM25 asks which entry shares the most telling words with a message; the classifier asks which
entry these words point at, having seen every way each entry is asked. It is trained with
LIBLINEAR (one-vs-rest linear SVM, as scikit-learn's LinearSVC) when the knowledge base is
built, in well under a second, and only its weights are kept: a message is scored by adding up
the weights of its terms, in tens of microseconds. Its margins, standardised over all entries,
re-order the entries BM25 found.

It also learns one class more than there are entries: messages that are not ours (decline.txt:
周末带娃去哪玩, 车险咋买). BM25 sees only what a message shares with the entries; this class
sees what it shares with the things workers ask that we do not answer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from handlers.knowledge.text import Terms


def features(terms: Terms) -> list[str]:
    """Words, character bigrams and characters, each kind with its own prefix."""
    return [
        *("w" + w for w in terms.words),
        *("b" + b for b in terms.bigrams),
        *("c" + c for c in terms.chars),
    ]


@dataclass(frozen=True)
class Margins:
    """A message's margin for each entry and for "not ours", in the same standardised units
    (over the entries: mean 0, deviation 1)."""

    entries: np.ndarray
    decline: float | None  # None when no messages to decline were learnt


class EntryClassifier:
    """Entries are numbered 0…n-1; ``docs[i]`` is a question of entry ``labels[i]``;
    ``declines`` are messages of none of them."""

    def __init__(
        self,
        docs: Sequence[Terms],
        labels: Sequence[int],
        *,
        declines: Sequence[Terms] = (),
        c: float = 3.0,
    ) -> None:
        # Imported here: only building a knowledge base trains, and the commands that merely
        # import the package (forms, broadcasts, check-config) need not load them.
        from liblinear.liblinearutil import parameter, problem, train
        from scipy.sparse import csr_matrix

        self.size = len(set(labels))
        if sorted(set(labels)) != list(range(self.size)):
            raise ValueError("every entry needs at least one question")
        self._declines = bool(declines)
        docs = [*docs, *declines]
        labels = [*labels, *(self.size for _ in declines)]
        counted = [Counter(features(d)) for d in docs]
        vocabulary: dict[str, int] = {}
        frequency: Counter[int] = Counter()
        for counts in counted:
            for term in counts:
                frequency[vocabulary.setdefault(term, len(vocabulary))] += 1
        # Smoothed idf, sublinear tf, unit length: the usual tf-idf for short texts.
        n = len(docs)
        self._idf = np.array(
            [math.log((1 + n) / (1 + frequency[i])) + 1 for i in range(len(vocabulary))]
        )
        self._vocabulary = vocabulary
        indptr: list[int] = [0]
        indices: list[int] = []
        values: list[float] = []
        for counts in counted:
            row = self._tfidf(counts)
            indices.extend(row[0])
            values.extend(row[1])
            indptr.append(len(indices))
        matrix = csr_matrix((values, indices, indptr), shape=(n, len(vocabulary)))
        # -s 1: L2-regularised L2-loss SVM (dual), one-vs-rest; -B 1: with a bias term;
        # -e 0.01: closer to the optimum than the default 0.1, so that a reload, which visits
        # the questions in another random order, trains nearly the same weights. C = 3 (less
        # regularised than 0.3) was best on the held-out questions of ``kb eval --split cv``.
        model = train(problem(list(labels), matrix), parameter(f"-s 1 -c {c} -B 1 -e 0.01 -q"))
        classes = model.get_nr_class()
        order = model.get_labels()  # the row of each entry in LIBLINEAR's weights
        width = model.get_nr_feature() + 1  # the features, then the bias
        raw = np.ctypeslib.as_array(model.w, shape=(width * (classes if classes > 2 else 1),))
        weights = raw.reshape(width, -1).T.copy()  # stored feature by feature
        if classes > 2:
            weights = weights[np.argsort(order)]
        # Feature by feature (a message's few features are a few contiguous rows).
        # Single precision is plenty for a ranking and halves the largest array we keep.
        self._by_feature = np.ascontiguousarray(weights[:, :-1].T, dtype=np.float32)
        self._bias = weights[:, -1] * model.bias

    def _tfidf(self, counts: Counter[str]) -> tuple[list[int], np.ndarray]:
        """A text's known features and their weights: sublinear tf times idf, unit length."""
        columns = [self._vocabulary[f] for f in counts if f in self._vocabulary]
        tf = [1 + math.log(n) for f, n in counts.items() if f in self._vocabulary]
        values = np.array(tf) * self._idf[columns]
        norm = np.linalg.norm(values)
        return columns, values / norm if norm else values

    def margins(self, terms: Terms) -> Margins | None:
        """The message's margins; None when it has no term the classifier knows, or there
        are two entries or fewer (nothing to re-order by)."""
        if self.size < 3:
            return None
        columns, values = self._tfidf(Counter(features(terms)))
        if not columns:
            return None
        raw = values @ self._by_feature[columns] + self._bias
        entries = raw[: self.size]
        spread = entries.std()
        if not spread:
            return None
        mean = entries.mean()
        decline = float((raw[self.size] - mean) / spread) if self._declines else None
        return Margins((entries - mean) / spread, decline)
