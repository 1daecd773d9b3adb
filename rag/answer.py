"""Answer stage: retrieve, answer with the chosen answerer (streaming), resolve citations.

The answerer comes from :meth:`Settings.llm_choice` and is never switched silently: an LLM failure raises
:class:`~rag.llm.LLMError` (a one-line, actionable message) instead of falling back to the extractive answerer;
an LLM stream that does not finish properly is such an error too, never an answer (see :mod:`rag.llm`).

Abstention: ``Answer.text`` starts with :data:`~rag.types.CANNOT_ANSWER`; the extractive answerer (and the LLM
path, when the model outputs only the sentinel) follows it with a newline and a friendly sentence saying why.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Iterator

from . import extractive
from .cite import build_citations, claims
from .config import Settings
from .llm import LLMError, client, llm_deltas, llm_error  # noqa: F401  (the LLM client lives in rag.llm)
from .prompts import render
from .qa.followup import resolve
from .types import CANNOT_ANSWER, Answer, Filters, Hit

_CJK = re.compile(r"[\u3400-\u9fff]")
_HISTORY_TURNS = 3
LIST_TOP_K = 10
_ABSTAIN_NOTE = {"en": "The sources do not contain the answer.", "zh": "检索到的来源中没有答案。"}


def language(question: str) -> str:
    """'zh' when the question contains Chinese characters, else 'en'."""
    return "zh" if _CJK.search(question) else "en"


def answer_stream(question: str, settings: Settings, filters: Filters,
                  history: list) -> Iterator[str | Answer]:
    """Yield text deltas as they are produced, then the final :class:`Answer`."""
    from .qa.question import analyse, asks_coauthors, listed_field
    from .retrieve import coauthor_hits, meta_list_hits, named_list_hits, names_indexed_paper, retrieve_hits

    t0 = time.perf_counter()
    answerer, reason = settings.llm_choice()
    res = resolve(question, history, lambda q: names_indexed_paper(q, settings)) if history else resolve(question, [])
    asked = res.question
    listed = _list_filters(asked, answerer, settings, filters)
    hits = list(retrieve_hits(asked, settings, listed))
    analysis = analyse(asked)
    if listed.top_k != filters.top_k:  # a "which papers" question of the offline answerer
        hits = named_list_hits(asked, settings, listed, hits)
        label = listed_field(analysis)
        if label:
            hits = meta_list_hits(asked, settings, listed, hits, label)
    if asks_coauthors(analysis):
        hits = coauthor_hits(asked, settings, listed, hits)
    t1 = time.perf_counter()
    meta = {"model": settings.model if answerer == "llm" else None}
    if answerer == "llm":
        deltas = llm_deltas(asked, hits, settings, history, meta)
    else:
        deltas = iter(extractive.answer_lines(asked, hits, **offline_helpers(asked, settings)))
    parts: list[str] = []
    for d in deltas:
        parts.append(d)
        yield d
    text = "".join(parts)
    if answerer == "llm" and text.strip() == CANNOT_ANSWER:
        note = "\n" + _ABSTAIN_NOTE[language(question)]
        text = text.strip() + note
        yield note
    t2 = time.perf_counter()
    answer = finish(question, text, hits, answerer, meta["model"], settings, reason,
                    {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000})
    yield replace(answer, interpreted=asked if res.followup else "")


def offline_helpers(question: str, settings: Settings) -> dict:
    """What the extractive answerer may use besides the hits: corpus term statistics of the index, sentence
    vectors from the index's embedder (``answer_dense``), and with an English-only embedder the zh->en
    glossary as a bridge for Chinese questions over English text."""
    from .retrieve import term_stats

    helpers = {"stats": term_stats(settings)}
    if settings.answer_dense and helpers["stats"] is not None:
        from .embed import get_embedder
        from .qa.dense import scorer_for

        helpers["dense"] = scorer_for(get_embedder(settings), settings.embedder)
    if settings.uses_glossary:
        from .glossary import bridge

        helpers["bridge"] = bridge(question)
    return helpers


def _list_filters(question: str, answerer: str, settings: Settings, filters: Filters) -> Filters:
    """"Which papers ..." questions need recall: the extractive answerer looks at 2x top_k (at least
    LIST_TOP_K) sources unless the caller set ``filters.top_k``. (The LLM keeps top_k: its context is small.)"""
    filters = _author_filter(question, _digest_date_filter(question, filters))
    if answerer != "extractive" or filters.top_k is not None or not extractive.is_list_question(question):
        return filters
    return replace(filters, top_k=max(2 * settings.top_k, LIST_TOP_K))


def _author_filter(question: str, filters: Filters) -> Filters:
    """"Which papers list Bo Zheng as an author?" restricts retrieval to that author's papers (only when the
    caller set no author filter and the question names one person: capitalised words in a row)."""
    from .qa.question import analyse

    if filters.author:
        return filters
    part = analyse(question).parts[0]
    if not (part.listing and part.aspect == "authors"):
        return filters
    names = re.findall(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+\b", question)
    return replace(filters, author=names[0]) if len(names) == 1 else filters


_DIGEST_CUE = re.compile(r"\b(?:listed|digest|report|announced)\b|收录|日报|摘要", re.I)


def _digest_date_filter(question: str, filters: Filters) -> Filters:
    """"Which papers were listed in the digest of <date>?" restricts retrieval to that digest date
    (only when the caller set no date range and the question names exactly one full date)."""
    if filters.since or filters.until or not extractive.is_list_question(question) \
            or not _DIGEST_CUE.search(question):
        return filters
    dates = {t.key for t in extractive.date_terms(question)[0]}
    if len(dates) != 1:
        return filters
    day = dates.pop()
    return replace(filters, since=day, until=day)


def finish(question: str, text: str, hits: list[Hit], answerer: str, model: str | None, settings: Settings,
           reason: str, timings: dict[str, float]) -> Answer:
    """The final Answer: abstention flag, citations resolved against the retrieved hits."""
    text = text.strip()
    abstained = text.startswith(CANNOT_ANSWER)
    citations, dropped = build_citations(text, hits)
    return Answer(question=question, text=text, abstained=abstained, answerer=answerer, model=model,
                  embedder=settings.embedder, citations=() if abstained else citations, sources=tuple(hits),
                  timings_ms=timings, dropped_citations=dropped, reason=reason,
                  claims=() if abstained else claims(text, hits))


# ------------------------------------------------------------------------------------------ LLM answerer

def _fence(text: str) -> str:
    """Source text made safe inside the delimited context (no fake fences or closing tags)."""
    text = text.replace("```", "'''")
    return re.sub(r"</?\s*sources\s*>", "[tag removed]", text, flags=re.I)


def source_blocks(hits: list[Hit], question: str = "", settings: Settings | None = None, **helpers) -> str:
    """Numbered source blocks: title, a header (id, date, authors, venue) and the source's best sentences for
    the question within ``settings.llm_context_tokens`` (see :mod:`rag.qa.context`); all fenced as data."""
    from .chunk import encoding
    from .qa.context import build

    budget = (settings or Settings(index_dir=".")).llm_context_tokens
    enc = encoding()
    ctxs = build(question, hits, budget, lambda t: len(enc.encode(t, disallowed_special=())), **helpers)
    return "\n\n".join(render("source_block", n=c.n, title=_fence(c.hit.title), header=_fence(c.header),
                               text=_fence(" ".join(c.lines()) or "(no text)")) for c in ctxs)


def _turn_text(turn) -> tuple[str, str]:
    """(question, answer text) of a chat turn: an :class:`Answer` or a (question, answer) pair."""
    return (turn.question, turn.text) if isinstance(turn, Answer) else turn


def messages(question: str, hits: list[Hit], history: list, settings: Settings | None = None,
             **helpers) -> list[dict[str, str]]:
    """System rules, the last few chat turns, then the sources and the question."""
    lang = "Chinese (简体中文)" if language(question) == "zh" else "English"
    msgs = [{"role": "system", "content": render("answer_system", cannot_answer=CANNOT_ANSWER)}]
    for q, a in map(_turn_text, history[-_HISTORY_TURNS:]):
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    sources = source_blocks(hits, question, settings, **helpers)
    msgs.append({"role": "user", "content": render("answer_user", sources=sources, question=question, language=lang)})
    return msgs
