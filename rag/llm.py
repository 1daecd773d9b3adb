"""The LLM client: one streamed OpenAI-compatible chat completion, within a time budget, that either
finishes properly or fails with a one-line, actionable :class:`LLMError` (never a partial answer).

Time limits (all in :class:`~rag.config.Settings`):

- ``llm_connect_timeout``: connecting to the endpoint;
- ``llm_timeout``: the budget until the answer starts (every attempt, every backoff wait, the
  server's prompt processing, which may be silent), so a server that accepts the connection and stalls
  fails within it; what is left of it when a request is sent is that request's read timeout (the
  longest silence), so a stall in the middle of an answer fails within it too;
- ``llm_stream_timeout``: the longest a streamed answer may take once it started.

Retries (``llm_retries``): 429, 408/409, 5xx, timeouts and connection failures before the answer starts,
with exponential backoff (or the server's ``Retry-After`` when it fits the budget). Messages count the
attempts actually made. Nothing is retried once text was streamed: it has been shown already.

A stream counts as an answer only when the server finished it (a ``finish_reason``); a connection cut,
an empty stream, a malformed event, or a response that is not an event stream (e.g. an HTML page served
with status 200) is an error.
"""
from __future__ import annotations

import json
import re
import time
from typing import Iterator

from .config import Settings

_BACKOFF_BASE = 0.5  # seconds before the first retry; doubles each time
_BACKOFF_MAX = 8.0
_RETRY_STATUSES = {408, 409, 429}


class LLMError(RuntimeError):
    """The LLM endpoint failed; the message says what to do (no silent fallback)."""


def _where(settings: Settings) -> str:
    return settings.openai_base_url or "the OpenAI API"


_HINT = "(unset OPENAI_BASE_URL or use --answerer extractive)"


def client(settings: Settings):
    """OpenAI SDK client without the SDK's own retries (:func:`chat_stream` retries within its budget)."""
    from openai import OpenAI

    return OpenAI(api_key=settings.openai_api_key or "not-needed", base_url=settings.openai_base_url,
                  timeout=_timeout(settings, settings.llm_timeout), max_retries=0)


def _timeout(settings: Settings, remaining: float):
    import httpx

    remaining = max(0.01, remaining)
    return httpx.Timeout(remaining, connect=min(settings.llm_connect_timeout, remaining))


# ------------------------------------------------------------------------------------ the answer stream

def llm_deltas(question: str, hits: list, settings: Settings, history: list, meta: dict) -> Iterator[str]:
    """Stream the model's answer to ``question`` over ``hits``; ``meta['model']`` is updated with the
    model the server reports. No hits: the abstention text, without calling the model."""
    from . import extractive
    from .answer import messages, offline_helpers

    if not hits:
        yield "".join(extractive.answer_lines(question, []))
        return
    msgs = messages(question, hits, history, settings, **offline_helpers(question, settings))
    yield from chat_stream(msgs, settings, meta)


def chat_stream(msgs: list[dict[str, str]], settings: Settings, meta: dict | None = None) -> Iterator[str]:
    """Text deltas of one streamed chat completion (see the module doc for limits and errors)."""
    meta = meta if meta is not None else {}
    stream, attempts, silence = _open(msgs, settings)
    try:
        yield from _read(stream, settings, meta, attempts, silence)
    finally:
        stream.close()


def _open(msgs: list[dict[str, str]], settings: Settings):
    """(the open stream, attempts made, its read timeout): retries retryable failures while the budget
    lasts."""
    import openai

    start = time.monotonic()
    api = client(settings)
    attempt = 0
    while True:
        attempt += 1
        remaining = settings.llm_timeout - (time.monotonic() - start)
        try:
            if remaining <= 0:
                raise _BudgetSpent()
            stream = api.chat.completions.create(
                model=settings.model, temperature=settings.temperature, messages=msgs,
                max_tokens=settings.max_answer_tokens, stream=True, timeout=_timeout(settings, remaining))
            return stream, attempt, remaining
        except _BudgetSpent:
            raise LLMError(f"the LLM at {_where(settings)} did not answer within the {settings.llm_timeout:g} s "
                           f"budget (llm_timeout; {_attempts(attempt - 1)}) {_HINT}") from None
        except openai.OpenAIError as e:
            wait = _retry_wait(e, attempt, settings)
            left = settings.llm_timeout - (time.monotonic() - start)
            if wait is None or wait >= left:
                raise llm_error(e, settings, attempts=attempt, wait=wait, left=left) from e
            time.sleep(wait)


class _BudgetSpent(Exception):
    pass


def _retry_wait(e: Exception, attempt: int, settings: Settings) -> float | None:
    """Seconds to wait before the next attempt, or None when ``e`` is final (not retryable, or the
    retries are used up)."""
    import openai

    if attempt > settings.llm_retries:
        return None
    if isinstance(e, openai.APIStatusError):
        if e.status_code not in _RETRY_STATUSES and e.status_code < 500:
            return None
        after = _retry_after(e)
        if after is not None:
            return after
    elif not isinstance(e, (openai.APITimeoutError, openai.APIConnectionError)):
        return None
    return min(_BACKOFF_MAX, _BACKOFF_BASE * 2 ** (attempt - 1))


def _retry_after(e) -> float | None:
    """The server's Retry-After (seconds) on an error response, if it sent one."""
    try:
        value = e.response.headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, ValueError):
        return None


def _attempts(n: int) -> str:
    return f"{n} attempt{'' if n == 1 else 's'}"


