"""Evidence: the units of retrieved sources (title, sentences, metadata fields) and how well each answers a part.

A unit's lexical score is the weighted share of the part's terms it covers; terms found in its paper's title
(or ids/authors) count for every unit of that paper, since they say what the unit is about. Term weights
are rarity across the retrieved sources times a kind weight (named/technical terms weigh more). With a
:class:`Dense` scorer, the unit's sentence-vector similarity to the part is mixed in (this is what lets a
Chinese question find English evidence with a multilingual embedder). Instruction-like sentences are never
evidence (digest text is data).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..text import display, language, norm, split_sentences
from ..types import Hit
from .question import Part
from .terms import Term, find, names_paper

KIND_WEIGHT = {"strong": 2.0, "phrase": 2.5, "name": 1.5, "date": 2.0, "weak": 1.0, "cjk": 0.6, "common": 1.0}
MIN_UNIT_CHARS = 12
_META_FIELD_KEYS = ("arXiv", "Authors", "Categories", "Comment", "DOI", "Submitted", "Digest dates", "Digest date",
                    "Code", "License", "Score", "Journal ref")
_META_FIELD = re.compile(r"(?:^|(?<=\.\s))(" + "|".join(_META_FIELD_KEYS) + r"):\s+")
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.。]{0,40}\b(?:instructions?|prompts?|rules?|context|above|"
    r"previous|prior)\b|\bsystem prompt\b|\byou are now\b|\bact as\b|\bnew instructions?\b|"
    r"\b(?:respond|reply|answer|output|say|print)\s+(?:only\s+)?(?:with\s+)?(?:the\s+word\s+)?[\"'“]|"
    r"\b(?:respond|reply|output|print)\s+only\b|\bignore\s+(?:the|this|your|any|all)\s+(?:question|user|system)|"
    r"忽略.{0,12}(?:指令|指示|提示|要求|说明)|无视.{0,12}(?:指令|指示)|你现在是", re.I)
_CONTRAST = re.compile(r"\b(?:unlike|instead of|rather than|in contrast to|as opposed to|different from|"
                       r"differs from|replac(?:e|es|ing) )|不同于|区别于|而非|而不是|取代")


class Dense(Protocol):
    """Sentence-vector similarity: one score per text (None where the embedder cannot compare the two)."""

    def similarities(self, query: str, texts: list[str]) -> list[float | None]: ...


Bridge = Callable[[Term], tuple[str, ...]]  # a Chinese term -> English word prefixes it may match (or ())


@dataclass(frozen=True)
class Unit:
    text: str  # as shown to users
    norm: str
    kind: str  # "title" | "sentence" | "meta"
    field: str  # passage field (abstract, tldr_zh ...) or metadata key (Authors, Comment ...)
    lang: str  # en | zh | meta


@dataclass
class Source:
    """One retrieved paper as evidence."""

    hit: Hit
    index: int  # 0-based position among the hits; cited as [index + 1]
    units: list[Unit]
    head: str  # normalised title + arXiv id + authors
    matches: dict[int, dict[str, int]] = field(default_factory=dict)  # unit position -> term key -> position
    covered: set[str] = field(default_factory=set)  # term keys found anywhere in this source
    in_head: set[str] = field(default_factory=set)  # term keys found in its title/ids/authors
    contrast: set[str] = field(default_factory=set)  # required keys it mentions only after a contrast cue
    names: set[str] = field(default_factory=set)  # term keys that are this paper's own name (title, "we propose X")

    @property
    def has_zh(self) -> bool:
        return any(u.lang == "zh" for u in self.units)

    def meta(self, key: str) -> Unit | None:
        return next((u for u in self.units if u.kind == "meta" and u.field == key), None)


@dataclass(frozen=True)
class Scored:
    source: Source
    unit: Unit
    pos: int
    score: float
    lexical: float
    dense: float | None


def is_instruction(sentence: str) -> bool:
    """Does a source sentence read like an instruction to the answerer (prompt injection)?"""
    return bool(_INJECTION.search(sentence))


def meta_fields(hit: Hit) -> dict[str, str]:
    """Metadata of a hit: the fields of its "meta" passage, completed from the hit (authors, categories ...)."""
    out: dict[str, str] = {}
    for p in hit.passages:
        if p.field == "meta":
            parts = _META_FIELD.split(p.text.strip())
            out.update((k, v.strip().rstrip(".").strip()) for k, v in zip(parts[1::2], parts[2::2]) if v.strip())
    extra = {"Authors": ", ".join(hit.authors), "Categories": ", ".join(hit.categories),
             "arXiv ID": hit.arxiv_id or "", "Date": hit.date or ""}
    out.update({k: v for k, v in extra.items() if v})
    out.pop("arXiv", None)
    return out


def _document_order(hit: Hit) -> list:
    """The hit's passages field by field (in the order fields first appear), each field's windows in text order
    (retrieval puts the best window first; enumerations and "First, ... Second, ..." need the text's order)."""
    fields = list(dict.fromkeys(p.field for p in hit.passages))
    window = lambda p: int(p.chunk_id.rsplit(":", 1)[-1]) if p.chunk_id.rsplit(":", 1)[-1].isdigit() else 0  # noqa: E731
    return sorted(hit.passages, key=lambda p: (fields.index(p.field), window(p)))


def _sentences(hit: Hit) -> list[Unit]:
    out, seen = [], set()
    for p in _document_order(hit):
        if p.field == "meta":
            continue
        for s in split_sentences(p.text):
            if s in seen or len(s) < MIN_UNIT_CHARS or is_instruction(s):
                continue
            seen.add(s)
            out.append(Unit(display(s), norm(s), "sentence", p.field, language(s)))
    return out


def make_source(hit: Hit, index: int) -> Source:
    """The units of one hit: its title, its sentences, its metadata fields."""
    title = Unit(display(hit.title), norm(hit.title), "title", "title", language(hit.title))
    metas = [Unit(f"{k}: {v}", norm(f"{k}: {v}"), "meta", k, "meta") for k, v in meta_fields(hit).items()]
    head = norm(" ".join([hit.title, hit.arxiv_id or "", " ".join(hit.authors)]))
    return Source(hit, index, [title, *_sentences(hit), *metas], head)


def _find(term: Term, hay: str, bridge: Bridge | None) -> int:
    pos = find(term, hay)
    if pos < 0 and bridge is not None and term.kind == "cjk":
        for alt in bridge(term):
            m = re.search(r"(?<![a-z0-9])" + re.escape(alt), hay)
            if m:
                return m.start()
    return pos


def _contrasted(text: str, pos: int) -> bool:
    """Is there a contrast cue shortly before position ``pos``?"""
    return any(m.end() <= pos and pos - m.end() <= 30 for m in _CONTRAST.finditer(text[: pos + 1]))


def match_terms(src: Source, terms: tuple[Term, ...], bridge: Bridge | None = None) -> None:
    """Fill which terms each unit of ``src`` covers, the source's covered/in-head/contrast-only keys."""
    plain: set[str] = set()
    for i, u in enumerate(src.units):
        found = {t.key: p for t in terms if (p := _find(t, u.norm, bridge)) >= 0}
        if found:
            src.matches[i] = found
        plain.update(k for k, p in found.items() if u.kind != "sentence" or not _contrasted(u.norm, p))
    src.in_head = {t.key for t in terms if _find(t, src.head, bridge) >= 0}
    src.covered = src.in_head | {k for m in src.matches.values() for k in m}
    src.contrast = {t.key for t in terms if t.required and t.key in src.covered and t.key not in plain
                    and t.key not in src.in_head}
    title, body = norm(src.hit.title), " ".join(u.norm for u in src.units if u.kind == "sentence")
    src.names = {t.key for t in terms if t.key in src.covered and names_paper(t, title, body)}


TYPE_NOUN_WEIGHT = 2.0  # the noun a "what X ..." question asks for ("what mechanism ...") counts double


def weights(terms: tuple[Term, ...], sources: list[Source], rarity: dict[str, float] | None = None,
            asked: str = "") -> dict[str, float]:
    """Kind weight x rarity in the index (``rarity``, 0..1) x rarity across the retrieved sources (a term
    every source has tells them apart least; a term none has is not rewarded for it); the question's type
    noun (``asked``: "mechanism" in "what mechanism does X use") weighs ``TYPE_NOUN_WEIGHT`` times more."""
    n = max(1, len(sources))
    out = {}
    for t in terms:
        df = max(1, sum(1 for s in sources if t.key in s.covered))
        w = KIND_WEIGHT[t.kind] * math.log(1 + (n + 1) / (df + 0.5)) * (rarity or {}).get(t.key, 1.0)
        if asked and (t.text.lower() == asked or (t.kind == "cjk" and t.key in asked)):
            w *= TYPE_NOUN_WEIGHT
        out[t.key] = w
    return out


HEAD_CREDIT = 0.5  # a term in the paper's title/authors counts this much for each of its units
CJK_OVER_ENGLISH = 0.5  # a Chinese question's words weigh half against a paper with no Chinese text (only a
#                         bridge or a multilingual embedder can match them there)


def lexical(src: Source, pos: int, part: Part, w: dict[str, float]) -> float:
    """Weighted share of the part's terms the unit covers. The paper's own name (when the part names it) only
    says which paper the part is about, so the unit is judged on the other terms; other terms found in its
    title/authors count ``HEAD_CREDIT`` for every unit; of "A or B" the better side counts; Chinese terms
    count by the share of the question's Chinese characters covered."""
    got = src.matches.get(pos, {})
    cov = lambda k: 1.0 if k in got else HEAD_CREDIT if k in src.in_head else 0.0  # noqa: E731
    grouped = {k for g in part.alternatives for side in g for k in side}
    names = {t.key for t in part.required} & src.names
    if names and len(names) < len(part.terms):
        grouped |= names
    score = total = 0.0
    for t in part.terms:
        if t.kind != "cjk" and t.key not in grouped:
            total += w[t.key]
            score += w[t.key] * cov(t.key)
    for g in part.alternatives:
        weight = max(sum(w[k] for k in side) for side in g)
        total += weight
        score += weight * max(sum(w[k] * cov(k) for k in side) / (sum(w[k] for k in side) or 1) for side in g)
    cjk = [t for t in part.terms if t.kind == "cjk" and t.key not in grouped]
    if cjk:
        chars = {c for t in cjk for c in t.span}
        share = {c: max((cov(t.key) for t in cjk if c in t.span), default=0.0) for c in chars}
        weight = sum(w[t.key] for t in cjk) * (1.0 if src.has_zh else CJK_OVER_ENGLISH)
        total += weight
        score += weight * sum(share.values()) / len(chars)
    return score / total if total else 0.0


def score_units(part: Part, src: Source, w: dict[str, float], dense: Dense | None, mix: float) -> list[Scored]:
    """Every unit of a source scored for one part, best first (ties: source order). Metadata units get no
    sentence-vector similarity (a "Field: value" line is not prose)."""
    sims: list[float | None] = [None] * len(src.units)
    if dense is not None and mix > 0:
        prose = [i for i, u in enumerate(src.units) if u.kind != "meta"]
        for i, sim in zip(prose, dense.similarities(part.text, [src.units[i].text for i in prose])):
            sims[i] = sim
    out = []
    for i, (u, sim) in enumerate(zip(src.units, sims)):
        lex = lexical(src, i, part, w)
        score = lex if sim is None else (1 - mix) * lex + mix * sim
        out.append(Scored(src, u, i, score, lex, sim))
    return sorted(out, key=lambda s: (-s.score, s.pos))


def required_missing(part: Part, src: Source) -> list[Term]:
    """The part's required terms this source does not contain."""
    return [t for t in part.required if t.key not in src.covered]
