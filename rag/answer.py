"""Answer stage: retrieve, answer with the chosen answerer (streaming), resolve citations.

The answerer comes from :meth:`Settings.llm_choice` and is never switched silently: an LLM failure raises
:class:`LLMError` (a one-line, actionable message) instead of falling back to the extractive answerer.

Abstention: ``Answer.text`` starts with :data:`~rag.types.CANNOT_ANSWER`; the extractive answerer (and the LLM
path, when the model outputs only the sentinel) follows it with a newline and a friendly sentence saying why.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Iterator

from . import extractive
from .cite import build_citations
from .config import Settings
from .prompts import render
from .types import CANNOT_ANSWER, Answer, Filters, Hit

_CJK = re.compile(r"[\u3400-\u9fff]")
_ANAPHORA = re.compile(r"\b(?:it|its|they|them|their|this|that|these|those|the paper|the method|same)\b|"
                       r"它|它们|其|该|这篇|那篇|这些|这个|上述|同一", re.I)
_HISTORY_TURNS = 3
LIST_TOP_K = 10
_ABSTAIN_NOTE = {"en": "The sources do not contain the answer.", "zh": "检索到的来源中没有答案。"}


class LLMError(RuntimeError):
    """The LLM endpoint failed; the message says what to do (no silent fallback)."""


def language(question: str) -> str:
    """'zh' when the question contains Chinese characters, else 'en'."""
    return "zh" if _CJK.search(question) else "en"


def is_followup(question: str) -> bool:
    """Short or anaphoric questions lean on the previous turn."""
    words = len(question.split()) if language(question) == "en" else len(_CJK.findall(question)) // 2
    return words < 5 or bool(_ANAPHORA.search(question))


def retrieval_query(question: str, history: list[tuple[str, str]]) -> str:
    """The question, plus the previous question when this one is a follow-up."""
    if history and is_followup(question):
        return f"{question} {history[-1][0]}"
    return question


def answer_stream(question: str, settings: Settings, filters: Filters,
                  history: list[tuple[str, str]]) -> Iterator[str | Answer]:
    """Yield text deltas as they are produced, then the final :class:`Answer`."""
    from .retrieve import retrieve_hits

    t0 = time.perf_counter()
    answerer, reason = settings.llm_choice()
    query = retrieval_query(question, history)
    hits = list(retrieve_hits(query, settings, _list_filters(question, answerer, settings, filters)))
    t1 = time.perf_counter()
    meta = {"model": settings.model if answerer == "llm" else None}
    if answerer == "llm":
        deltas = llm_deltas(question, hits, settings, history, meta)
    else:
        deltas = iter(extractive.answer_lines(question, hits, terms_from=query))
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
    yield finish(question, text, hits, answerer, meta["model"], settings, reason,
                 {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000})


def _list_filters(question: str, answerer: str, settings: Settings, filters: Filters) -> Filters:
    """"Which papers ..." questions need recall: the extractive answerer looks at 2x top_k (at least
    LIST_TOP_K) sources unless the caller set ``filters.top_k``. (The LLM keeps top_k: its context is small.)"""
    filters = _digest_date_filter(question, filters)
    if answerer != "extractive" or filters.top_k is not None or not extractive.is_list_question(question):
        return filters
    return replace(filters, top_k=max(2 * settings.top_k, LIST_TOP_K))


_DIGEST_CUE = re.compile(r"\b(?:listed|digest|report|announced)\b|收录|日报|摘要", re.I)


def _digest_date_filter(question: str, filters: Filters) -> Filters:
    """"Which papers were listed in the digest of <date>?" restricts retrieval to that digest date
    (only when the caller set no date range and the question names exactly one full date)."""
    if filters.since or filters.until or not extractive.is_list_question(question) \
            or not _DIGEST_CUE.search(question):
        return filters
    dates = {t.key for t in extractive.date_terms(question)}
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
                  timings_ms=timings, dropped_citations=dropped, reason=reason)


# ------------------------------------------------------------------------------------------ LLM answerer

def _fence(text: str) -> str:
    """Source text made safe inside the delimited context (no fake fences or closing tags)."""
    text = text.replace("```", "'''")
    return re.sub(r"</?\s*sources\s*>", "[tag removed]", text, flags=re.I)


def source_blocks(hits: list[Hit]) -> str:
    """Numbered source blocks: title, arXiv ID, field, date and fenced passages."""
    blocks = []
    for i, h in enumerate(hits, 1):
        passages = "\n".join(f"({p.field})\n```\n{_fence(p.text)}\n```" for p in h.passages)
        blocks.append(render("source_block", n=i, title=_fence(h.title), arxiv_id=h.arxiv_id or "none",
                             categories=", ".join(h.categories) or "unknown", date=h.date or "unknown",
                             passages=passages or "(no passages)"))
    return "\n".join(blocks)


def messages(question: str, hits: list[Hit], history: list[tuple[str, str]]) -> list[dict[str, str]]:
    """System rules, the last few chat turns, then the sources and the question."""
    lang = "Chinese (简体中文)" if language(question) == "zh" else "English"
    msgs = [{"role": "system", "content": render("answer_system", cannot_answer=CANNOT_ANSWER)}]
    for q, a in history[-_HISTORY_TURNS:]:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    msgs.append({"role": "user", "content": render("answer_user", sources=source_blocks(hits), question=question,
                                                   language=lang, cannot_answer=CANNOT_ANSWER)})
    return msgs


def client(settings: Settings):
    """OpenAI SDK client; the SDK retries 429/5xx/timeouts with exponential backoff (``llm_retries``)."""
    from openai import OpenAI

    return OpenAI(api_key=settings.openai_api_key or "not-needed", base_url=settings.openai_base_url,
                  timeout=settings.llm_timeout, max_retries=settings.llm_retries)


def llm_deltas(question: str, hits: list[Hit], settings: Settings, history: list[tuple[str, str]],
               meta: dict) -> Iterator[str]:
    """Stream the model's answer; ``meta['model']`` is updated with the model the server reports."""
    if not hits:
        yield CANNOT_ANSWER + "\n" + extractive.render(extractive.Plan(language(question), no_sources=True))[1]
        return
    import openai

    try:
        stream = client(settings).chat.completions.create(
            model=settings.model, messages=messages(question, hits, history), temperature=settings.temperature,
            max_tokens=settings.max_answer_tokens, stream=True)
        for chunk in stream:
            meta["model"] = getattr(chunk, "model", None) or meta["model"]
            if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
    except openai.OpenAIError as e:
        raise llm_error(e, settings) from e


