"""Digest format detection by CONTENT (never by file name)."""
from __future__ import annotations

import json
import re

FORMATS = ("table_report", "cs_digest", "jsonl", "paper_page", "abstract_dump")
_HEAD = 200_000  # characters inspected

_TABLE_HEADER = re.compile(r"^\|\s*Title\s*\|\s*Link\s*\|\s*abstract\s*\|", re.M | re.I)
_TABLE_ROW = re.compile(r"^\|[^\n]*?\s\|\s*\[https?://arxiv\.org/abs/", re.M)
_REPORT_TITLE = re.compile(r"^#\s*arXiv Daily Report\b", re.M)
_CS_ENTRY = re.compile(r"^###\s*\[\d+\]\s*\[[^\n]*\]\(https?://arxiv\.org/abs/", re.M)
_CS_TOC = re.compile(r"^- \[[a-z\-]+\.[A-Za-z\-]+\]\(#[^)]*\) \[Total: \d+\]", re.M)
_PAGE_FIELD = re.compile(r"^- (URL|Title|Authors|Abstract summary|Abstract|Score|Date):", re.M)
_PAGE_RELATED = re.compile(r"^arXiv Detail & Related papers \(", re.M)
_DUMP_ID = re.compile(r"^arXiv:(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})", re.M)
_JSON_KEYS = {"id", "title", "summary", "abstract", "authors", "abs"}
_JSON_KEY_TEXT = re.compile(r'^\s*\{\s*"(?:id|title|summary|abstract|authors|abs)"\s*:')


def detect_format(text: str) -> str | None:
    """Name of the digest format of ``text`` (see FORMATS), or None if unrecognised."""
    head = text[:_HEAD]
    if _is_jsonl(head):
        return "jsonl"
    if _CS_ENTRY.search(head) or _CS_TOC.search(head):
        return "cs_digest"
    if _TABLE_HEADER.search(head) or _TABLE_ROW.search(head) and _REPORT_TITLE.search(head):
        return "table_report"  # a header-only report (no papers that day) is still a report
    if len(set(m.group(1) for m in _PAGE_FIELD.finditer(head))) >= 2 or _PAGE_RELATED.search(head):
        return "paper_page"
    if _is_dump(head):
        return "abstract_dump"
    return None


def _is_jsonl(head: str) -> bool:
    """First non-blank lines are JSON objects with paper-like keys (one bad line tolerated)."""
    lines = [ln for ln in head.split("\n", 50)[:50] if ln.strip()][:5]
    if not lines or not lines[0].lstrip().startswith("{"):
        return False
    good = 0
    for ln in lines:
        try:
            obj = json.loads(ln)
        except (ValueError, RecursionError):  # a truncated (or absurdly deep) record counts if it shows paper keys
            good += bool(_JSON_KEY_TEXT.search(ln))
            continue
        good += isinstance(obj, dict) and bool(_JSON_KEYS & obj.keys())
    return good >= 1


def _is_dump(head: str) -> bool:
    """Abstracts each followed by an ``arXiv:ID`` line: >= 1 ID line per 4 lines, prose first."""
    ids = len(_DUMP_ID.findall(head))
    lines = sum(1 for ln in head.split("\n") if ln.strip())
    first = head.lstrip()[:200]
    return (ids > 0 and ids * 4 >= lines and not first.startswith("arXiv:")
            and len(first.split()) >= 8)
