"""Merge per-digest records into one record per paper.

Rules (all independent of input order; inputs are sorted by (digest date, file, line) first):

* Records with the same ``paper_id`` are merged field by field. An empty field is filled from another
  record. When several records have a value: title -> non-derived beats derived, then a title from a
  record with an arXiv id, then the longer one; text fields (abstract, TL;DRs, zh sections, comment) ->
  the longer one; authors -> the richer list (more "(affiliation)" entries,
  then more names, then more characters); categories -> union, main category (first of the earliest
  record) first; published -> the earliest date; everything else -> first record in source order.
  Ties go to the value whose own source (its provenance) is earliest, so merging already merged
  records with new ones (incremental ingest) equals merging everything at once.
* An ID-less record ("t-..." id) is merged INTO an ID'd record when it is the same paper:
  (a) both titles are real (not derived) and their ``normalize_title`` forms are equal, with exactly one
  ID'd record carrying that title; or
  (b) its summary text (tldr_en, plus its abstract if any) matches the ID'd record's abstract. Each
  summary sentence with >= 6 content words is cut into clauses at , ; : ( ) . ! ? and each clause is
  normalised (lower case, punctuation -> space). A clause of >= 4 words "hits" an abstract when the
  abstract has the identical normalised clause and no other ID'd abstract has it (boilerplate such as
  "extensive experiments demonstrate ..." shared by two abstracts never counts). A sentence matches when
  its hit clauses cover >= 50% of its words. The record links when >= half of its long sentences
  (at least one) match, the hit clauses total >= 10 words, and exactly one ID'd record qualifies.
  Clause (not whole-sentence) matching is needed because digest summaries trim lead-ins
  ("To address these challenges, we propose X" -> "We propose X") and drop adverbs.
  No pairwise scan: each wanted clause's longest word is located in all abstracts at once with
  C-level str.find over the joined abstracts; only abstracts containing one are clause-normalised.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import accumulate

from rag.text import normalize_title
from rag.types import PAPER_TEXT_FIELDS, Paper, Source
from rag.util import no_gc

_LONG_FIELDS = (*PAPER_TEXT_FIELDS, "comment")
_FIRST_FIELDS = ("doi", "code_url", "related_to")
_STOP = frozenset(
    "a an the and or of for to in on at by with from as is are was were be been this that these those "
    "it its we our their which who via into than then also can may not but such both all any each".split())
_CLAUSE_SEP = re.compile(r"[,.;:!?()\[\]\"“”‘’]+|<n>|\n")
_NON_WORD = re.compile(r"[^\w|]+")
_SENT_END = re.compile(r"(?<=[.!?。！？])\s+|<n>|\n+")
MIN_SENT_WORDS = 6
MIN_CLAUSE_WORDS = 4
MIN_LINK_WORDS = 10


# ---------------------------------------------------------------- ordering helpers

def _source_key(s: Source) -> tuple:
    return (s.date is None, s.date or "", s.file, s.line or 0, s.format)


def _record_key(p: Paper) -> tuple:
    first = min((_source_key(s) for s in p.sources), default=(True, "", "", 0, ""))
    return (first, p.paper_id, p.title, p.abstract or "", p.tldr_en or "", p.tldr_zh or "")


def _first_source(p: Paper) -> Source | None:
    return min(p.sources, key=_source_key) if p.sources else None


def _squash(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- field choice

def _title_rank(r: Paper, v: str) -> tuple:
    return (r.title_derived, not r.arxiv_id, -len(v.strip()))


def _text_rank(r: Paper, v: str) -> tuple:
    return (-len(v.strip()),)


def _authors_rank(r: Paper, v: tuple[str, ...]) -> tuple:
    return (-sum("(" in a for a in v), -len(v), -sum(map(len, v)))


def _arxiv_rank(r: Paper, v: str) -> tuple:
    return (bool(re.search(r"v\d+$", v)), v)


def _published_rank(r: Paper, v: str) -> tuple:
    return (v,)


def _first_rank(r: Paper, v) -> tuple:
    return ()


_RANKS = {"title": _title_rank, "arxiv_id": _arxiv_rank, "authors": _authors_rank,
          "published": _published_rank, **{f: _text_rank for f in _LONG_FIELDS},
          **{f: _first_rank for f in _FIRST_FIELDS}}


def _same(a, b) -> bool:
    if a == b:
        return True
    return isinstance(a, str) and isinstance(b, str) and _squash(a) == _squash(b)


def _source_of(p: Paper):
    """field -> Sources lookup for one record (all its provenance entries, else its first source)."""
    first = [s] if (s := _first_source(p)) else []
    if not p.provenance:
        return lambda name: first
    prov: dict[str, list[Source]] = defaultdict(list)
    for f, s in p.provenance:
        prov[f].append(s)
    return lambda name: prov.get(name, first)


def _choose(vals: Sequence[dict], src: Sequence, name: str, rank, recs: Sequence[Paper]):
    """(index of the kept value, indices of records having any value).

    Ties go to the value whose own source is earliest, so re-merging an already merged record
    with new ones gives the same result as merging everything at once.
    """
    have = [i for i, v in enumerate(vals) if name in v]
    if len(have) <= 1:
        return (have[0], have) if have else None
    return min(have, key=lambda i: (rank(recs[i], vals[i][name]), _source_key_or_last(src[i](name)), i)), have


def _source_key_or_last(sources: list[Source]) -> tuple:
    return _source_key(sources[0]) if sources else (True, "\uffff", "", 0, "")


def _categories(recs: Sequence[Paper]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for r in recs for c in r.categories if c))


def _extra(recs: Sequence[Paper]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for r in recs:
        for k, v in r.extra:
            seen.setdefault(k, v)
    return tuple(seen.items())


def _merge_group(pid: str, recs: Sequence[Paper]) -> Paper:
    """One record from records of the same paper (recs already in source order)."""
    vals = [{k: v for k, v in r.__dict__.items() if v and k in _RANKS} for r in recs]
    present = set().union(*vals)
    src = [_source_of(r) for r in recs]
    values: dict = {}
    prov: list[tuple[str, Source]] = []
    for name, rank in _RANKS.items():
        chosen = name in present and _choose(vals, src, name, rank, recs)
        if not chosen:
            continue
        idx, have = chosen
        kept = values[name] = vals[idx][name]
        if name == "title":
            values["title_derived"] = recs[idx].title_derived
        dups = {s for i in have if i != idx and _same(vals[i][name], kept) for s in src[i](name)}
        prov += [(name, s) for s in src[idx](name)[:1]]
        prov += [(name, s) for s in sorted(dups | set(src[idx](name)[1:]), key=_source_key)]
    cats = {s for i, r in enumerate(recs) if r.categories for s in src[i]("categories")}
    prov += [("categories", s) for s in sorted(cats, key=_source_key)]
    linked = {l for r in recs for l in r.linked_ids} | {r.paper_id for r in recs}
    linked.discard(pid)
    values.setdefault("title", recs[0].title)
    values.setdefault("authors", ())
    return Paper(
        paper_id=pid, categories=_categories(recs), extra=_extra(recs), **values,
        sources=tuple(sorted({s for r in recs for s in r.sources}, key=_source_key)),
        provenance=tuple(dict.fromkeys(prov)), linked_ids=tuple(sorted(linked)))


def _with(p: Paper, **changes) -> Paper:
    """Cheap dataclasses.replace for a frozen record (no re-validation needed)."""
    new = object.__new__(Paper)
    new.__dict__.update(p.__dict__, **changes)
    return new


def _finish_single(p: Paper) -> Paper:
    """Fast path for a paper seen once: normalise sources, fill missing provenance."""
    sources = p.sources
    if len(sources) > 1:
        sources = tuple(sorted(set(sources), key=_source_key))
    if p.provenance or not sources:
        return p if sources == p.sources else _with(p, sources=sources)
    s = sources[0]
    prov = tuple((n, s) for n in _PROV_FIELDS if getattr(p, n))
    return _with(p, sources=sources, provenance=prov)


# ---------------------------------------------------------------- ID-less linking

def _clauses(text: str) -> list[str]:
    """Normalised clauses of a text (lower case, words joined by single spaces)."""
    t = _NON_WORD.sub(" ", _CLAUSE_SEP.sub("|", text.lower()))
    return [c.strip() for c in t.split("|")]


def _long_sentences(p: Paper) -> list[str]:
    text = "\n".join(t for t in (p.tldr_en, p.abstract) if t)
    out = []
    for s in _SENT_END.split(text):
        words = re.findall(r"\w+", s.lower())
        if sum(w not in _STOP for w in words) >= MIN_SENT_WORDS:
            out.append(s)
    return out


def _query(p: Paper) -> list[tuple[int, list[str]]]:
    """Per long sentence: (word count, its clauses long enough to count)."""
    q = []
    for s in _long_sentences(p):
        cl = [c for c in _clauses(s) if c.count(" ") + 1 >= MIN_CLAUSE_WORDS]
        q.append((sum(len(c.split()) for c in _clauses(s) if c), cl))
    return q


def _clause_anchor(clause: str) -> str | None:
    """Longest alphabetic word (>= 5 letters) of a clause, interior words preferred."""
    words = clause.split()
    for pool in (words[1:], words):
        best = min((w for w in pool if len(w) >= 5 and w.isalpha() and w.isascii()),
                   key=lambda w: (-len(w), w), default=None)
        if best:
            return best
    return None


def _occurrences(big: str, starts: list[int], word: str) -> set[int]:
    """Indices of the joined texts containing `word`, via C-level str.find (one hit per text)."""
    found: set[int] = set()
    i = big.find(word)
    while i >= 0:
        k = bisect_right(starts, i) - 1
        found.add(k)
        i = big.find(word, starts[k + 1] if k + 1 < len(starts) else len(big))
    return found


def _candidates(anchors: set[str], texts: Sequence[str]) -> set[int]:
    """Indices of texts containing any anchor word (case-insensitively).

    A str.find scan of the lower-cased joined texts per anchor: no per-abstract Python work. Always
    case-insensitive, so which texts are found never depends on how many anchors a batch has (an
    incremental merge of a few papers links exactly as a merge of everything).
    """
    lowered = [t.lower() for t in texts]  # each text on its own: lower() may change a text's length
    big = "\x00".join(lowered)
    starts = list(accumulate((len(t) + 1 for t in lowered[:-1]), initial=0))
    return set().union(*(_occurrences(big, starts, w) for w in sorted(anchors)))


def _maybe_has(text_lower: str, clause: str) -> bool:
    """Cheap test before normalising: every word of the clause occurs in the text."""
    return all(w in text_lower for w in clause.split())


def _clause_hits(wanted: set[str], ided: Sequence[Paper]) -> dict[str, set[str]]:
    """Which ID'd abstracts contain each wanted clause (anchor prefilter, then exact clause match)."""
    with_abs = [p for p in ided if p.abstract]
    by_anchor: dict[str, list[str]] = defaultdict(list)
    for c in wanted:
        if (a := _clause_anchor(c)):
            by_anchor[a].append(c)
    hits: dict[str, set[str]] = defaultdict(set)
    if not with_abs or not by_anchor:
        return hits
    for i in sorted(_candidates(set(by_anchor), [p.abstract for p in with_abs])):
        low = with_abs[i].abstract.lower()
        if any(_maybe_has(low, c) for c in wanted):
            for c in wanted.intersection(_clauses(with_abs[i].abstract)):
                hits[c].add(with_abs[i].paper_id)
    return hits


