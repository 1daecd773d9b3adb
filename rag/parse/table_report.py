"""Markdown table report: ``# arXiv Daily Report - 04-Dec-2025`` + ``| Title | Link | abstract | author |``.

A row may wrap over several lines (abstract paragraphs); it ends at the line closing the
author cell with ``|``. ``|`` may occur inside the abstract, so cells are found by the first
link cell and the LAST ``|`` separator (authors never contain ``|``).
"""
from __future__ import annotations

import re

from rag.parse.common import MONTHS, arxiv_from_url, line_error, make_paper, split_authors
from rag.text import unescape_latex
from rag.types import FileError, Paper, Source

FORMAT = "table_report"
_HEADER_DATE = re.compile(r"^#\s*arXiv Daily Report\s*-\s*(\d{1,2})-([A-Za-z]{3})[a-z]*-(\d{4})", re.M)
_ROW_START = re.compile(r"^\|.*?\s\|\s*\[https?://", re.I)
_ROW = re.compile(
    r"^\|\s*(?P<title>.*?)\s+\|\s*\[(?P<url>https?://[^\]\s]+)\]\([^)\s]*\)\s*\|(?P<rest>.*)\|\s*$",
    re.S)
_LAST_SEP = re.compile(r"^(?P<abstract>.*)\s\|\s(?P<authors>[^|]*)$", re.S)


def digest_date(text: str) -> str | None:
    """ISO date from the ``# arXiv Daily Report - DD-Mon-YYYY`` header."""
    m = _HEADER_DATE.search(text)
    if not m or m.group(2).lower() not in MONTHS:
        return None
    return f"{int(m.group(3)):04d}-{MONTHS[m.group(2).lower()]:02d}-{int(m.group(1)):02d}"


def parse(text: str, file: str) -> tuple[list[Paper], list[FileError]]:
    """Parse every table row; an unterminated or malformed row becomes a FileError."""
    date = digest_date(text)
    papers: list[Paper] = []
    errors: list[FileError] = []
    for start, lines, closed in _rows(text.split("\n")):
        if not closed:
            errors.append(line_error(file, start, "truncated table row: the row never closes "
                                     "with an '| author |' cell; complete or remove the row"))
            continue
        paper, err = _parse_row("\n".join(lines), file, start, date)
        if paper:
            papers.append(paper)
        else:
            errors.append(line_error(file, start, err))
    return papers, errors


def _rows(lines: list[str]):
    """Yield (start_line, lines, closed) for each table row, joining wrapped lines."""
    cur: list[str] = []
    start = 0
    for i, line in enumerate(lines, 1):
        if _ROW_START.match(line):
            if cur:
                yield start, cur, False
            cur, start = [line], i
        elif cur:
            if not line.strip():
                yield start, cur, False
                cur = []
                continue
            cur.append(line.strip())
        else:
            continue
        if _closed(cur):
            yield start, cur, True
            cur = []
    if cur:
        yield start, cur, False


def _closed(lines: list[str]) -> bool:
    """A row is complete when it ends with '|' after the link cell and an author cell."""
    m = _ROW.match("\n".join(lines))
    return bool(m and _LAST_SEP.match(m.group("rest")))


def _parse_row(row: str, file: str, line: int, date: str | None) -> tuple[Paper | None, str]:
    """One complete row -> Paper, or (None, reason)."""
    m = _ROW.match(row)
    parts = _LAST_SEP.match(m.group("rest")) if m else None
    if not m or not parts:
        return None, "malformed table row: expected | Title | [link](link) | abstract | authors |"
    aid = arxiv_from_url(m.group("url"))
    title = unescape_latex(m.group("title").strip())
    if not title:
        return None, "table row has an empty Title cell; fill in the title"
    src = Source(file=file, date=date, format=FORMAT, line=line)
    fields = {"title": title, "abstract": unescape_latex(parts.group("abstract").strip()),
              "authors": split_authors(parts.group("authors"))}
    extra = [] if aid else [("link", m.group("url"))]
    return make_paper(fields, src, extra=extra, arxiv_id=aid), ""
