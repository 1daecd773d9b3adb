"""Watches: standing phrases ("RQ-VAE semantic IDs", "生成式推荐") and the indexed papers that match them.

A paper matches a watch when ``score >= threshold``, where

    score = WEIGHT * similarity + (1 - WEIGHT) * coverage      (similarity usable)
    score = coverage                                            (no usable vector for the phrase)

- ``coverage`` (0..1): IDF-weighted share of the watch's terms found anywhere in the paper (title, abstract,
  English/Chinese summaries, metadata passage), read from the BM25 term ids stored with every passage, so no
  text is re-tokenised. A term is the BM25 token of a word (a plural and its singular count as one; a
  hyphenated word as itself or joined); a Chinese run counts per bigram, and a Chinese research phrase from
  the glossary (rag/glossary.py) also counts when the paper has its English words (any-language watches).
- ``similarity``: best cosine between the phrase's embedding and the paper's stored passage vectors. With the
  English-only MiniLM a Chinese phrase is embedded through its glossary English words, and without any it has
  no usable vector.

WEIGHT and THRESHOLD are calibrated on the dev split of a labelled set (``python -m eval.watches``; numbers in
its report and the README), never on its test split.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Iterable

from .config import Settings

WEIGHT = 0.5  # calibrated on the dev split (python -m eval.watches): dev P 0.738 R 0.768, test P 0.673 R 0.561
THRESHOLD = 0.66  # calibrated with WEIGHT (best dev micro-F1 over a 0.01 grid)
STATE = "watches"
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:[-_.@/+][a-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_FIELD_ORDER = ("title", "tldr_en", "abstract", "tldr_zh", "motivation_zh", "method_zh", "result_zh",
                "conclusion_zh")


@dataclass(frozen=True)
class Watch:
    """A standing phrase; ``threshold`` None means the calibrated :data:`THRESHOLD`."""

    phrase: str
    added: str = ""
    threshold: float | None = None

    @property
    def key(self) -> str:
        return normalise(self.phrase)


@dataclass(frozen=True)
class Term:
    """One unit of a watch phrase: its label and the ways a paper can hold it: ``groups`` are alternatives,
    each a set of index tokens that must all occur (a word and its variants are one token each; a Chinese
    glossary phrase is all of its bigrams, or one of its English words)."""

    label: str
    groups: tuple[tuple[str, ...], ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for g in self.groups for t in g))


@dataclass(frozen=True)
class WatchMatch:
    """One paper matching a watch, with what matched and why."""

    watch: str
    paper_id: str
    arxiv_id: str | None
    title: str
    date: str | None
    score: float
    similarity: float | None
    coverage: float
    terms: tuple[str, ...]  # the watch terms the paper contains
    sentence: str  # the paper's sentence that best matches the watch
    field: str  # where that sentence is (title, abstract, tldr_zh, ...)
    why: str

    @property
    def url(self) -> str | None:
        return f"https://arxiv.org/abs/{self.arxiv_id}" if self.arxiv_id else None

    def to_json(self) -> dict:
        d = asdict(self)
        d["terms"] = list(self.terms)
        d["url"] = self.url
        return d


@dataclass
class Scored:
    """A paper's features for one watch (before the threshold)."""

    paper_id: str
    coverage: float  # IDF-weighted, term-frequency-saturated share of the watch's terms (0..1)
    similarity: float | None  # best cosine of a passage with the phrase (None: no usable vector)
    relative: float = 0.0  # that similarity in standard deviations above the index's mean, scaled to 0..1
    terms: tuple[str, ...] = field(default_factory=tuple)

    def score(self, weight: float = WEIGHT) -> float:
        if self.similarity is None:
            return self.coverage
        return weight * self.relative + (1 - weight) * self.coverage


