"""Citation markers: parse ``[n]`` markers from answer text and resolve them to retrieved sources.

Accepted markers: ``[1]``, ``[1, 2]``, ``[1-3]``, ``[1,3-4]``, ``[1；2]``-style separators and the fullwidth
``【1】``. Fullwidth parentheses ``（1）`` are NOT citations (Chinese text uses them for enumerations).
Markers whose numbers all have 4+ digits (``[2020]``) are not citations and are ignored; ``[Total: 6]`` or
``[2508.15281]`` never match. Numbers that match no source (``[0]``, ``[99]``) and over-long ranges
(``[1-1000]``, more than :data:`MAX_RANGE` numbers) are dropped and reported, never resolved.
"""
from __future__ import annotations

import re

from .text import split_sentences
from .types import Citation, Claim, Hit

MAX_RANGE = 10  # a range may expand to at most this many numbers
MIN_TERMS = 3  # support of a sentence with fewer terms is scaled down
SUPPORTED = 0.5  # a claim is supported when this share of its terms is in one cited source
SUBSTANTIVE_TERMS = 8  # an uncited sentence with this many terms (or a number) is a claim without a source
_MARKER = re.compile(r"[\[【]\s*(\d{1,6}(?:\s*[-–~,，、;；]\s*\d{1,6})*)\s*[\]】]")
_PART = re.compile(r"(\d+)(?:\s*[-–~]\s*(\d+))?")
_ONLY_MARKERS = re.compile(r"^(?:\s*" + _MARKER.pattern + r")+[\s.。]*$")
_WORD = re.compile(r"[a-z0-9]+(?:[-@.'][a-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u9fff]+")
_STOP = frozenset("""a an the of in on for to and or with by from at as is are was were be been this that these
those it its we our they their which what who how does do did can via than then also such into using use used""".split())


def _expand(group: str) -> tuple[list[int], list[int]]:
    """(valid numbers, junk numbers) of one marker's inside text, e.g. ``1, 3-4``."""
    good: list[int] = []
    junk: list[int] = []
    for m in _PART.finditer(group):
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        lo, hi = min(a, b), max(a, b)
        if hi - lo + 1 > MAX_RANGE:
            junk.extend([lo, hi])
        else:
            good.extend(range(lo, hi + 1))
    return good, junk


def _marker_numbers(sentence: str) -> tuple[list[int], list[int]]:
    """All citation numbers (valid, junk) in a sentence, skipping year/id-like markers."""
    good: list[int] = []
    junk: list[int] = []
    for m in _MARKER.finditer(sentence):
        nums = re.findall(r"\d+", m.group(1))
        if all(len(x) >= 4 for x in nums):
            continue  # [2020], [202511] are not citation markers
        g, j = _expand(m.group(1))
        good.extend(g)
        junk.extend(j)
    return list(dict.fromkeys(good)), list(dict.fromkeys(junk))


def _sentences(text: str) -> list[str]:
    """Sentences of an answer; a piece made only of markers joins the sentence before it."""
    out: list[str] = []
    for s in split_sentences(text or ""):
        if out and _ONLY_MARKERS.match(s):
            out[-1] = out[-1] + " " + s
        else:
            out.append(s)
    return out


def parse_citations(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, numbers) for every sentence carrying citation markers; junk range ends included."""
    result = []
    for s in _sentences(text):
        good, junk = _marker_numbers(s)
        nums = list(dict.fromkeys(good + junk))
        if nums:
            result.append((s, nums))
    return result


def strip_markers(text: str) -> str:
    """The sentence without its citation markers."""
    return _MARKER.sub(" ", text).strip()


def terms(text: str) -> set[str]:
    """Lexical units for overlap: lowercase words (no stopwords) plus CJK character bigrams."""
    low = (text or "").lower()
    out = {w for w in _WORD.findall(low) if w not in _STOP and len(w) > 1}
    for run in _CJK.findall(low):
        out.update(run[i:i + 2] for i in range(len(run) - 1)) if len(run) > 1 else out.add(run)
    return out


def overlap(sentence: str, passage: str) -> float:
    """Share of the sentence's terms found in the passage (0..1); a sentence with under
    :data:`MIN_TERMS` terms ("1. [2]") can't be well supported."""
    want = terms(strip_markers(sentence))
    if not want:
        return 0.0
    return len(want & terms(passage)) / max(len(want), MIN_TERMS)


