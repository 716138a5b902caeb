"""The knowledge base behind the Q&A: content, search and its evaluation.

Pure Python; the only I/O is reading the content folders, at load time.
"""

from bot.errors import ContentError
from handlers.knowledge.content import (
    Entry,
    EvalCase,
    Followup,
    load_entries,
    load_eval_cases,
)
from handlers.knowledge.evaluate import (
    EvalReport,
    bench,
    cross_validate,
    evaluate,
    format_bench,
    format_report,
)
from handlers.knowledge.retrieval import Decision, KnowledgeBase, Match, Scored, Tuning

__all__ = [
    "ContentError",
    "Decision",
    "Entry",
    "EvalCase",
    "EvalReport",
    "Followup",
    "KnowledgeBase",
    "Match",
    "Scored",
    "Tuning",
    "bench",
    "cross_validate",
    "evaluate",
    "format_bench",
    "format_report",
    "load_entries",
    "load_eval_cases",
]