def _score(query, hits: dict[str, set[str]]) -> str | None:
    """The one ID'd paper_id this query's sentences match, or None."""
    per_pid: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # [matched sentences, hit words]
    for n_words, clauses in query:
        covered: dict[str, int] = defaultdict(int)
        for c in set(clauses):
            owners = hits.get(c, ())
            if len(owners) == 1:
                covered[next(iter(owners))] += c.count(" ") + 1
        for pid, w in covered.items():
            per_pid[pid][1] += w
            per_pid[pid][0] += w * 2 >= n_words
    need = max(1, math.ceil(len(query) / 2))
    ok = [pid for pid, (m, w) in per_pid.items() if m >= need and w >= MIN_LINK_WORDS]
    return ok[0] if len(ok) == 1 else None


def _link_by_summary(idless: Sequence[Paper], ided: Sequence[Paper]) -> dict[str, str]:
    queries = {p.paper_id: q for p in idless if (q := _query(p))}
    wanted = {c for q in queries.values() for _, cl in q for c in cl}
    if not wanted:
        return {}
    hits = _clause_hits(wanted, ided)
    return {pid: t for pid, q in queries.items() if (t := _score(q, hits))}


_ANCHOR = re.compile(r"[a-z]{4,}")


def _anchor(norm_title: str) -> str:
    """Longest ASCII word of a normalised title: a cheap prefilter key for raw titles."""
    return max(_ANCHOR.findall(norm_title), key=len, default="")


