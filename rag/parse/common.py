"""Helpers shared by the format parsers: building Paper records, dates, authors, placeholders.

Every parser builds its records with :func:`make_paper`, which unwraps hard line wraps in the
title and every prose field (:func:`rag.text.unwrap`), so no parser stores a wrapped line.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.text import strip_version, title_id, unwrap
from rag.types import PAPER_TEXT_FIELDS, FileError, Paper, Source

# Fields that get a provenance entry when set (in this order).
PROVENANCE_FIELDS = (
    "title", "authors", "abstract", "tldr_en", "tldr_zh", "motivation_zh", "method_zh",
    "result_zh", "conclusion_zh", "categories", "comment", "doi", "code_url", "published",
)
_PROV_SET = frozenset(PROVENANCE_FIELDS)
# Fields of running text: hard line wraps in them are undone (unwrap); the title becomes one line.
PROSE_FIELDS = (*PAPER_TEXT_FIELDS, "comment")
MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_ARXIV_URL = re.compile(
    r"arxiv\.org/(?:abs|pdf)/((?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?)",
    re.I)
_CJK = re.compile(r"[\u3400-\u9fff]")
_PLACEHOLDER_WORDS = {"", "error", "n/a", "na", "none", "null", "nan", "skip", "skipped", "-",
                      "--", "todo", "tbd", "unknown", "无", "暂无", "空"}
_PLACEHOLDER_EN = re.compile(
    r"\b(?:generation|extraction|analysis|summary|summarization) (?:failed|unavailable|error)\b"
    r"|\bquota\b|rate[ -]?limit|too many requests|\bapi (?:key|error)|\bexceeded\b|traceback"
    r"|\bexception\b|\btimed? ?out\b|\bstatus code\b|\berror\s*[:(\d]|^error\b|\bfailed to\b"
    r"|\b(?:unavailable|not available)\b|\binsufficient_quota\b",
    re.I)
_PLACEHOLDER_ZH = re.compile(r"(?:生成|分析|提取|总结|摘要)(?:失败|不可用|出错)|配额|限流|请求过多|错误[:：]")


def date_from_name(file: str) -> str | None:
    """The only use of a file name: a YYYY-MM-DD date in it (daily-arXiv file naming)."""
    m = _NAME_DATE.search(Path(file).name)
    if not m:
        return None
    y, mo, d = (int(x) for x in m.groups())
    return f"{y:04d}-{mo:02d}-{d:02d}" if 1 <= mo <= 12 and 1 <= d <= 31 else None


def arxiv_from_url(url: str) -> str | None:
    """arXiv id (version kept) from an abs/pdf URL, else None."""
    m = _ARXIV_URL.search(url or "")
    return m.group(1) if m else None


def split_authors(text: str) -> tuple[str, ...]:
    """Comma-separated authors; commas inside (affiliations) do not split; empties dropped."""
    out, depth, cur = [], 0, []
    for ch in text:
        depth += ch in "([" and 1 or (ch in ")]" and -1 or 0)
        if ch == "," and depth <= 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return tuple(a.strip() for a in out if a.strip())


def is_placeholder(text: Any) -> bool:
    """True for AI-field filler: empty, 'Error', 'N/A', 'Skip', quota/rate-limit/failure messages.

    Heuristic: exact filler words always; error-message patterns only on short texts
    (English < 300 chars without CJK, or Chinese < 60 chars), so real summaries that merely
    mention an error are kept.
    """
    if not isinstance(text, str):
        return text is None or not str(text).strip()
    n = len(text)
    if n >= 300 or n >= 60 and not text.isascii() and _CJK.search(text, 0, 40):
        return False  # fast path: real (Chinese) summaries
    t = text.strip()
    if len(t) < 16 and t.lower().strip(".!。") in _PLACEHOLDER_WORDS:
        return True
    if not _CJK.search(t):
        return len(t) < 300 and bool(_PLACEHOLDER_EN.search(t))
    return len(t) < 60 and bool(_PLACEHOLDER_ZH.search(t))


def make_paper(fields: dict[str, Any], source: Source, extra: list[tuple[str, str]] | None = None,
               arxiv_id: str | None = None, **kw: Any) -> Paper:
    """Build a Paper from parsed fields: unwraps prose, drops empties, sets ids and per-field
    provenance."""
    clean = {k: v for k, v in fields.items() if v}
    unwrap_fields(clean)
    for k in ("authors", "categories"):
        if k in clean and type(clean[k]) is not tuple:
            clean[k] = tuple(clean[k])
    title = clean.pop("title", "")
    aid = (strip_version(arxiv_id) if "v" in arxiv_id else arxiv_id.strip()) if arxiv_id else None
    prov = tuple([(f, source) for f in clean if f in _PROV_SET])
    if title:
        prov = (("title", source),) + prov
    return Paper(paper_id=aid or title_id(title), title=title, arxiv_id=aid, sources=(source,),
                 provenance=prov, extra=tuple(extra) if extra else (), **clean, **kw)


def unwrap_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Unwrap (in place) the title (to one line) and the prose fields present in ``fields``."""
    title = fields.get("title")
    if isinstance(title, str) and "\n" in title:
        fields["title"] = unwrap(title, one_line=True)
    for k in PROSE_FIELDS:
        v = fields.get(k)
        if isinstance(v, str) and "\n" in v:
            fields[k] = unwrap(v)
    return fields


def unwrap_paper(paper: Paper) -> Paper:
    """The record with its title and prose fields unwrapped (the same object when nothing changes):
    for records that did not come through a parser (ready-made records, older catalogues)."""
    fields = {k: getattr(paper, k) for k in ("title", *PROSE_FIELDS)}
    fields = {k: v for k, v in unwrap_fields(dict(fields)).items() if v is not fields[k]}
    return replace(paper, **fields) if fields else paper


def line_error(file: str, line: int | None, message: str) -> FileError:
    """One-line error for a line of a file."""
    return FileError(file=file, message=" ".join(message.split()), line=line)
