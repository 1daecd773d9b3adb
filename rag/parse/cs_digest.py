"""daily-arXiv-ai-enhanced markdown digest: ``### [n] [Title](https://arxiv.org/abs/ID)`` entries.

Each entry: *authors* line, ``Main category:``, Chinese ``TL;DR:``, then inside ``<details>``
Chinese Motivation/Method/Result/Conclusion and the English ``Abstract:`` (may span lines).
A labelled value runs until a blank line, the next label or a ``<details>`` tag.
"""
from __future__ import annotations

import re

from rag.parse.common import (arxiv_from_url, date_from_name, is_placeholder, line_error,
                              make_paper)
from rag.text import unescape_latex
from rag.types import FileError, Paper, Source

FORMAT = "cs_digest"
ENTRY = re.compile(r"^###\s*\[(\d+)\]\s*\[(?P<title>.*)\]\((?P<url>https?://[^)\s]+)\)\s*$")
_ENTRY_LOOSE = re.compile(r"^###\s*\[\d+\]")
_LABEL = re.compile(r"^(Main category|TL;DR|Motivation|Method|Result|Conclusion|Abstract):\s?(.*)$")
_STOP = re.compile(r"^\s*$|^\s*</?details>|^\s*<summary>|^<div |^#")
_AUTHORS = re.compile(r"^\*(?!\*)(.+)\*\s*$")
_ZH = {"TL;DR": "tldr_zh", "Motivation": "motivation_zh", "Method": "method_zh",
       "Result": "result_zh", "Conclusion": "conclusion_zh"}


def parse(text: str, file: str) -> tuple[list[Paper], list[FileError]]:
    """Parse all ``### [n]`` entries; a header without an arXiv link is a FileError."""
    date = date_from_name(file)
    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if _ENTRY_LOOSE.match(ln)]
    papers: list[Paper] = []
    errors: list[FileError] = []
    for k, i in enumerate(starts):
        block = lines[i:starts[k + 1] if k + 1 < len(starts) else len(lines)]
        paper = _entry(block, file, i + 1, date)
        if paper is None:
            errors.append(line_error(file, i + 1, "entry header is not '### [n] [Title]"
                                     "(https://arxiv.org/abs/ID)'; fix the title link"))
        else:
            papers.append(paper)
    return papers, errors


def _entry(block: list[str], file: str, line: int, date: str | None) -> Paper | None:
    """One entry block (header line first) -> Paper."""
    m = ENTRY.match(block[0])
    aid = arxiv_from_url(m.group("url")) if m else None
    if not m or not aid:
        return None
    labels = _labels(block[1:])
    fields = {"title": unescape_latex(m.group("title").strip()),
              "authors": _authors(block[1:]),
              "abstract": unescape_latex(labels.get("Abstract", "")),
              "categories": [labels["Main category"]] if labels.get("Main category") else []}
    for label, name in _ZH.items():
        value = labels.get(label, "")
        fields[name] = "" if is_placeholder(value) else value
    return make_paper(fields, Source(file=file, date=date, format=FORMAT, line=line), arxiv_id=aid)


def _authors(lines: list[str]) -> list[str]:
    """The first *italic* line before any label holds comma-separated authors."""
    for ln in lines:
        if _LABEL.match(ln):
            break
        m = _AUTHORS.match(ln.strip())
        if m:
            return [a.strip() for a in m.group(1).split(",") if a.strip()]
    return []


def _labels(lines: list[str]) -> dict[str, str]:
    """Label -> value; continuation lines kept verbatim (rstripped), joined with newlines."""
    out: dict[str, list[str]] = {}
    cur: list[str] | None = None
    for ln in lines:
        m = _LABEL.match(ln)
        if m:
            cur = out.setdefault(m.group(1), [])
            cur.append(m.group(2).rstrip())
        elif cur is not None and not _STOP.match(ln):
            cur.append(ln.rstrip())
        else:
            cur = None
    return {k: "\n".join(v).strip() for k, v in out.items()}
