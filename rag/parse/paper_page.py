"""One paper page (``- URL:``, ``- Title:``, ``- Abstract summary:`` ...) plus its ``Related papers``.

Related entries have no arXiv id: ``Title [score]`` (the title may wrap over lines), summary
sentences (``<n>``-separated or one per line), then ``arXiv Detail & Related papers (DATE)``,
where DATE belongs to the entry ABOVE and the text after `` - `` starts the next entry's title.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from rag.parse.common import arxiv_from_url, line_error, make_paper, split_authors
from rag.text import clean_markers, unwrap
from rag.types import FileError, Paper, Source

FORMAT = "paper_page"
_FIELD = re.compile(r"^- (URL|Date|Title|Authors|Abstract summary|Score|License|Abstract):\s?(.*)$")
_RELATED = re.compile(r"^\s*Related papers\s*$")
_DETAIL = re.compile(r"^arXiv Detail & Related papers \((?P<date>[^)]*)\)\s*(?:-\s*(?P<next>.*))?$")
_SCORE = re.compile(r"^(?P<title>.*?)\s*\[(?P<score>-?\d+(?:\.\d+)?)\]\s*$")
_FOOTER = re.compile(r"^(This list is automatically generated|This site does not guarantee)")
_ISO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")
_MAX_TITLE_LINES = 3


@dataclass
class _Entry:
    line: int
    title_lines: list[str]
    score: str | None = None
    summary: list[str] = field(default_factory=list)
    date: str | None = None


def parse(text: str, file: str) -> tuple[list[Paper], list[FileError]]:
    """Main paper first, then one Paper per related entry (related_to = main paper_id)."""
    lines = text.split("\n")
    rel = next((i for i, ln in enumerate(lines) if _RELATED.match(ln)), len(lines))
    main, errors = _main(lines[:rel], file)
    papers = [main] if main else []
    entries, errs = _related_entries(lines[rel + 1:], rel + 2, file)
    errors += errs
    parent = main.paper_id if main else None
    papers += [_related_paper(e, file, parent) for e in entries]
    return papers, errors


def _fields(lines: list[str]) -> tuple[dict[str, str], dict[str, int]]:
    """``- Key: value`` pairs (continuation lines appended) and each key's line number."""
    vals: dict[str, list[str]] = {}
    where: dict[str, int] = {}
    cur: list[str] | None = None
    for i, ln in enumerate(lines, 1):
        m = _FIELD.match(ln)
        if m:
            cur = vals.setdefault(m.group(1), [])
            where.setdefault(m.group(1), i)
            cur.append(m.group(2).strip())
        elif cur is not None and ln.strip():
            cur.append(ln.strip())
    return {k: _one_line(v) for k, v in vals.items()}, where


def _one_line(lines: list[str]) -> str:
    """Lines of one value joined as unwrap joins a wrap (a space; none in Chinese or after a
    compound's hyphen)."""
    return unwrap("\n".join(ln for ln in lines if ln), one_line=True).strip()


def _main(lines: list[str], file: str) -> tuple[Paper | None, list[FileError]]:
    """The page's own paper from the ``- Key:`` lines."""
    f, where = _fields(lines)
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    title = f.get("Title") or ("" if first.startswith("- ") else first)
    if not title:
        return None, [line_error(file, 1, "paper page has no '- Title:' line; add the title")]
    aid = arxiv_from_url(f.get("URL", ""))
    fields = {"title": title, "authors": split_authors(f.get("Authors", "")),
              "abstract": f.get("Abstract", ""), "tldr_en": clean_markers(f.get("Abstract summary", "")),
              "published": _date(f.get("Date", ""))}
    extra = [(k.lower(), f[k]) for k in ("Score", "License") if f.get(k)]
    if f.get("URL") and not aid:
        extra.append(("url", f["URL"]))
    src = Source(file=file, date=None, format=FORMAT, line=1)
    return make_paper(fields, src, extra=extra, arxiv_id=aid), []


def _date(value: str) -> str:
    """``Tue, 02 Dec 2025 07:06:44 GMT`` or ``2025-11-15T07:51:10Z`` -> ``2025-12-02``."""
    value = value.strip()
    m = _ISO_DATE.match(value)
    if m:
        return m.group(1)
    try:
        return parsedate_to_datetime(value).date().isoformat() if value else ""
    except (TypeError, ValueError, IndexError):
        return ""


def _related_entries(lines: list[str], offset: int, file: str) -> tuple[list[_Entry], list[FileError]]:
    """State machine over the related list: title lines -> summary lines -> detail/date line."""
    entries: list[_Entry] = []
    errors: list[FileError] = []
    cur: _Entry | None = None
    for n, ln in enumerate(lines, offset):
        s = ln.strip()
        d = _DETAIL.match(s)
        if d:
            if cur is not None:
                cur.date = _date(d.group("date")) or None
                entries.append(cur)
            nxt = (d.group("next") or "").strip()
            cur = _Entry(n, [nxt]) if nxt else None
            if cur:
                _maybe_close_title(cur)
        elif not s or _FOOTER.match(s):
            continue
        elif cur is None:
            cur = _Entry(n, [s[2:] if s.startswith("- ") else s])
            _maybe_close_title(cur)
        elif cur.score is None and len(cur.title_lines) < _MAX_TITLE_LINES:
            cur.title_lines.append(s)
            _maybe_close_title(cur)
        else:
            cur.summary.append(s)
    if cur is not None:
        errors.append(line_error(file, cur.line, "related paper has no 'arXiv Detail & Related "
                                 "papers (date)' line after it; its date is unknown"))
        entries.append(cur)
    return entries, errors


def _maybe_close_title(e: _Entry) -> None:
    """A title is complete once its last line ends with ``[score]``."""
    m = _SCORE.match(e.title_lines[-1])
    if m:
        e.title_lines[-1] = m.group("title")
        e.score = m.group("score")


def _related_paper(e: _Entry, file: str, parent: str | None) -> Paper:
    """Related entry -> Paper without arXiv id (paper_id = title_id(title))."""
    if e.score is None and len(e.title_lines) > 1:  # no [score]: only the first line is title
        e.summary[:0] = e.title_lines[1:]
        e.title_lines = e.title_lines[:1]
    title = _one_line(e.title_lines)
    summary = _one_line([clean_markers(s) for s in e.summary])
    fields = {"title": title, "tldr_en": summary, "published": e.date}
    extra = [("score", e.score)] if e.score else []
    src = Source(file=file, date=None, format=FORMAT, line=e.line)
    return make_paper(fields, src, extra=extra, related_to=parent)