def _read(stream, settings: Settings, meta: dict, attempts: int, silence: float) -> Iterator[str]:
    """The deltas of an open stream; raises LLMError unless the server finished the answer."""
    import httpx
    import openai

    where = _where(settings)
    response = stream.response
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind != "text/event-stream":
        yield from _whole_body(response, kind, settings, meta)
        return
    deadline = time.monotonic() + settings.llm_stream_timeout
    finish, chars = None, 0
    try:
        for chunk in stream:
            meta["model"] = getattr(chunk, "model", None) or meta.get("model")
            for choice in chunk.choices or ():
                text = choice.delta.content if choice.delta else None
                if text:
                    chars += len(text)
                    yield text
                finish = choice.finish_reason or finish
            if finish is None and time.monotonic() > deadline:
                raise LLMError(f"the LLM at {where} was still streaming after {settings.llm_stream_timeout:g} s "
                               f"(llm_stream_timeout); the partial answer ({chars} characters) is not used {_HINT}")
    except (httpx.TimeoutException, openai.APITimeoutError):
        raise LLMError(f"the LLM at {where} stalled mid-answer: no data for {silence:.3g} s (what was left of "
                       f"llm_timeout) after {chars} characters; the partial answer is not used {_HINT}") from None
    except (httpx.HTTPError, openai.APIConnectionError) as e:
        raise LLMError(f"the connection to the LLM at {where} broke mid-answer ({type(e).__name__}) after "
                       f"{chars} characters; the partial answer is not used {_HINT}") from None
    except ValueError as e:  # json.JSONDecodeError from the SDK's event parser
        raise LLMError(f"the LLM at {where} sent a malformed stream event (not JSON: {_clip(str(e))}) after "
                       f"{chars} characters; the answer is not used {_HINT}") from None
    except openai.OpenAIError as e:  # an error event inside the stream
        raise llm_error(e, settings, attempts=attempts) from e
    if finish is None:
        what = (f"the stream ended after {chars} characters without finishing (connection cut?)" if chars
                else "the stream ended without any answer (empty response)")
        raise LLMError(f"the LLM at {where} sent no complete answer: {what}; the partial answer is not used "
                       f"{_HINT}")
    if not chars:
        raise LLMError(f"the LLM at {where} finished ({finish}) without any text: an empty answer {_HINT}")
    if finish == "content_filter":
        raise LLMError(f"the LLM at {where} stopped the answer (finish_reason content_filter) {_HINT}")


def _whole_body(response, kind: str, settings: Settings, meta: dict) -> Iterator[str]:
    """A non-streamed body: a complete chat completion in JSON is an answer (some servers ignore
    ``stream``); anything else (an HTML page, plain text) is an error naming what came back."""
    where = _where(settings)
    body = response.read()
    status = response.status_code
    if kind in ("application/json", "text/json"):
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            text, finish = choice["message"]["content"], choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"the LLM at {where} answered HTTP {status} with JSON that is not a chat completion "
                           f"({_clip(body.decode('utf-8', 'replace'))}) {_HINT}") from None
        if not isinstance(text, str) or not finish:
            raise LLMError(f"the LLM at {where} sent a chat completion without a finished answer {_HINT}")
        meta["model"] = data.get("model") or meta.get("model")
        yield text
        return
    raise LLMError(f"the LLM at {where} answered HTTP {status} with {kind} ({_clip(_page_text(body))}), not an "
                   f"answer stream: is OPENAI_BASE_URL the API's /v1 endpoint? {_HINT}")


def _page_text(body: bytes) -> str:
    """The readable start of a page: its <title>, else its text without tags."""
    text = body.decode("utf-8", "replace")
    m = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    return (m.group(1) if m else re.sub(r"<[^>]+>", " ", text)).strip() or "empty body"


def _clip(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ------------------------------------------------------------------------------------ errors

def llm_error(e: Exception, settings: Settings, attempts: int | None = None, wait: float | None = None,
              left: float | None = None) -> LLMError:
    """One actionable line for each way the endpoint can fail; ``attempts`` is how many requests were
    made, ``wait`` the retry wait that did not fit the ``left`` budget (if that is why we stopped)."""
    import openai

    where = _where(settings)
    tried = f" ({_attempts(attempts)})" if attempts else ""
    if wait is not None and left is not None and wait >= left:
        tried = (f" ({_attempts(attempts)}; the next retry would wait {wait:g} s, beyond the "
                 f"{settings.llm_timeout:g} s budget, llm_timeout)")
    if isinstance(e, openai.APITimeoutError):
        return LLMError(f"the LLM at {where} did not respond within the {settings.llm_timeout:g} s budget "
                        f"(llm_timeout){tried} {_HINT}")
    if isinstance(e, openai.APIConnectionError):
        return LLMError(f"cannot reach the LLM at {where}: {_clip(str(e))}{tried} {_HINT}")
    if isinstance(e, openai.AuthenticationError):
        return LLMError(f"the LLM at {where} rejected the API key (HTTP 401): check OPENAI_API_KEY, "
                        f"or use --answerer extractive")
    if isinstance(e, openai.NotFoundError):
        return LLMError(f"the LLM at {where} has no model '{settings.model}' (HTTP 404): set DIGESTQA_MODEL")
    if isinstance(e, openai.RateLimitError):
        return LLMError(f"the LLM at {where} is rate-limiting (HTTP 429){tried}: try again later {_HINT}")
    if isinstance(e, openai.APIStatusError):
        return LLMError(f"the LLM at {where} failed with HTTP {e.status_code}: {_clip(str(e.message))}{tried} "
                        f"{_HINT}")
    return LLMError(f"LLM error at {where}: {_clip(str(e))}{tried} {_HINT}")


__all__ = ["LLMError", "client", "llm_deltas", "chat_stream", "llm_error"]