def _plain_title(title: str) -> bool:
    """An ASCII title without LaTeX ^/_: its normalize_title form has the same [a-z]{4,} runs as its
    lower-cased self, so the anchor prefilter is exact for it (others are always normalised)."""
    return title.isascii() and "^" not in title and "_" not in title


def _link_by_title(idless: Sequence[Paper], ided: Sequence[Paper]) -> dict[str, str]:
    wanted = {normalize_title(p.title): p.paper_id for p in idless if not p.title_derived and p.title}
    wanted.pop("", None)
    anchors = {_anchor(k) for k in wanted}
    scan_all = "" in anchors  # a title without an ASCII word (e.g. Chinese): no prefilter
    owners: dict[str, list[str]] = defaultdict(list)
    for p in ided:
        if p.title_derived or not p.title:
            continue
        if not scan_all and _plain_title(p.title) and anchors.isdisjoint(_ANCHOR.findall(p.title.lower())):
            continue
        key = normalize_title(p.title)
        if key in wanted:
            owners[key].append(p.paper_id)
    return {wanted[k]: v[0] for k, v in owners.items() if len(v) == 1}


def find_links(merged: Sequence[Paper]) -> dict[str, str]:
    """Map ID-less paper_id -> ID'd paper_id it is the same paper as."""
    idless = [p for p in merged if not p.arxiv_id]
    if not idless:
        return {}
    ided = [p for p in merged if p.arxiv_id]
    links = _link_by_title(idless, ided)
    rest = [p for p in idless if p.paper_id not in links]
    links.update(_link_by_summary(rest, ided))
    return links


