"""Turn merged papers into indexed chunks: one per text field, token windows for long fields.

Token counts use cl100k_base loaded from the bundled rag/data/tiktoken file (never downloaded).
Fields longer than ``settings.chunk_tokens`` are split by llama-index's SentenceSplitter at sentence
boundaries (English . ! ? and Chinese 。！？), then clauses (, ; ，；), then words/characters, with
``settings.chunk_overlap`` tokens of overlap between consecutive windows.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import tiktoken
from tiktoken.load import load_tiktoken_bpe

from rag.config import Settings
from rag.types import TEXT_FIELDS, Chunk, Paper
from rag.util import no_gc

TIKTOKEN_FILE = Path(__file__).resolve().parent / "data" / "tiktoken" / "cl100k_base.tiktoken"
TIKTOKEN_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base constants, as in tiktoken_ext.openai_public (checked against it in tests).
CL100K_PAT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
              r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                  "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
MAX_AUTHORS_CHARS = 990
# Sentence ends: Chinese terminators (+ closing quote) with any following space, English
# terminators followed by whitespace, or a newline (parsers unwrap hard wraps, rag.text.unwrap, so
# a newline left in a field ends a paragraph or a list item). Pieces keep their whitespace so they
# re-join losslessly.
_SENT_BOUNDARY = re.compile(r"[。！？]+[”’」』）)]*\s*|[.!?]+[\"'”’)\]]*\s+|\n\s*")
_CLAUSES = "[^,.;，；。？！]+[,.;，；。？！]?|[,.;，；。？！]"
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_AFFIL = re.compile(r"\s*\([^()]*\)")


# ---------------------------------------------------------------- tokenizer

def _read_ranks(path: Path) -> dict[bytes, int]:
    """Parse a .tiktoken file ourselves (used only if tiktoken's cache dir is unwritable)."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != TIKTOKEN_SHA256:
        raise ValueError(f"{path}: cl100k_base file is corrupt (sha256 mismatch); reinstall digestqa")
    return {base64.b64decode(tok): int(rank) for tok, rank in (l.split() for l in data.splitlines() if l)}


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """cl100k_base from the bundled BPE file (hash-checked, offline)."""
    try:
        ranks = load_tiktoken_bpe(str(TIKTOKEN_FILE), expected_hash=TIKTOKEN_SHA256)
    except OSError:  # e.g. read-only TIKTOKEN_CACHE_DIR: tiktoken fails to copy the file there
        ranks = _read_ranks(TIKTOKEN_FILE)
    return tiktoken.Encoding(name="cl100k_base", pat_str=CL100K_PAT, mergeable_ranks=ranks,
                             special_tokens=CL100K_SPECIAL)


@lru_cache(maxsize=4096)
def _encode(text: str) -> list[int]:
    """Token ids of `text` (special-token text is treated as plain text)."""
    return encoding().encode_ordinary(text)


def count_tokens(text: str) -> int:
    known = getattr(_KNOWN, "counts", None)
    n = known.get(text) if known else None
    return len(_encode(text)) if n is None else n


# Token counts and sentence pieces a batch already computed (chunk_papers), seen by count_tokens
# and the splitter in this thread only.
_KNOWN = threading.local()


@contextmanager
def _known(counts: dict[str, int], pieces: dict[str, list[str]] | None = None) -> Iterator[None]:
    prev = getattr(_KNOWN, "counts", None), getattr(_KNOWN, "pieces", None)
    _KNOWN.counts, _KNOWN.pieces = counts, pieces
    try:
        yield
    finally:
        _KNOWN.counts, _KNOWN.pieces = prev


# ---------------------------------------------------------------- splitting

def sentence_pieces(text: str) -> list[str]:
    """Sentences with their trailing whitespace kept ("".join(pieces) == text)."""
    known = getattr(_KNOWN, "pieces", None)
    if known and text in known:
        return list(known[text])
    out, start = [], 0
    for m in _SENT_BOUNDARY.finditer(text):
        if m.end() > start:
            out.append(text[start:m.end()])
            start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out


@lru_cache(maxsize=8)
def _splitter(chunk_size: int, overlap: int):
    from llama_index.core.node_parser import SentenceSplitter

    class _Splitter(SentenceSplitter):
        """SentenceSplitter counting tokens with our cached cl100k encoder.

        (The base class reads its tokenizer through pydantic's private-attribute lookup on every
        split, which costs more than the encoding itself on short sentences.)
        """

        def _token_size(self, text: str) -> int:
            # Every whitespace-separated run starts its own cl100k pre-token, so the word count is a
            # lower bound: when it already exceeds the window, the exact count is not needed.
            words = len(text.split())
            return words if words > self.chunk_size else count_tokens(text)

    return _Splitter(chunk_size=chunk_size, chunk_overlap=overlap, tokenizer=_encode,
                     chunking_tokenizer_fn=sentence_pieces, secondary_chunking_regex=_CLAUSES,
                     paragraph_separator="\n\n\n", include_metadata=False, include_prev_next_rel=False)


def _bound(text: str, max_tokens: int) -> bool | None:
    """Whether `text` fits when a cheap bound decides (tokens <= UTF-8 bytes, and tokens >=
    whitespace-separated runs, each of which starts its own pre-token); None when it cannot."""
    if len(text) * 4 <= max_tokens or len(text.encode("utf-8")) <= max_tokens:
        return True
    if text.count(" ") >= max_tokens and len(text.split()) > max_tokens:
        return False
    return None


def _fits(text: str, max_tokens: int) -> bool:
    """Exact check; skips encoding when a cheap bound decides."""
    fits = _bound(text, max_tokens)
    return count_tokens(text) <= max_tokens if fits is None else fits


def count_many(texts: list[str]) -> list[int]:
    """Token counts of many texts, encoded on every core (tiktoken releases the GIL while it
    encodes; one long-running thread per core, as a task per text costs as much as encoding it)."""
    enc, n = encoding(), min(os.cpu_count() or 1, 8)
    if n == 1 or len(texts) < 256:
        return [len(enc.encode_ordinary(t)) for t in texts]
    with ThreadPoolExecutor(n) as pool:
        parts = list(pool.map(lambda part: [len(enc.encode_ordinary(t)) for t in part],
                              [texts[i::n] for i in range(n)]))
    out = [0] * len(texts)
    for i, part in enumerate(parts):
        out[i::n] = part
    return out


def _token_windows(text: str, size: int, overlap: int) -> list[str]:
    """Last resort: fixed token windows (only if sentence splitting cannot meet the limit)."""
    ids = _encode(text)
    step = max(1, size - overlap)
    return [encoding().decode(ids[i:i + size]).strip() for i in range(0, max(1, len(ids) - overlap), step)]


def split_text(text: str, max_tokens: int, overlap: int, n_tokens: int | None = None) -> list[str]:
    """Passages of at most `max_tokens` tokens; short texts are returned whole without splitting.
    ``n_tokens``: the text's token count, when already known."""
    if (n_tokens <= max_tokens) if n_tokens is not None else _fits(text, max_tokens):
        return [text]
    return _split_long(text, max_tokens, overlap)


def _sentence_split(text: str, size: int, overlap: int) -> list[str] | None:
    """llama-index's SentenceSplitter at window ``size`` (None when it cannot meet it)."""
    try:
        # _split_text is SentenceSplitter's splitting proper; split_text only adds
        # instrumentation spans, which cost ~0.3 ms per call.
        return _splitter(size, min(overlap, size // 2))._split_text(text, chunk_size=size)
    except ValueError:
        return None


def _split_long(text: str, max_tokens: int, overlap: int, first: list[str] | None = None) -> list[str]:
    """Sentence windows of a text known to be too long; ``first``: the splitter's parts at
    ``max_tokens``, when already made."""
    overlap = min(overlap, max_tokens // 2)
    size = max_tokens
    for attempt in range(4):  # joined pieces can tokenise a little longer than their parts: shrink and retry
        parts = first if attempt == 0 and first is not None else _sentence_split(text, size, overlap)
        if parts is None:
            break
        over = [count_tokens(p) - max_tokens for p in parts if not _fits(p, max_tokens)]
        if not over:
            return [p for p in parts if p]
        size -= max(2, max(over))
    return [p for p in _token_windows(text, max_tokens, overlap) if p]


def _count_into(counts: dict[str, int], texts: Iterable[str]) -> None:
    """Add the token counts of the texts not yet in ``counts`` (one threaded batch)."""
    need = [t for t in dict.fromkeys(texts) if t not in counts]
    counts.update(zip(need, count_many(need)))


def split_many(texts: list[str], max_tokens: int, overlap: int, counts: dict[str, int]) -> dict[str, list[str]]:
    """split_text of many texts known to be too long (``counts`` holds their token counts and
    receives the new ones). Same passages as split_text one by one, but every cl100k count is
    made in threaded batches: the sentences' before splitting, the windows' after."""
    pieces = {t: sentence_pieces(t) for t in texts}
    _count_into(counts, (pc for ps in pieces.values() for pc in ps if len(pc.split()) <= max_tokens))
    with _known(counts, pieces):
        first = {t: _sentence_split(t, max_tokens, overlap) for t in texts}
    _count_into(counts, (p for ps in first.values() if ps for p in ps if _bound(p, max_tokens) is None))
    with _known(counts, pieces):
        return {t: _split_long(t, max_tokens, overlap, first[t]) for t in texts}


# ---------------------------------------------------------------- chunks

def _authors(paper: Paper) -> str:
    """Comma-joined authors (< 1000 chars): with affiliations if they fit, else names only."""
    full = ", ".join(paper.authors)
    if len(full) <= MAX_AUTHORS_CHARS:
        return full
    names = ", ".join(_AFFIL.sub("", a).strip() for a in paper.authors)
    if len(names) <= MAX_AUTHORS_CHARS:
        return names
    cut = names.rfind(", ", 0, MAX_AUTHORS_CHARS - 8)
    return names[:cut if cut > 0 else MAX_AUTHORS_CHARS - 8] + ", et al."


def date_int(date: str | None) -> int:
    """20251120 for "2025-11-20"; 0 when unknown (for numeric range filters)."""
    m = _DATE.match(date or "")
    return int("".join(m.groups())) if m else 0


def paper_metadata(paper: Paper) -> dict[str, str | int]:
    """Chroma-safe metadata shared by every chunk of a paper (no None, no lists)."""
    date = paper.date or ""
    return {"paper_id": paper.paper_id, "arxiv_id": paper.arxiv_id or "", "title": paper.title or "",
            "date": date, "date_int": date_int(date), "categories": ",".join(paper.categories),
            "authors": _authors(paper)}


def _content_hash(embed_text: str, meta: dict) -> str:
    """sha1 of the passage and its sorted metadata (hashed in one update: same digest as one per key)."""
    tail = "".join([f"\x1f{k}={meta[k]}" for k in sorted(meta)])
    return hashlib.sha1(f"{embed_text}{tail}".encode("utf-8")).hexdigest()


def _make_chunk(paper: Paper, base: dict, field: str, i: int, passage: str) -> Chunk:
    lang = TEXT_FIELDS[field]
    meta = {**base, "field": field, "lang": lang, "chunk": i}
    embed = f"{paper.title}\n{passage}" if paper.title else passage
    return Chunk(chunk_id=f"{paper.paper_id}:{field}:{i}", paper_id=paper.paper_id, field=field,
                 lang=lang, text=passage, embed_text=embed, content_hash=_content_hash(embed, meta),
                 metadata=meta)


def meta_text(paper: Paper) -> str:
    """The record's metadata as one searchable passage (venue, DOI, dates, authors...)."""
    extra = dict(paper.extra)
    parts = [("arXiv", paper.arxiv_id), ("Authors", "; ".join(paper.authors)),
             ("Categories", ", ".join(paper.categories)), ("Comment", paper.comment), ("DOI", paper.doi),
             ("Submitted", paper.published), _digest_dates(paper),
             ("Code", paper.code_url), ("License", extra.get("license")), ("Score", extra.get("score"))]
    if not (paper.comment or paper.doi or paper.published or paper.code_url or paper.authors):
        return ""
    return ". ".join(f"{k}: {v}" for k, v in parts if v) + "."


def _digest_dates(paper: Paper) -> tuple[str, str | None]:
    """("Digest date", d) for one digest date, ("Digest dates", "d1, d2") when several digests listed the paper."""
    dates = sorted({s.date for s in paper.sources if s.date})
    if len(dates) > 1:
        return "Digest dates", ", ".join(dates)
    return "Digest date", paper.date if paper.date != paper.published else None


def field_texts(paper: Paper) -> list[tuple[str, str]]:
    """(field, text) of the paper's non-empty text fields, the derived metadata passage included."""
    out = []
    for field in TEXT_FIELDS:
        text = meta_text(paper) if field == "meta" else (getattr(paper, field) or "").strip()
        if text:
            out.append((field, text))
    return out


def chunk_paper(paper: Paper, settings: Settings, counts: dict[str, int] | None = None,
                texts: list[tuple[str, str]] | None = None,
                splits: dict[str, list[str]] | None = None) -> list[Chunk]:
    """One chunk per non-empty text field (plus a metadata passage); long fields become windows.
    ``counts``: known token counts by text; ``texts``: field_texts(paper); ``splits``: windows of
    long texts (each when already made)."""
    base = paper_metadata(paper)
    out: list[Chunk] = []
    for field, text in field_texts(paper) if texts is None else texts:
        passages = splits.get(text) if splits else None
        if passages is None:
            n = counts.get(text) if counts else None
            passages = split_text(text, settings.chunk_tokens, settings.chunk_overlap, n)
        for i, passage in enumerate(passages):
            out.append(_make_chunk(paper, base, field, i, passage))
    return out


def chunk_papers(papers: Iterable[Paper], settings: Settings) -> list[Chunk]:
    """Chunks of many papers, in input order (cyclic GC paused while building them). The texts no
    cheap bound decides are counted first, in one batch across cores; the long ones are split
    together (split_many)."""
    size, overlap = settings.chunk_tokens, settings.chunk_overlap
    with no_gc():
        papers = list(papers)
        texts = [field_texts(p) for p in papers]
        bounds = {t: _bound(t, size) for fields in texts for _, t in fields}
        counts: dict[str, int] = {}
        _count_into(counts, (t for t, fits in bounds.items() if fits is None))
        long = [t for t, fits in bounds.items() if fits is False or (fits is None and counts[t] > size)]
        splits = split_many(long, size, overlap, counts)
        return [c for p, f in zip(papers, texts) for c in chunk_paper(p, settings, counts, f, splits)]
