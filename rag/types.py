"""Small frozen records passed between pipeline stages.

Nothing from llama-index or Chroma leaks through these types: ``ui/`` and ``eval/``
see only what is defined here and in :mod:`rag.api`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Any

# Chunk fields with their language: the paper's text fields plus the derived "meta" passage.
TEXT_FIELDS: dict[str, str] = {
    "abstract": "en",
    "tldr_en": "en",
    "tldr_zh": "zh",
    "motivation_zh": "zh",
    "method_zh": "zh",
    "result_zh": "zh",
    "conclusion_zh": "zh",
    "meta": "en",  # derived: authors, categories, comment (venue), DOI, dates, code URL
}
# The text attributes of Paper (TEXT_FIELDS without the derived "meta").
PAPER_TEXT_FIELDS: tuple[str, ...] = tuple(f for f in TEXT_FIELDS if f != "meta")


@dataclass(frozen=True)
class Source:
    """Where a record (or one field of it) came from."""

    file: str
    date: str | None = None  # digest date, ISO YYYY-MM-DD
    format: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Paper:
    """One paper, as parsed from one digest entry or merged across digests."""

    paper_id: str  # arXiv id without version, or "t-<hash>" from the normalised title
    title: str
    arxiv_id: str | None = None
    title_derived: bool = False
    authors: tuple[str, ...] = ()  # "Name (Affiliation)" kept verbatim where given
    abstract: str | None = None
    tldr_en: str | None = None  # English summary (e.g. seed 003 "Abstract summary")
    tldr_zh: str | None = None
    motivation_zh: str | None = None
    method_zh: str | None = None
    result_zh: str | None = None
    conclusion_zh: str | None = None
    categories: tuple[str, ...] = ()  # main category first
    comment: str | None = None
    doi: str | None = None
    code_url: str | None = None
    published: str | None = None  # submission/announcement date (ISO) when the source gives one
    related_to: str | None = None  # paper_id of the page that listed this as a related paper
    sources: tuple[Source, ...] = ()
    provenance: tuple[tuple[str, Source], ...] = ()  # (field name, source) for every field set
    linked_ids: tuple[str, ...] = ()  # other paper_ids merged into this record
    extra: tuple[tuple[str, str], ...] = ()  # any other source field, as (name, value)

    @property
    def url(self) -> str | None:
        return f"https://arxiv.org/abs/{self.arxiv_id}" if self.arxiv_id else None

    @property
    def date(self) -> str | None:
        """Earliest digest date, else the submission date."""
        dates = sorted(s.date for s in self.sources if s.date)
        return dates[0] if dates else self.published

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["url"] = self.url
        d["date"] = self.date
        d["sources"] = [asdict(s) for s in self.sources]
        d["provenance"] = [{"field": f, **asdict(s)} for f, s in self.provenance]
        d["extra"] = dict(self.extra)
        for k in ("authors", "categories", "linked_ids"):
            d[k] = list(d[k])
        return d


@dataclass(frozen=True)
class Chunk:
    """One indexed passage: a field (or a token window of it) of one paper."""

    chunk_id: str
    paper_id: str
    field: str
    lang: str
    text: str  # the passage as shown to users and answerers
    embed_text: str  # what is embedded / BM25-indexed (title-prefixed)
    content_hash: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its score."""

    chunk_id: str
    field: str
    lang: str
    text: str
    score: float


@dataclass(frozen=True)
class Hit:
    """One retrieved paper: its best passages fused into a single source."""

    rank: int
    paper_id: str
    arxiv_id: str | None
    title: str
    score: float
    passages: tuple[Passage, ...]
    date: str | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def url(self) -> str | None:
        return f"https://arxiv.org/abs/{self.arxiv_id}" if self.arxiv_id else None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.field for p in self.passages))


