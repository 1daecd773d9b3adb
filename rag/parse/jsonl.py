"""daily-arXiv JSON Lines: one object per line (id, title, authors, summary, AI{tldr, ...}, ...).

Placeholder AI texts (quota errors, 'Error', 'Summary generation failed', ...) are dropped.
A line that is not a JSON object is a FileError; the other lines still parse.
"""
from __future__ import annotations

import json
import re
from typing import Any

from rag.parse.common import date_from_name, is_placeholder, line_error, make_paper, split_authors
from rag.text import unescape_latex, unwrap
from rag.util import no_gc
from rag.types import FileError, Paper, Source

FORMAT = "jsonl"
_AI = {"tldr": "tldr_zh", "motivation": "motivation_zh", "method": "method_zh",
       "result": "result_zh", "conclusion": "conclusion_zh"}
_ABSTRACT_KEYS = ("summary", "abstract", "text")  # first non-empty one is the abstract
_KNOWN = {"id", "title", "authors", "categories", "comment", "code_url", "AI", *_ABSTRACT_KEYS}
_ARXIV_ID = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")
try:  # orjson ships with chromadb (a core dependency); ~3x faster. json is the fallback.
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover
    _fast_loads = json.loads


def _decode(line: str) -> Any:
    """Fast JSON decode; anything orjson rejects (NaN, lone surrogates) is retried with json."""
    try:
        return _fast_loads(line)
    except ValueError:
        return json.loads(line)


def parse(text: str, file: str) -> tuple[list[Paper], list[FileError]]:
    """Parse every non-blank line; bad lines become FileErrors with their line number."""
    date = date_from_name(file)
    papers: list[Paper] = []
    errors: list[FileError] = []
    with no_gc():
        for n, line in enumerate(text.split("\n"), 1):
            if not line or line.isspace():
                continue
            try:
                paper, err = _line(line, file, n, date)
            except RecursionError:
                paper, err = None, "JSON nested too deeply (over ~1,000 levels); fix or delete this line"
            if paper is not None:
                papers.append(paper)
            else:
                errors.append(line_error(file, n, err))
    return papers, errors


def _line(line: str, file: str, n: int, date: str | None) -> tuple[Paper | None, str]:
    """One JSON line -> Paper or (None, reason)."""
    try:
        obj = _decode(line)
    except ValueError as e:
        col = getattr(e, "colno", None)
        return None, (f"invalid JSON (truncated or broken line{f', column {col}' if col else ''}); "
                      "fix or delete this line")
    if not isinstance(obj, dict):
        return None, "JSON line is not an object; expected one paper record per line"
    title = obj.get("title")
    if not isinstance(title, str) or not title.strip():
        return None, "record has no 'title'; add a title or delete this line"
    return _paper(obj, file, n, date), ""


def _paper(obj: dict[str, Any], file: str, n: int, date: str | None) -> Paper:
    """Map a daily-arXiv record to a Paper; unknown keys go to extra as strings."""
    ai = obj.get("AI") if isinstance(obj.get("AI"), dict) else {}
    fields: dict[str, Any] = {
        "title": unescape_latex(_one_line(obj["title"])),
        "authors": _strs(obj.get("authors")),
        "categories": _strs(obj.get("categories"), split=False),
        "abstract": unescape_latex(_abstract(obj)),
        "comment": _str(obj.get("comment")).strip(),
        "code_url": _str(obj.get("code_url")).strip(),
    }
    for key, name in _AI.items():
        value = ai.get(key)
        if isinstance(value, str) and not is_placeholder(value):
            fields[name] = value.strip()
    extra = [(k, str(v)) for k, v in obj.items() if k not in _KNOWN and v is not None]
    extra += [(f"AI.{k}", str(v)) for k, v in ai.items() if k not in _AI and v is not None]
    if "AI" in obj and not isinstance(obj["AI"], dict) and obj["AI"] is not None:
        extra.append(("AI", str(obj["AI"])))
    aid = _str(obj.get("id")).strip()
    if aid and not _ARXIV_ID.match(aid):
        extra.append(("id", aid))
        aid = ""
    src = Source(file=file, date=date, format=FORMAT, line=n)
    return make_paper(fields, src, extra=extra, arxiv_id=aid or None)


def _abstract(obj: dict[str, Any]) -> str:
    """The first non-empty of summary / abstract / text."""
    for key in _ABSTRACT_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _one_line(s: str) -> str:
    """Collapse wrapped titles ("A\n  B" -> "A B", see unwrap) and runs of spaces; cheap when there
    is nothing to do."""
    return " ".join(unwrap(s, one_line=True).split()) if "\n" in s or "  " in s or s[:1].isspace() or s[-1:].isspace() else s


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


def _strs(v: Any, split: bool = True) -> list[str]:
    """A list of strings from a list, or a comma-separated string."""
    if isinstance(v, list):
        return [s.strip() for s in v if isinstance(s, str) and s and not s.isspace()]
    if isinstance(v, str):
        return list(split_authors(v)) if split else [s for s in v.split() if s]
    return []
