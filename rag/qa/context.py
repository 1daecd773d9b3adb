"""The LLM's context: for each retrieved source its identifying line and its best sentences, within a budget.

Small local models read ~100 prompt tokens a second on two cores and lose the question in long contexts, so
whole passages are not sent. Every source first gets a line with its title, arXiv id, date, authors and venue
comment (metadata questions are answered from it); then sentences are added best first, one per source per
round in retrieval order, until the token budget is spent. Sentences are scored by the offline answerer's
evidence scoring (:mod:`rag.qa.evidence`), so what the LLM reads is what the extractive answer would quote.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..types import Hit
from .compose import Config, with_stats
from .evidence import make_source, match_terms, score_units, weights
from .question import analyse

MAX_AUTHORS = 8


@dataclass
class SourceContext:
    n: int  # cited as [n]
    hit: Hit
    header: str
    sentences: list[tuple[int, str]] = field(default_factory=list)  # (position in the source, text)

    def lines(self) -> list[str]:
        return [s for _, s in sorted(self.sentences)]


def _header(hit: Hit, metas: dict[str, str]) -> str:
    authors = ", ".join(hit.authors[:MAX_AUTHORS]) + (" et al." if len(hit.authors) > MAX_AUTHORS else "")
    parts = [f"arXiv {hit.arxiv_id}" if hit.arxiv_id else "", hit.date or "", f"Authors: {authors}" if authors else "",
             *(f"{k}: {v}" for k, v in metas.items() if k in ("Comment", "Code", "DOI", "Categories", "Submitted"))]
    return "; ".join(p for p in parts if p)


def build(question: str, hits: list[Hit], budget: int, count: Callable[[str], int], stats=None, bridge=None,
          dense=None, cfg: Config = Config()) -> list[SourceContext]:
    """Per hit, its header and its best sentences for ``question``, fitting ``budget`` tokens (``count``)."""
    from .evidence import meta_fields

    a, rarity = with_stats(analyse(question), stats, cfg)
    sources = [make_source(h, i) for i, h in enumerate(hits)]
    for s in sources:
        match_terms(s, a.terms, bridge)
    w = weights(a.terms, sources, rarity)
    out = [SourceContext(s.index + 1, s.hit, _header(s.hit, meta_fields(s.hit))) for s in sources]
    used = sum(count(c.header) + count(c.hit.title) for c in out)
    queues = [_ranked(a, s, w, dense, cfg) for s in sources]
    while used < budget and any(queues):
        for ctx, queue in zip(out, queues):
            if not queue:
                continue
            pos, text = queue.pop(0)
            cost = count(text)
            if used + cost > budget:
                queue.clear()
                continue
            ctx.sentences.append((pos, text))
            used += cost
    return out


def _ranked(a, src, w, dense, cfg) -> list[tuple[int, str]]:
    """The source's sentences, best first for any part of the question."""
    best: dict[int, float] = {}
    for part in a.parts:
        for s in score_units(part, src, w, dense, cfg.dense_mix):
            if s.unit.kind == "sentence":
                best[s.pos] = max(best.get(s.pos, 0.0), s.score)
    order = sorted(best, key=lambda p: (-best[p], p))
    return [(p, src.units[p].text) for p in order]
