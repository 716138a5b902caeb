"""An inverted index with BM25 weights, used both for words and for character n-grams."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from typing import NamedTuple


class BM25Index:
    """Documents are lists of terms, numbered from 0 in the order given.

    The BM25 weight of every (term, document) pair is worked out at build time, so a search
    only adds up the postings of the query's terms.
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
        self._postings: dict[str, list[tuple[int, float, float]]] = {}
        self._doc_weight: list[float] = []
        for number, doc in enumerate(docs):
            # With this length norm a term found once in a document of average length
            # weighs exactly its idf, which coverage() relies on.
            norm = k1 * (1 - b + b * len(doc) / average) if average else k1
            counts = Counter(doc)
            for term, tf in counts.items():
                idf = self._idf[term]
                posting = (number, idf * tf * (k1 + 1) / (tf + norm), idf)
                self._postings.setdefault(term, []).append(posting)
            self._doc_weight.append(sum(self._idf[term] for term in counts))

    def _idf_of(self, df: int) -> float:
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        return self._idf.get(term, self.unseen_idf)

    def __contains__(self, term: str) -> bool:
        return term in self._idf

    def coverage(self, terms: Collection[str]) -> dict[int, Coverage]:
        """How well every document sharing a term with the query matches it (see Coverage)."""
        unique = set(terms)
        own = sum(self.idf(term) for term in unique)
        if not own:
            return {}
        scores: dict[int, float] = {}
        shared: dict[int, float] = {}
        for term in unique:
            for number, weight, idf in self._postings.get(term, ()):
                scores[number] = scores.get(number, 0.0) + weight
                shared[number] = shared.get(number, 0.0) + idf
        weights = self._doc_weight
        return {
            n: Coverage(scores[n] / own, shared[n] / own, shared[n] / weights[n]) for n in scores
        }


class Coverage(NamedTuple):
    """A document's match with a query. Scaled to the query's own weight (the sum of its
    terms' idf), scores of different messages are comparable, which a threshold needs."""

    bm25: float  # the BM25 score over the query's weight: about 1.0 with every term found once
    query: float  # the share of the query's weight found in the document, 0…1
    document: float  # the share of the document's weight found in the query, 0…1
