"""Offline extractive answerer: quote the sentences and metadata of the retrieved sources that answer each part
of the question, citing them; abstain (:data:`~rag.types.CANNOT_ANSWER`) when they do not.

The work is done in :mod:`rag.qa`: :mod:`~rag.qa.question` (language, aspects, parts, terms),
:mod:`~rag.qa.evidence` (units of the sources and their scores), :mod:`~rag.qa.compose` (which source answers
which part, or why none does) and :mod:`~rag.qa.render` (the text). Nothing here keeps state between calls.
"""
from __future__ import annotations

from .qa.compose import Config, Plan, Stats, plan
from .qa.evidence import Bridge, Dense, is_instruction, meta_fields
from .qa.question import analyse, is_list_question
from .qa.render import render, short_title
from .qa.terms import date_terms
from .text import display
from .types import Hit

__all__ = ["answer_lines", "plan", "render", "Config", "Plan", "analyse", "is_list_question", "is_instruction",
           "meta_fields", "short_title", "display", "date_terms"]


def answer_lines(question: str, hits: list[Hit], dense: Dense | None = None, bridge: Bridge | None = None,
                 cfg: Config = Config(), stats: Stats | None = None) -> list[str]:
    """The extractive answer for ``question`` over ``hits`` as streamable lines."""
    return render(plan(question, hits, dense, bridge, cfg, stats))