@dataclass(frozen=True)
class Citation:
    n: int
    paper_id: str
    arxiv_id: str | None
    title: str
    url: str | None
    field: str
    passage: str
    support: float  # 0..1 lexical support of the citing sentence(s) by the passage
    evidence: str = ""  # the passage sentence that best supports the citing sentence(s)
    evidence_support: float = 0.0  # 0..1 support of the citing sentence(s) by that one sentence


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer and how well its cited sources support it."""

    text: str
    cites: tuple[int, ...]  # [n] numbers it carries (valid ones)
    support: float  # best support by one of its cited sources (0 when uncited)
    supported: bool  # support >= cite.SUPPORTED; an uncited substantive sentence is unsupported


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    answerer: str  # "extractive" | "llm"
    model: str | None
    embedder: str
    citations: tuple[Citation, ...]
    sources: tuple[Hit, ...]
    timings_ms: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    dropped_citations: tuple[int, ...] = ()  # [n] markers that matched no source
    reason: str = ""  # why this answerer (e.g. "offline: no OPENAI_API_KEY")
    claims: tuple[Claim, ...] = ()  # the answer's sentences with their support
    interpreted: str = ""  # the question as answered, when a chat follow-up was resolved ("its" -> the paper)

    @property
    def unsupported(self) -> tuple[Claim, ...]:
        return tuple(c for c in self.claims if not c.supported)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "answerer": self.answerer,
            "model": self.model,
            "embedder": self.embedder,
            "reason": self.reason,
            "citations": [asdict(c) for c in self.citations],
            "dropped_citations": list(self.dropped_citations),
            "claims": [asdict(c) for c in self.claims],
            "unsupported": [c.text for c in self.unsupported],
            "interpreted": self.interpreted or None,
            "sources": [
                {"rank": h.rank, "paper_id": h.paper_id, "arxiv_id": h.arxiv_id,
                 "title": h.title, "score": round(h.score, 6), "fields": list(h.fields)}
                for h in self.sources
            ],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }


# Shared sentinel: an answer that is exactly this (or starts with it) is an abstention.
CANNOT_ANSWER = "CANNOT_ANSWER"


@dataclass(frozen=True)
class Filters:
    """Restrictions applied to retrieval (dates are ISO YYYY-MM-DD, inclusive)."""

    since: str | None = None
    until: str | None = None
    category: str | None = None  # e.g. "cs.IR"; matches any of the paper's categories
    author: str | None = None  # case-insensitive substring of any author
    top_k: int | None = None


def check_date(value: str) -> str:
    """A filter date as given (YYYY-MM-DD, YYYY-MM or YYYY), or ValueError saying what is accepted."""
    import datetime as dt
    import re

    v = (value or "").strip()
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", v)
    try:
        if m:
            dt.date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
            return v
    except ValueError:
        pass
    raise ValueError(f"{value!r} is not a date: use YYYY-MM-DD (or YYYY-MM, YYYY), e.g. 2025-12-04")


def check_top_k(n: int) -> int:
    if not 1 <= n <= 100:
        raise ValueError(f"top-k must be between 1 and 100, not {n}")
    return n


def check_filters(f: "Filters") -> "Filters":
    """``f`` when every filter is valid, else ValueError naming the bad one (dates, an inverted range,
    top-k outside 1..100)."""
    for name in ("since", "until"):
        value = getattr(f, name)
        if value is not None:
            try:
                check_date(value)
            except ValueError as e:
                raise ValueError(f"--{name}: {e}") from None
    if f.since and f.until and f.since[:len(f.until)] > f.until[:len(f.since)]:
        raise ValueError(f"--since {f.since} is after --until {f.until}: swap them")
    if f.top_k is not None:
        check_top_k(f.top_k)
    return f


@dataclass(frozen=True)
class FileError:
    """A file (or one line of it) that could not be ingested."""

    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ParseResult:
    """What a parser made of one file: records plus per-line problems."""

    file: str
    format: str
    papers: tuple[Paper, ...]
    errors: tuple[FileError, ...] = ()


@dataclass(frozen=True)
class IngestReport:
    files: int = 0
    files_skipped: int = 0  # unchanged since the last ingest (same content hash)
    papers_new: int = 0
    papers_updated: int = 0
    papers_unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    passages_embedded: int = 0  # chunks given a vector (the rest are BM25-only or unchanged)
    failures: tuple[FileError, ...] = ()
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    notes: tuple[str, ...] = ()  # one-line messages, e.g. an index schema upgrade that re-embedded

    @property
    def ok(self) -> bool:
        return not self.failures