def normalise(phrase: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", phrase).casefold().split())


# ---------------------------------------------------------------- the watch list (state file)

def load(settings: Settings) -> list[Watch]:
    from .store import read_state

    rows = read_state(settings, STATE, [])
    return [Watch(r["phrase"], r.get("added", ""), r.get("threshold")) for r in rows]


def add(phrase: str, settings: Settings, threshold: float | None = None) -> Watch:
    """Add (or update the threshold of) a watch; raises ValueError for an empty phrase or bad threshold."""
    from .store import state_lock, write_state

    phrase = " ".join(phrase.split())
    if not phrase or not _TOKEN.search(normalise(phrase)):
        raise ValueError("a watch needs at least one word, e.g. digestqa watch add \"RQ-VAE semantic IDs\"")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold {threshold} must be in (0, 1]")
    new = Watch(phrase, dt.date.today().isoformat(), threshold)
    with state_lock(settings, STATE):
        rows = [w for w in load(settings) if w.key != new.key]
        write_state(settings, STATE, [asdict(w) for w in rows + [new]])
    return new


def remove(phrase: str, settings: Settings) -> bool:
    """Remove a watch by its phrase (case/width-insensitive); False when there was none."""
    from .store import state_lock, write_state

    key = normalise(phrase)
    with state_lock(settings, STATE):
        rows = load(settings)
        keep = [w for w in rows if w.key != key]
        if len(keep) != len(rows):
            write_state(settings, STATE, [asdict(w) for w in keep])
    return len(keep) != len(rows)


def find(phrase: str, settings: Settings) -> Watch:
    """The stored watch for ``phrase``, or an ad-hoc one with the default threshold."""
    key = normalise(phrase)
    return next((w for w in load(settings) if w.key == key), Watch(" ".join(phrase.split())))


# ---------------------------------------------------------------- terms of a phrase

def _alternates(word: str) -> tuple[str, ...]:
    """The index tokens that count as this (lowercase Latin) word: its BM25 token, its joined form for
    hyphenated words, and singular/plural variants."""
    from .retrieve import tokenize

    toks = tokenize(word)
    if not toks:
        return ()
    head = [toks[0]] + ([toks[1]] if len(toks) > 1 and re.search(r"[-_.@/+]", word) else [])
    out = list(head)
    for t in head:
        if t.isalpha() and len(t) > 2:
            out.append(t[:-1] if t.endswith("s") else t + "s")
    return tuple(dict.fromkeys(out))


def terms(phrase: str, store) -> list[Term]:
    """The watch's terms: one per Latin word; a Chinese run is split into glossary phrases (longest first:
    each one term, held through all of its bigrams or one of its English index words) and, between them,
    plain bigrams (none across a phrase boundary)."""
    text = unicodedata.normalize("NFKC", phrase).lower()
    out: list[Term] = []
    for m in _TOKEN.finditer(text):
        w = m.group(0)
        if _CJK.match(w):
            out += _cjk_terms(w, store)
        elif alts := _alternates(w):
            out.append(Term(w, tuple((a,) for a in alts)))
    seen: set[str] = set()
    return [t for t in out if not (t.label in seen or seen.add(t.label))]


def _cjk_terms(run: str, store) -> list[Term]:
    from .glossary import GLOSSARY

    spans: list[tuple[int, int]] = []
    taken: set[int] = set()
    for zh in sorted(GLOSSARY, key=len, reverse=True):
        for m in re.finditer(re.escape(zh), run):
            if not set(range(m.start(), m.end())) & taken:
                taken |= set(range(m.start(), m.end()))
                spans.append((m.start(), m.end()))
    out: list[tuple[int, Term]] = []
    for a, b in spans:
        zh = run[a:b]
        english = tuple((w,) for w in _english_words(GLOSSARY[zh], store))
        out.append((a, Term(zh, (_bigrams(zh),) + english)))
    i = 0
    while i < len(run):  # the stretches no glossary phrase covers: plain bigrams
        if i in taken:
            i += 1
            continue
        j = i
        while j < len(run) and j not in taken:
            j += 1
        out += [(i + k, Term(g, ((g,),))) for k, g in enumerate(_bigrams(run[i:j]))]
        i = j
    return [t for _, t in sorted(out, key=lambda x: x[0])]


def _bigrams(s: str) -> tuple[str, ...]:
    return (s,) if len(s) == 1 else tuple(s[i:i + 2] for i in range(len(s) - 1))


def _english_words(prefixes: tuple[str, ...], store, per_prefix: int = 6) -> list[str]:
    """Index words for a glossary phrase's English prefixes, the most common first (a multi-word prefix by its
    first word)."""
    from .retrieve import term_stats
    from .store import terms_with_prefix

    stats = term_stats(store.settings)
    out: list[str] = []
    for p in prefixes:
        p = p.lower()
        if " " in p:
            out += list(_alternates(p.split()[0]))
            continue
        words = [w for w in terms_with_prefix(store, p, limit=200) if w.isalpha()]
        if stats is not None:
            words.sort(key=lambda w: -(stats.share(w) or 0.0))
        out += words[:per_prefix]
    return list(dict.fromkeys(out))


def query_text(phrase: str, store, settings: Settings) -> str | None:
    """What to embed for the phrase: itself, or for a Chinese phrase with an English-only embedder its glossary
    English words (None when it has none: no usable vector)."""
    if not _CJK.search(phrase) or not settings.embedder.startswith("minilm"):
        return phrase
    english = [g[0] for term in terms(phrase, store) for g in term.groups[1:2] if len(term.groups) > 1]
    latin = [m.group(0) for m in _TOKEN.finditer(phrase.lower()) if not _CJK.match(m.group(0))]
    words = list(dict.fromkeys(english + latin))
    return " ".join(words) if english else None


# ---------------------------------------------------------------- scoring

def score_papers(watches: list[Watch], settings: Settings, paper_ids: Iterable[str] | None = None
                 ) -> dict[str, list[Scored]]:
    """Features of every paper (or of ``paper_ids``) for each watch: {phrase: [Scored]}."""
    from .store import open_store

    store = open_store(settings)
    try:
        return _score(watches, store, settings, None if paper_ids is None else set(paper_ids))
    finally:
        store.close()


TF_HALF = 1.0  # occurrences at which a term counts half (its title, repeated in every passage, counts ~fully)
Z_SCALE = 4.0  # similarity this many standard deviations above the index mean counts fully


def _score(watches: list[Watch], store, settings: Settings, wanted: set[str] | None) -> dict[str, list[Scored]]:
    import numpy as np

    from .store import _paper_blobs, term_id_map

    per_watch = [terms(w.phrase, store) for w in watches]
    ids = term_id_map(store, {t for ts in per_watch for term in ts for t in term.tokens})
    probe = np.fromiter(sorted(set(ids.values())), dtype=np.int32)
    col = {tid: i for i, tid in enumerate(probe.tolist())}
    tf_rows: dict[str, np.ndarray] = {}
    holders = [np.zeros(len(ts), dtype=np.int64) for ts in per_watch]  # papers holding each term
    groups = [[[[col[ids[t]] if t in ids else -1 for t in g] for g in term.groups] for term in ts]
              for ts in per_watch]
    n = 0
    for pid, blob in _paper_blobs(store):
        n += 1
        tf = _counts(probe, blob)
        per = [_term_tf(tf, gs) for gs in groups]
        for h, row in zip(holders, per):
            h += row > 0
        if wanted is None or pid in wanted:
            tf_rows[pid] = per
    sims = _similarities(watches, store, settings)
    out: dict[str, list[Scored]] = {}
    for k, (w, ts) in enumerate(zip(watches, per_watch)):
        idf = np.log((n + 1) / (holders[k] + 0.5)) + 0.1
        total = float(idf.sum()) or 1.0
        sim = sims[k]
        rows = []
        for pid, per in tf_rows.items():
            tf = per[k]
            cov = float((idf * tf / (tf + TF_HALF)).sum()) / total
            raw, rel = (None, 0.0) if sim is None else sim.get(pid, (0.0, 0.0))
            rows.append(Scored(pid, round(cov, 4), None if sim is None else round(raw, 4), round(rel, 4),
                               tuple(t.label for t, x in zip(ts, tf) if x > 0)))
        out[w.phrase] = rows
    return out


def _counts(probe, blob: bytes):
    """How often each probe term id occurs in a paper's term ids."""
    import numpy as np

    if not blob or not len(probe):
        return np.zeros(len(probe), dtype=np.int64)
    arr = np.frombuffer(blob, dtype=np.int32)
    idx = np.searchsorted(probe, arr).clip(0, len(probe) - 1)
    hit = probe[idx] == arr
    return np.bincount(idx[hit], minlength=len(probe))


def _term_tf(tf, term_groups: list[list[list[int]]]):
    """Occurrences of each term: its best alternative, an all-of group counting as its rarest token."""
    import numpy as np

    return np.array([max((min(tf[c] if c >= 0 else 0 for c in g) for g in gs), default=0)
                     for gs in term_groups], dtype=np.float64)


def _similarities(watches: list[Watch], store, settings: Settings) -> list[dict[str, tuple[float, float]] | None]:
    """Per watch: paper_id -> (best cosine of its passages with the phrase, that cosine's standard scores above
    the mean over every indexed paper, divided by Z_SCALE and clipped to 0..1); None when the phrase has no
    vector."""
    import numpy as np

    from .store import paper_vectors

    texts = [query_text(w.phrase, store, settings) for w in watches]
    if not any(texts):
        return [None] * len(texts)
    owners, mat = paper_vectors(store)
    if not len(owners):
        return [None if t is None else {} for t in texts]
    from .embed import get_embedder

    emb = get_embedder(settings)
    norms = np.linalg.norm(mat, axis=1)
    mat = mat / np.where(norms == 0, 1.0, norms)[:, None]
    owner_idx = {}
    for i, pid in enumerate(owners):
        owner_idx.setdefault(pid, []).append(i)
    out: list[dict[str, tuple[float, float]] | None] = []
    for t in texts:
        if t is None:
            out.append(None)
            continue
        q = np.asarray(emb.embed_query(t), dtype=np.float32)
        cos = mat @ (q / (np.linalg.norm(q) or 1.0))
        best = {pid: float(cos[rows].max()) for pid, rows in owner_idx.items()}
        vals = np.fromiter(best.values(), dtype=np.float64)
        mu, sd = float(vals.mean()), float(vals.std()) or 1.0
        out.append({pid: (c, min(1.0, max(0.0, (c - mu) / sd / Z_SCALE))) for pid, c in best.items()})
    return out


# ---------------------------------------------------------------- matches with their sentence and reason

def matches(watches: list[Watch], settings: Settings, paper_ids: Iterable[str] | None = None,
            since: str | None = None, until: str | None = None) -> dict[str, list[WatchMatch]]:
    """{phrase: matches best first} over ``paper_ids`` (default: all papers), restricted to papers dated
    ``since``..``until`` (ISO, inclusive) when given."""
    from .store import open_store, paper_dates

    store = open_store(settings)
    try:
        wanted = None if paper_ids is None else set(paper_ids)
        if since or until:
            lo, hi = _date_int(since) or 0, _date_int(until) or 99999999
            dated = {p for p, d in paper_dates(store).items() if d and lo <= d <= hi}
            wanted = dated if wanted is None else wanted & dated
        if wanted is not None and not wanted:
            return {w.phrase: [] for w in watches}
        scored = _score(watches, store, settings, wanted)
        keep = {w.phrase: sorted((s for s in scored[w.phrase] if s.score() >= _threshold(w)),
                                 key=lambda s: -s.score()) for w in watches}
        papers = store.get_papers({s.paper_id for rows in keep.values() for s in rows})
        return {w.phrase: [_explain(w, s, papers[s.paper_id], store, settings) for s in keep[w.phrase]
                           if s.paper_id in papers] for w in watches}
    finally:
        store.close()


def _threshold(w: Watch) -> float:
    return w.threshold if w.threshold is not None else THRESHOLD


def _date_int(s: str | None) -> int | None:
    if not s:
        return None
    try:
        return int(dt.date.fromisoformat(s).strftime("%Y%m%d"))
    except ValueError:
        raise ValueError(f"date {s!r} is not YYYY-MM-DD (e.g. 2026-01-20)") from None


def _sentences(paper) -> list[tuple[str, str]]:
    from .text import split_sentences

    out = [("title", paper.title)]
    for f in _FIELD_ORDER[1:]:
        out += [(f, s) for s in split_sentences(getattr(paper, f) or "")]
    return out


def best_sentence(phrase: str, paper, store) -> tuple[str, str, tuple[str, ...]]:
    """(field, sentence, watch terms in it) of the paper's sentence holding the most of the watch's terms
    (IDF-free: the share of terms; ties go to the earlier field)."""
    from .retrieve import tokenize

    ts = terms(phrase, store)
    best = ("title", paper.title, ())
    best_n = 0
    for f, s in _sentences(paper):
        toks = set(tokenize(s))
        found = tuple(t.label for t in ts if toks.intersection(t.tokens))
        if len(found) > best_n:
            best, best_n = (f, s, found), len(found)
    return best


def _explain(w: Watch, s: Scored, paper, store, settings: Settings) -> WatchMatch:
    f, sentence, _ = best_sentence(w.phrase, paper, store)
    if not s.terms:  # matched on meaning alone: show the sentence closest in meaning
        f, sentence = _closest_sentence(w.phrase, paper, store, settings)
    parts = []
    if s.terms:
        parts.append("terms " + ", ".join(f'"{t}"' for t in s.terms) + f" (coverage {s.coverage:.2f})")
    if s.similarity is not None:
        parts.append(f"similarity {s.similarity:.2f}")
    why = "; ".join(parts) + f" -> score {s.score():.2f} >= {_threshold(w):.2f}"
    return WatchMatch(w.phrase, paper.paper_id, paper.arxiv_id, paper.title, paper.date, round(s.score(), 4),
                      s.similarity, s.coverage, s.terms, sentence, f, why)


def _closest_sentence(phrase: str, paper, store, settings: Settings) -> tuple[str, str]:
    import numpy as np

    from .embed import get_embedder

    sents = _sentences(paper)[:40]
    text = query_text(phrase, store, settings)
    if not text or len(sents) == 1:
        return sents[0]
    emb = get_embedder(settings)
    mat = np.asarray(emb.embed([s for _, s in sents]), dtype=np.float32)
    q = np.asarray(emb.embed_query(text), dtype=np.float32)
    return sents[int(np.argmax(mat @ q))]


# ---------------------------------------------------------------- counts per week (the UI plot)

def week_counts(watch: Watch, settings: Settings) -> list[tuple[str, int, int]]:
    """(Monday of the week, matching papers, indexed papers) for every week from the first to the last indexed
    date (weeks with nothing indexed included, as zeros)."""
    from .store import open_store, paper_dates

    store = open_store(settings)
    try:
        dates = {p: d for p, d in paper_dates(store).items() if d}
        if not dates:
            return []
        scored = _score([watch], store, settings, set(dates))[watch.phrase]
        hit = {s.paper_id for s in scored if s.score() >= _threshold(watch)}
    finally:
        store.close()
    weeks: dict[dt.date, list[int]] = {}
    for pid, d in dates.items():
        day = dt.datetime.strptime(str(d), "%Y%m%d").date()
        row = weeks.setdefault(day - dt.timedelta(days=day.weekday()), [0, 0])
        row[0] += pid in hit
        row[1] += 1
    first, last = min(weeks), max(weeks)
    out = []
    while first <= last:
        m, total = weeks.get(first, [0, 0])
        out.append((first.isoformat(), m, total))
        first += dt.timedelta(days=7)
    return out


def default_since(settings: Settings, days: int = 7) -> str | None:
    """The first day of the last ``days`` indexed days (the newest digest date minus days-1)."""
    from .store import open_store, paper_dates

    store = open_store(settings)
    try:
        newest = max((d for d in paper_dates(store).values() if d), default=0)
    finally:
        store.close()
    if not newest:
        return None
    day = dt.datetime.strptime(str(newest), "%Y%m%d").date() - dt.timedelta(days=days - 1)
    return day.isoformat()