def llm_error(e: Exception, settings: Settings) -> LLMError:
    """One actionable line for each way the endpoint can fail."""
    import openai

    where = settings.openai_base_url or "the OpenAI API"
    hint = "(unset OPENAI_BASE_URL or use --answerer extractive)"
    if isinstance(e, openai.APITimeoutError):
        return LLMError(f"the LLM at {where} did not answer within {settings.llm_timeout:g}s after "
                        f"{settings.llm_retries} retries {hint}")
    if isinstance(e, openai.APIConnectionError):
        return LLMError(f"cannot reach the LLM at {where}: {e} {hint}")
    if isinstance(e, openai.AuthenticationError):
        return LLMError(f"the LLM at {where} rejected the API key (HTTP 401): check OPENAI_API_KEY, "
                        f"or use --answerer extractive")
    if isinstance(e, openai.NotFoundError):
        return LLMError(f"the LLM at {where} has no model '{settings.model}' (HTTP 404): set DIGESTQA_MODEL")
    if isinstance(e, openai.RateLimitError):
        return LLMError(f"the LLM at {where} is still rate-limiting after {settings.llm_retries} retries "
                        f"(HTTP 429): try again later {hint}")
    if isinstance(e, openai.APIStatusError):
        return LLMError(f"the LLM at {where} failed with HTTP {e.status_code}: {e.message} {hint}")
    return LLMError(f"LLM error at {where}: {e} {hint}")
