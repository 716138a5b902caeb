"""An inverted index with BM25 weights, used both for words and for character n-grams."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np


class BM25Index:
    """Documents are lists of terms, numbered from 0 in the order given.

    The BM25 weight of every (term, document) pair is worked out at build time and kept in
    arrays per term, so a search adds up the postings of the query's terms with numpy (one
    ``bincount`` per sum) instead of a Python loop over every matching document.
    """

    def __init__(self, docs: Sequence[Sequence[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.size = len(docs)
        lengths = [len(doc) for doc in docs]
        average = sum(lengths) / len(lengths) if lengths else 0.0
        frequencies = Counter(term for doc in docs for term in set(doc))
        self._idf = {term: self._idf_of(df) for term, df in frequencies.items()}
        # A term in no document is as telling as the rarest term can be: the message is about
        # something the knowledge base does not cover.
        self.unseen_idf = self._idf_of(0)
        postings: dict[str, tuple[list[int], list[float]]] = {}
        doc_weight = np.zeros(self.size)
        for number, doc in enumerate(docs):
            # With this length norm a term found once in a document of average length
            # weighs exactly its idf, which coverage() relies on.
            norm = k1 * (1 - b + b * len(doc) / average) if average else k1
            counts = Counter(doc)
            for term, tf in counts.items():
                numbers, weights = postings.setdefault(term, ([], []))
                numbers.append(number)
                weights.append(self._idf[term] * tf * (k1 + 1) / (tf + norm))
            doc_weight[number] = sum(self._idf[term] for term in counts)
        self._postings = {
            term: (np.array(numbers, dtype=np.intp), np.array(weights))
            for term, (numbers, weights) in postings.items()
        }
        # Documents without a term share nothing with any query; 1.0 only avoids 0 / 0.
        self._doc_weight = np.where(doc_weight > 0, doc_weight, 1.0)

    def _idf_of(self, df: int) -> float:
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        return self._idf.get(term, self.unseen_idf)

    def __contains__(self, term: str) -> bool:
        return term in self._idf

    def coverage(self, terms: Collection[str]) -> Coverage | None:
        """How well every document matches the query (see Coverage); None when no document
        shares a term with it."""
        unique = set(terms)
        own = sum(self.idf(term) for term in unique)
        found = [t for t in unique if t in self._postings]
        if not own or not found:
            return None
        numbers = np.concatenate([self._postings[t][0] for t in found])
        weights = np.concatenate([self._postings[t][1] for t in found])
        # Each posting of a term shares that term's idf.
        idfs = np.repeat([self._idf[t] for t in found], [len(self._postings[t][0]) for t in found])
        score = np.bincount(numbers, weights=weights, minlength=self.size)
        shared = np.bincount(numbers, weights=idfs, minlength=self.size)
        return Coverage(score / own, shared / own, shared / self._doc_weight)


class Coverage(NamedTuple):
    """Every document's match with a query, one array element per document. Scaled to the
    query's own weight (the sum of its terms' idf), scores of different messages are
    comparable, which a threshold needs. A document sharing no term has zeros."""

    bm25: np.ndarray  # the BM25 score over the query's weight: about 1.0 with every term once
    query: np.ndarray  # the share of the query's weight found in the document, 0…1
    document: np.ndarray  # the share of the document's weight found in the query, 0…1