# ---------------------------------------------------------------- public API

def _merge_all(groups: dict[str, list[Paper]]) -> dict[str, Paper]:
    return {pid: _finish_single(recs[0]) if len(recs) == 1 and recs[0].paper_id == pid
            else _merge_group(pid, recs) for pid, recs in groups.items()}


def merge_papers(papers: Iterable[Paper]) -> list[Paper]:
    """One record per paper across all digests (sorted by paper_id); see module doc for rules."""
    with no_gc():
        return _merge_papers(papers)


def _merge_papers(papers: Iterable[Paper]) -> list[Paper]:
    groups: dict[str, list[Paper]] = defaultdict(list)
    for p in sorted(papers, key=_record_key):
        groups[p.paper_id].append(p)
    merged = _merge_all(groups)
    links = find_links(list(merged.values()))
    if links:
        for src in sorted(links):
            groups[links[src]].extend(groups.pop(src))
            merged.pop(src)
        targets = set(links.values())
        for pid in targets:
            groups[pid].sort(key=_record_key)
        merged.update(_merge_all({pid: groups[pid] for pid in targets}))
    return [merged[pid] for pid in sorted(merged)]


_PROV_FIELDS = (*_RANKS, "categories")
_HASH_FIELDS = ("paper_id", "arxiv_id", "title", "title_derived", "authors", "categories",
                *_LONG_FIELDS, "doi", "code_url", "published", "related_to", "linked_ids")


def paper_hash(paper: Paper) -> str:
    """Stable sha1 of a merged record's indexed content (fields + date; not sources/provenance)."""
    d = {k: getattr(paper, k) for k in _HASH_FIELDS}
    d["date"] = paper.date
    d["extra"] = sorted(paper.extra)
    blob = json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- incremental merge (see rag.delta)

def group_records(papers: Iterable[Paper]) -> dict[str, list[Paper]]:
    """Records by paper_id, each group in source order (as merge_papers groups them)."""
    groups: dict[str, list[Paper]] = defaultdict(list)
    for p in sorted(papers, key=_record_key):
        groups[p.paper_id].append(p)
    return groups


def merge_groups(groups: dict[str, list[Paper]]) -> dict[str, Paper]:
    """One record per paper_id group, before ID-less linking (groups as group_records makes them)."""
    with no_gc():
        return _merge_all(groups)


def merge_one(pid: str, records: Sequence[Paper]) -> Paper:
    """The merged record of ``pid`` from its group's records plus those of the ID-less groups linked
    into it (what merge_papers returns for ``pid``: the records are sorted by source first)."""
    return _merge_all({pid: sorted(records, key=_record_key)})[pid]


def link_keys(p: Paper) -> tuple[bool, str | None, set[str]]:
    """What ID-less linking reads of a paper_id group's merged record: (has an arXiv id, its title key
    (None when derived or empty), its clauses: an ID'd record's >= MIN_CLAUSE_WORDS-word abstract clauses
    (what a summary can hit), an ID-less record's summary clauses (see _query))."""
    key = normalize_title(p.title) if p.title and not p.title_derived else ""
    if p.arxiv_id:
        clauses = {c for c in _clauses(p.abstract) if c.count(" ") + 1 >= MIN_CLAUSE_WORDS} if p.abstract else set()
    else:
        clauses = {c for _, cl in _query(p) for c in cl}
    return bool(p.arxiv_id), key or None, clauses