def _head(hit: Hit) -> str:
    """The hit's own labelled metadata: it supports identifying labels and metadata lines of an answer."""
    ident = f"arXiv ID: {hit.arxiv_id}" if hit.arxiv_id else "no arXiv ID"
    return "\n".join([hit.title, ident, f"Authors: {', '.join(hit.authors)}", f"Date: {hit.date or ''}",
                      f"Categories: {' '.join(hit.categories)}"])


def _support(sentences: list[str], ref: str) -> float:
    return sum(overlap(s, ref) for s in sentences) / len(sentences)


def _best_passage(sentences: list[str], hit: Hit) -> tuple[str, str, float]:
    """(field, passage text, support) of the hit passage best supporting the citing sentences."""
    best = ("", "", -1.0)
    head = _head(hit)
    for p in hit.passages:
        score = _support(sentences, f"{head}\n{p.text}")
        if score > best[2]:
            best = (p.field, p.text, score)
    if best[2] < 0:  # a hit without passages: only its title can support
        return "title", hit.title, _support(sentences, hit.title)
    return best


def best_sentence(sentences: list[str], passage: str, title: str = "") -> tuple[str, float]:
    """(sentence of ``passage`` that best supports the citing sentences, its support); the title counts as
    context for every sentence (it names what the sentence is about)."""
    best = ("", 0.0)
    for cand in split_sentences(passage) or [passage]:
        score = _support(sentences, f"{title}\n{cand}" if title else cand)
        if score > best[1] or not best[0]:
            best = (cand, score)
    return best


def _citing(text: str) -> tuple[dict[int, list[str]], list[int]]:
    """Citing sentences per number (in order of first use) and the junk numbers."""
    by_n: dict[int, list[str]] = {}
    junk: list[int] = []
    for s in _sentences(text):
        good, bad = _marker_numbers(s)
        junk.extend(bad)
        for n in good:
            by_n.setdefault(n, []).append(s)
    return by_n, junk


def build_citations(text: str, hits: list[Hit] | tuple[Hit, ...]) -> tuple[tuple[Citation, ...], tuple[int, ...]]:
    """Resolve ``[n]`` (n = 1-based position in ``hits``) to citations; return (citations, dropped numbers)."""
    by_n, junk = _citing(text)
    cites: list[Citation] = []
    dropped = list(junk)
    for n, sents in by_n.items():
        if not 1 <= n <= len(hits):
            dropped.append(n)
            continue
        hit = hits[n - 1]
        field, passage, support = _best_passage(sents, hit)
        evidence, ev_support = best_sentence(sents, passage, hit.title)
        cites.append(Citation(n=n, paper_id=hit.paper_id, arxiv_id=hit.arxiv_id, title=hit.title, url=hit.url,
                              field=field, passage=passage, support=_clamp(support), evidence=evidence,
                              evidence_support=_clamp(ev_support)))
    cited = {c.n for c in cites}  # an end of a junk range like [1-1000] that is also cited as [1] is not dropped
    return tuple(cites), tuple(n for n in dict.fromkeys(dropped) if n not in cited)


def _clamp(x: float) -> float:
    return round(max(0.0, min(1.0, x)), 4)


def _substantive(sentence: str) -> bool:
    """Does an uncited sentence state something checkable (a number, or many content words)? Frames such as
    "According to the retrieved digests:" and notes on what the sources lack do not."""
    plain = strip_markers(sentence)
    return bool(re.search(r"\d", re.sub(r"\b\d{4}\.\d{4,5}\b", "", plain))) or len(terms(plain)) >= SUBSTANTIVE_TERMS


def claims(text: str, hits: list[Hit] | tuple[Hit, ...]) -> tuple[Claim, ...]:
    """Every cited or substantive sentence of an answer with the best support one of its cited sources gives
    it (passage + title/metadata); unsupported ones are kept and flagged, never dropped."""
    out = []
    for s in _sentences(text):
        good, _ = _marker_numbers(s)
        valid = [n for n in good if 1 <= n <= len(hits)]
        if not valid and not _substantive(s):
            continue
        sup = max((_best_passage([s], hits[n - 1])[2] for n in valid), default=0.0)
        out.append(Claim(text=strip_markers(s), cites=tuple(valid), support=_clamp(sup),
                         supported=bool(valid) and sup >= SUPPORTED))
    return tuple(out)
