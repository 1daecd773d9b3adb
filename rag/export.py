"""Exports: an answer as Markdown with a numbered reference list, papers (or an answer's cited papers) as
BibTeX ``@misc`` entries with ``eprint``/``archivePrefix`` (what arXiv itself suggests for preprints).

Only :mod:`rag.types` records come in, text goes out: no I/O here (``rag.api`` looks the papers up).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from .types import CANNOT_ANSWER, Answer, Hit, Paper

_AFFIL = re.compile(r"\s*\([^()]*\)\s*$")  # "Name (Affiliation)" -> "Name"
_NEW_ID = re.compile(r"^(\d{2})(\d{2})\.\d{4,5}$")  # 2512.02474 -> 2025-12
_OLD_ID = re.compile(r"^[a-z\-]+(?:\.[A-Z]{2})?/(\d{2})(\d{2})\d{3}$")  # hep-th/9901001 -> 1999-01
_BIB_SPECIAL = re.compile(r"(?<!\\)([&%#_])")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@dataclass(frozen=True)
class Ref:
    """What a reference needs, from a :class:`Paper` or a retrieved :class:`Hit`."""

    paper_id: str
    title: str
    arxiv_id: str | None = None
    authors: tuple[str, ...] = ()
    date: str | None = None  # digest date (ISO)
    categories: tuple[str, ...] = ()
    doi: str | None = None
    comment: str | None = None

    @property
    def url(self) -> str | None:
        return f"https://arxiv.org/abs/{self.arxiv_id}" if self.arxiv_id else None

    @classmethod
    def of(cls, item: Paper | Hit) -> "Ref":
        if isinstance(item, Paper):
            return cls(item.paper_id, item.title, item.arxiv_id, item.authors, item.date, item.categories,
                       item.doi, item.comment)
        return cls(item.paper_id, item.title, item.arxiv_id, item.authors, item.date, item.categories)


def author_names(authors: Iterable[str]) -> list[str]:
    """Author names without the affiliations digests add in parentheses."""
    return [n for n in (_AFFIL.sub("", a).strip() for a in authors) if n]


# ---------------------------------------------------------------- Markdown

def cited_refs(answer: Answer, papers: dict[str, Paper] | None = None) -> list[tuple[int, Ref]]:
    """(n, reference) of every source the answer cites, in citation-number order; a paper record from
    ``papers`` (by paper_id) is preferred to the hit for its fuller metadata."""
    papers = papers or {}
    out: dict[int, Ref] = {}
    for c in sorted(answer.citations, key=lambda c: c.n):
        if c.n in out or not 1 <= c.n <= len(answer.sources):
            continue
        hit = answer.sources[c.n - 1]
        out[c.n] = Ref.of(papers[hit.paper_id]) if hit.paper_id in papers else Ref.of(hit)
    return sorted(out.items())


def _md_escape(text: str) -> str:
    """Text safe inside a Markdown link label / list item (brackets and emphasis characters escaped)."""
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", " ".join(text.split()))


def short_authors(authors: Iterable[str], n: int = 3) -> str:
    names = author_names(authors)
    return ", ".join(names[:n]) + (" et al." if len(names) > n else "")


def reference_line(n: int, ref: Ref) -> str:
    """``[n] [Title](https://arxiv.org/abs/ID) — Authors (arXiv:ID, date)``; no link without an arXiv ID."""
    title = _md_escape(ref.title)
    head = f"[{title}]({ref.url})" if ref.url else f"*{title}*"
    who = short_authors(ref.authors)
    where = ", ".join(x for x in (f"arXiv:{ref.arxiv_id}" if ref.arxiv_id else "no arXiv ID", ref.date) if x)
    return f"- \\[{n}\\] {head}" + (f" — {_md_escape(who)}" if who else "") + f" ({where})"


def answer_markdown(answer: Answer, papers: dict[str, Paper] | None = None, evidence: bool = True) -> str:
    """The answer as Markdown: the question, the answer text with its [n] markers, then a numbered reference
    list of the cited papers with arXiv links (and the sentence that supports each, unless ``evidence`` is
    False). An abstention says so and lists nothing."""
    lines = [f"**Q:** {_md_escape(answer.question)}", ""]
    if answer.abstained:
        note = answer.text.replace(CANNOT_ANSWER, "", 1).strip()
        lines.append(f"*No answer in the indexed digests.* {note}".rstrip())
        return "\n".join(lines) + "\n"
    lines += [_md_body(answer.text), ""]
    refs = cited_refs(answer, papers)
    if refs:
        lines += ["**References**", ""]
        by_n = {c.n: c for c in answer.citations}
        for n, ref in refs:
            lines.append(reference_line(n, ref))
            ev = by_n[n].evidence if n in by_n else ""
            if evidence and ev:
                lines.append(f"  > {_md_escape(ev)}")
    unsupported = [c.text for c in answer.unsupported]
    if unsupported:
        lines += ["", "*Not supported by the cited sources (check before use):* "
                  + " ".join(f"“{_md_escape(t)}”" for t in unsupported)]
    lines += ["", f"<sub>answerer: {answer.answerer}{f' ({answer.model})' if answer.model else ''} · "
                  f"embedder: {answer.embedder}</sub>"]
    return "\n".join(lines) + "\n"


def _md_body(text: str) -> str:
    """Answer text as Markdown: [n] markers escaped (so no renderer reads them as links), lines kept."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"([*_`<>\\])", r"\\\1", line)
        out.append(re.sub(r"\[(\d[\d,\s\-–~]*)\]", r"\\[\1\\]", line))
    return "  \n".join(out)


# ---------------------------------------------------------------- BibTeX

def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _year_month(ref: Ref) -> tuple[str | None, str | None]:
    """From the arXiv ID (its submission month) when there is one, else the digest date."""
    for pat in (_NEW_ID, _OLD_ID):
        m = pat.match(ref.arxiv_id or "")
        if m:
            yy, mm = int(m.group(1)), int(m.group(2))
            year = (2000 if yy < 90 else 1900) + yy
            return str(year), _MONTHS[mm - 1] if 1 <= mm <= 12 else None
    m = re.match(r"(\d{4})-(\d{2})", ref.date or "")
    return (m.group(1), _MONTHS[int(m.group(2)) - 1]) if m and 1 <= int(m.group(2)) <= 12 else (None, None)


def bib_key(ref: Ref, taken: set[str]) -> str:
    """``lastname2025firstword`` (ASCII), made unique against ``taken`` with a/b/c suffixes."""
    names = author_names(ref.authors)
    last = re.sub(r"[^a-z]", "", _ascii(names[0].split()[-1]).lower()) if names else ""
    word = next((w for w in re.findall(r"[a-z0-9]+", _ascii(ref.title).lower())
                 if w not in {"a", "an", "the", "on", "of", "for", "to", "in", "and", "with", "towards"}), "")
    year = _year_month(ref)[0] or ""
    base = f"{last or 'paper'}{year}{word[:20]}" or re.sub(r"\W", "", ref.paper_id)
    key, i = base, 0
    while key in taken:
        key = f"{base}{chr(ord('a') + i) if i < 26 else i}"
        i += 1
    taken.add(key)
    return key


def bib_value(text: str) -> str:
    """A field value safe between braces: LaTeX specials escaped, braces kept only when balanced, unpaired $
    escaped (paired ones, as in ``Align$^3$GR``, are LaTeX math and stay)."""
    text = " ".join((text or "").split())
    depth, ok = 0, True
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        ok = ok and depth >= 0
    if not ok or depth:
        text = text.replace("{", "").replace("}", "")
    text = _BIB_SPECIAL.sub(r"\\\1", text)
    if (text.count("$") - text.count("\\$")) % 2:
        text = re.sub(r"(?<!\\)\$", r"\\$", text)
    return text


def bibtex_entry(ref: Ref, key: str) -> str:
    """One ``@misc`` entry; arXiv papers get ``eprint``, ``archivePrefix`` and ``primaryClass``."""
    year, month = _year_month(ref)
    fields: list[tuple[str, str]] = [("title", "{" + bib_value(ref.title) + "}")]
    names = author_names(ref.authors)
    if names:
        fields.append(("author", " and ".join(bib_value(n) for n in names)))
    if year:
        fields.append(("year", year))
    if month:
        fields.append(("month", month))
    if ref.arxiv_id:
        fields += [("eprint", ref.arxiv_id), ("archivePrefix", "arXiv")]
        if ref.categories:
            fields.append(("primaryClass", bib_value(ref.categories[0])))
        fields.append(("url", ref.url or ""))
    if ref.doi:
        fields.append(("doi", bib_value(ref.doi)))
    note = [f"Listed in an arXiv digest on {ref.date}" if ref.date else "", "" if ref.arxiv_id else "no arXiv ID"]
    if any(note):
        fields.append(("note", bib_value("; ".join(x for x in note if x))))
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields)
    return f"@misc{{{key},\n{body}\n}}\n"


def bibtex(items: Iterable[Paper | Hit | Ref]) -> str:
    """BibTeX for papers (or hits), one ``@misc`` each, in the order given (duplicates by paper_id dropped)."""
    taken: set[str] = set()
    seen: set[str] = set()
    out = []
    for item in items:
        ref = item if isinstance(item, Ref) else Ref.of(item)
        if ref.paper_id in seen:
            continue
        seen.add(ref.paper_id)
        out.append(bibtex_entry(ref, bib_key(ref, taken)))
    return "\n".join(out)


def answer_bibtex(answer: Answer, papers: dict[str, Paper] | None = None) -> str:
    """The answer's cited papers as BibTeX (empty for an abstention)."""
    return bibtex(ref for _, ref in cited_refs(answer, papers))


def norm_id(text: str) -> str:
    """A paper id as users write it -> the index's form: ``arXiv:2512.02474v2`` or an abs/pdf URL ->
    ``2512.02474``; anything else stripped."""
    t = text.strip()
    m = re.search(r"(?:arxiv\.org/(?:abs|pdf)/|arxiv:)?(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?"
                  r"(?:\.pdf)?$", t, re.I)
    return m.group(1) if m else t
