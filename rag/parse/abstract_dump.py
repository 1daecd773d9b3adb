"""Title-less abstract dump: each ``arXiv:ID`` (optionally `` - doi: DOI``) line FOLLOWS its abstract.

Layout per entry: abstract line(s), an optional short comments line (venue, pages), then the
ID line. The ID (or DOI) is glued to the START of the next abstract on the same line, e.g.
``arXiv:2508.15281Sequential recommendation ...``. Splitting heuristics:

- ID: new-style ``YYMM.NNNNN`` (5 digits from 2015 = YYMM >= 1501, else 4) plus an optional
  ``vN``; old style ``archive(.XX)/NNNNNNN``. Anything after the fixed-width id is next text.
- DOI: ``10.<registrant>/<suffix>``; the suffix has no spaces, so the candidate is the whole
  non-space token. The glued abstract starts at the EARLIEST position p (p > 0) in that token
  such that token[p:] is one capitalised word (``[A-Z][A-Za-z]*`` with optional hyphen/apostrophe
  parts, e.g. ``Multi-objective``, ``In``, ``LLMs``) and token[p-1] is not a letter. DOI
  suffixes (``3711896.3737117``, ``TPAMI.2023.123``, ``j.neucom.2023.01.001``) contain digits
  or dots, so their words are never the whole tail. Only split when more text follows the token
  on the line. Limitation: a DOI suffix ending in a letter glued to a capital letter
  (``.../ABCWe ...``) cannot be split reliably; it is split at the last non-letter.
- Comments: a line between abstract and ID is a comment if it is short (<= 300 chars) and
  looks like venue/pages text (pages, figures, accepted, submit, proceedings, conference,
  ``KDD'25``, a year, ...). Other extra lines are further abstract paragraphs.
- Display title (title_derived=True): the SHORT name of the method the abstract introduces
  (``MMQ``, not ``Multimodal Mixture-of-Quantization (MMQ)``). Sentences are scanned in order
  and the first sentence that names a method wins; within a sentence: ``named/termed/called/
  dubbed X``, then a coined name right after ``we propose/introduce/present/develop``
  (``REG4Rec``, ``ShoppingBench``), then ``we propose ... Long Name (ACR)`` -> ``ACR``. A name
  counts as coined if it has 2+ capitals or a capital and a digit. Otherwise a short phrase
  from the key sentence (``This paper presents a novel attention mechanism`` -> ``A novel
  attention mechanism``); last resort the first ten words of the abstract.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.parse.common import line_error, make_paper
from rag.text import split_sentences, unwrap
from rag.types import FileError, Paper, Source

FORMAT = "abstract_dump"
ID_LINE = re.compile(
    r"^arXiv:(?:(?P<yymm>\d{4})\.(?P<num>\d{4,5})|(?P<old>[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}))")
_VERSION = re.compile(r"v\d+")
_DOI = re.compile(r"^\s*-\s*doi:\s*(?P<doi>10\.\d{4,9}/\S+)")
_WORD_TAIL = re.compile(r"[A-Z][A-Za-z]*(?:[-'’][A-Za-z]+)*[,:;]?")
_COMMENT = re.compile(
    r"\b(?:pages?|figures?|tables?|accepted|submit(?:ted)?|to appear|conference|proceedings"
    r"|workshop|journal|symposium|camera[- ]ready|under review|preprint|project page|code)\b"
    r"|[A-Z]{2,}\s*'?\s*\d{2,4}\b|\b(?:19|20)\d{2}\b", re.I)
_MAX_COMMENT = 300


@dataclass
class _Entry:
    line: int
    lines: list[str]
    line_nos: list[int] = field(default_factory=list)


def parse(text: str, file: str) -> tuple[list[Paper], list[FileError]]:
    """Split into (abstract, comment, id, doi) entries; each becomes a Paper with a derived title."""
    papers: list[Paper] = []
    errors: list[FileError] = []
    cur: _Entry | None = None
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        ident = split_id_line(line)
        if ident is None:
            if line:
                cur = cur or _Entry(n, [])
                cur.lines.append(line)
                cur.line_nos.append(n)
            continue
        aid, doi, rest = ident
        if cur is None or not cur.lines:
            errors.append(line_error(file, n, f"arXiv:{aid} has no abstract above it; "
                                     "put the abstract before its arXiv: line"))
        else:
            papers.append(_paper(cur, aid, doi, file))
        cur = _Entry(n, [rest], [n]) if rest else None
    if cur is not None and cur.lines:
        errors.append(line_error(file, cur.line, "abstract has no 'arXiv:ID' line after it; "
                                 "add the ID line (kept without an arXiv id)"))
        papers.append(_paper(cur, None, None, file))
    return papers, errors


def split_id_line(line: str) -> tuple[str, str | None, str] | None:
    """``arXiv:ID[ - doi: DOI]<glued next text>`` -> (id, doi, next text); None if not an ID line."""
    m = ID_LINE.match(line)
    if not m:
        return None
    if m.group("old"):
        aid, pos = m.group("old"), m.end()
    else:
        width = 5 if int(m.group("yymm")) >= 1501 else 4
        if len(m.group("num")) < width:
            return None
        aid = f"{m.group('yymm')}.{m.group('num')[:width]}"
        pos = m.start("num") + width
    v = _VERSION.match(line, pos)
    if v:
        aid, pos = aid + v.group(), v.end()
    doi, rest = _split_doi(line[pos:])
    return aid, doi, rest.strip()


def _split_doi(text: str) -> tuple[str | None, str]:
    """`` - doi: 10.x/yNextText more`` -> (DOI, "NextText more"); see the module docstring."""
    m = _DOI.match(text)
    if not m:
        return None, text
    token, after = m.group("doi"), text[m.end():]
    if not after.strip():
        return token, ""
    for p in range(1, len(token)):
        if not token[p - 1].isalpha() and _WORD_TAIL.fullmatch(token, p):
            return token[:p], token[p:] + after
    return token, after


def _paper(e: _Entry, aid: str | None, doi: str | None, file: str) -> Paper:
    """Entry lines -> Paper: trailing venue-like line is the comment, the rest the abstract."""
    lines = list(e.lines)
    comment = ""
    if len(lines) > 1 and len(lines[-1]) <= _MAX_COMMENT and _COMMENT.search(lines[-1]):
        comment = lines.pop()
    abstract = unwrap("\n".join(lines))  # before derive_title reads its sentences
    fields = {"title": derive_title(abstract), "abstract": abstract, "comment": comment, "doi": doi}
    src = Source(file=file, date=None, format=FORMAT, line=e.line)
    return make_paper(fields, src, arxiv_id=aid, title_derived=True)


_NAME = r"([A-Z0-9][\w\-]*[A-Za-z0-9])"
_NAMED = re.compile(r"\b(?:named|termed|called|dubbed|coined)\s+(?:as\s+)?" + _NAME)
_VERB = r"\b(?:[Ww]e|[Tt]his (?:paper|work|study)|[Oo]ur (?:paper|work))\s+(?:propose|introduce|present|develop|design|build)s?\b"
_ACRONYM = re.compile(_VERB + r"[^.;:()]{0,120}?\(([A-Z][A-Za-z0-9\-]*[A-Z0-9][A-Za-z0-9\-]*)\)")
_COINED = re.compile(_VERB + r"\s+(?:the\s+|a\s+|an\s+)?" + _NAME)
_PHRASE = re.compile(_VERB + r"\s+((?:a|an|the)\s+(?:novel|new)\s+[^.,;:()]{3,80})")


def derive_title(abstract: str) -> str:
    """A display title for a title-less abstract (see the module docstring for the rules)."""
    sentences = split_sentences(abstract) or [abstract]
    for sentence in sentences:  # the first sentence that names a method wins
        name = _name_in(sentence)
        if name:
            return name
    m = _PHRASE.search(abstract)
    if m:
        phrase = " ".join(m.group(1).split()[:8])
        return phrase[0].upper() + phrase[1:]
    words = sentences[0].split()
    return " ".join(words[:10]) + ("…" if len(words) > 10 else "")


def _name_in(sentence: str) -> str | None:
    """Method name introduced in one sentence: named/termed X, coined X after the verb, (ACR)."""
    for rx in (_NAMED, _COINED, _ACRONYM):
        for m in rx.finditer(sentence):
            if _is_coined(m.group(1)):
                return m.group(1)
    return None


def _is_coined(name: str) -> bool:
    """A method name, not an ordinary word: 2+ capitals, or letters mixed with digits."""
    caps = sum(c.isupper() for c in name)
    return caps >= 2 or (caps >= 1 and any(c.isdigit() for c in name))
