"""Deterministic, offline eval metrics over answer dicts (the shape of ``Answer.to_json()``).

Refs: an arXiv id ("2512.02474"), ``title:<substring>`` (case-insensitive, normalised), or several
alternatives joined by ``|`` (any one matching counts) — for papers that may or may not get merged.

Per-question metrics are ``None`` when they do not apply; aggregates average the applicable ones:

- ``hit@1``, ``hit@5``, ``recall@5``, ``mrr``, ``ndcg@10``: ranks of ``must`` refs among the answer's
  sources; answerable questions with non-empty ``must`` only.
- ``citation_recall``: share of ``must`` refs cited; answerable questions with ``must`` only.
- ``citation_precision``: share of cited papers within ``must`` ∪ ``gold``; questions with citations.
- ``citation_validity``: share of citations whose paper is among the retrieved sources; questions with citations.
- ``fact_recall``: share of ``facts`` regexes found in the answer text; answerable questions with facts.
- ``abstention_accuracy``: unanswerable -> abstained, answerable -> not abstained; all questions.
- ``false_abstention``: abstained although answerable (its mean is the false-abstention rate); answerable only.
- ``parts_answered``: every fact found (one fact regex per part); ``multipart`` questions only.
- ``language_match``: detected answer language == question ``lang`` (CJK chars vs Latin words); all
  questions except bare ``CANNOT_ANSWER`` abstentions without any text.
- ``support``: mean citation support (0..1); questions with citations.
- ``latency_p50_ms`` / ``latency_p95_ms``: over ``timings_ms.total``; all questions.
"""
from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Iterable, Mapping

CANNOT_ANSWER = "CANNOT_ANSWER"  # mirrors rag.types.CANNOT_ANSWER (kept import-free for pure tests)

# metric name -> which questions it covers (for docs/report)
METRIC_SCOPE: dict[str, str] = {
    "hit@1": "answerable with must", "hit@5": "answerable with must", "recall@5": "answerable with must",
    "mrr": "answerable with must", "ndcg@10": "answerable with must",
    "citation_recall": "answerable with must", "citation_precision": "with citations",
    "citation_validity": "with citations", "fact_recall": "answerable with facts",
    "abstention_accuracy": "all", "false_abstention": "answerable (rate; lower is better)",
    "parts_answered": "multipart (all parts' facts found)",
    "language_match": "all but bare abstentions", "support": "with citations",
    "latency_p50_ms": "all", "latency_p95_ms": "all",
}
RETRIEVAL_METRICS = ("hit@1", "hit@5", "recall@5", "mrr", "ndcg@10")
LOWER_IS_BETTER = ("false_abstention",)  # and every *_ms metric
QUALITY_METRICS = ("hit@5", "citation_recall", "citation_precision", "fact_recall",
                   "abstention_accuracy", "language_match")

_VERSION = re.compile(r"v\d+$")
_LATEX_SUP = re.compile(r"\$\s*\^\s*\{?\s*([^{}$]*?)\s*\}?\s*\$")
_NON_WORD = re.compile(r"[^\w]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_MARKERS = re.compile(r"\[\d+(?:\s*[,，]\s*\d+)*\]|https?://\S+|" + CANNOT_ANSWER)

Catalogue = Mapping[str, Mapping[str, Any]]  # paper_id -> {"ids": [...], "titles": [...]}


def norm_id(s: str | None) -> str:
    """Comparable arXiv/paper id: lowercase, no ``arxiv:`` prefix, no version."""
    s = (s or "").strip().lower()
    s = s[6:] if s.startswith("arxiv:") else s
    return _VERSION.sub("", s)


def norm_title(s: str | None) -> str:
    """Comparable title text: LaTeX ^{x} -> x, NFKC, casefold, punctuation -> single spaces."""
    s = _LATEX_SUP.sub(r"\1", s or "")
    s = unicodedata.normalize("NFKC", s).casefold()
    return " ".join(_NON_WORD.sub(" ", s).split())


def paper_keys(item: Mapping[str, Any], catalogue: Catalogue | None = None) -> tuple[set[str], list[str]]:
    """(ids, titles) a cited/retrieved paper answers to, incl. records merged into it."""
    pid = item.get("paper_id")
    ids = {norm_id(x) for x in (pid, item.get("arxiv_id")) if x}
    titles = [norm_title(item.get("title"))]
    entry = (catalogue or {}).get(pid or "")
    if entry:
        ids |= {norm_id(x) for x in entry.get("ids", ()) if x}
        titles += [norm_title(t) for t in entry.get("titles", ()) if t]
    return ids, [t for t in titles if t]


def ref_matches(ref: str, item: Mapping[str, Any], catalogue: Catalogue | None = None) -> bool:
    """Does a paper (source or citation dict) satisfy ``ref``?"""
    ids, titles = paper_keys(item, catalogue)
    for alt in (a.strip() for a in ref.split("|")):
        if alt.lower().startswith("title:"):
            want = norm_title(alt[6:])
            if want and any(want in t for t in titles):
                return True
        elif alt and norm_id(alt) in ids:
            return True
    return False


def is_abstention(answer: Mapping[str, Any]) -> bool:
    return bool(answer.get("abstained")) or str(answer.get("answer", "")).strip().startswith(CANNOT_ANSWER)


def detect_lang(text: str) -> str:
    """'zh' when CJK characters outnumber Latin words, 'en' when there are Latin words, else 'none'."""
    t = _MARKERS.sub(" ", text or "")
    cjk, words = len(_CJK.findall(t)), len(_LATIN_WORD.findall(t))
    if cjk and cjk >= words:
        return "zh"
    return "en" if words else "none"


def _first_ranks(refs: Iterable[str], items: list[Mapping[str, Any]], catalogue: Catalogue | None) -> list[int | None]:
    """1-based rank of the first item matching each ref (each item credited to one ref at most)."""
    used: set[int] = set()
    ranks: list[int | None] = []
    for ref in refs:
        rank = next((i + 1 for i, it in enumerate(items) if i not in used and ref_matches(ref, it, catalogue)), None)
        if rank:
            used.add(rank - 1)
        ranks.append(rank)
    return ranks


def retrieval_metrics(must: list[str], sources: list[Mapping[str, Any]],
                      catalogue: Catalogue | None = None) -> dict[str, float]:
    """hit@1, hit@5, recall@5, MRR and nDCG@10 of ``must`` refs over ranked sources."""
    ranked = sorted(sources, key=lambda s: s.get("rank", 0))
    ranks = [r for r in _first_ranks(must, ranked, catalogue) if r]
    dcg = sum(1 / math.log2(r + 1) for r in ranks if r <= 10)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(must), 10)))
    return {
        "hit@1": float(any(r <= 1 for r in ranks)),
        "hit@5": float(any(r <= 5 for r in ranks)),
        "recall@5": sum(r <= 5 for r in ranks) / len(must),
        "mrr": 1 / min(ranks) if ranks else 0.0,
        "ndcg@10": dcg / idcg if idcg else 0.0,
    }


def _cited_papers(citations: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen: dict[str, Mapping[str, Any]] = {}
    for c in citations:
        seen.setdefault(c.get("paper_id") or c.get("title", ""), c)
    return list(seen.values())


def citation_recall(must: list[str], citations: list[Mapping[str, Any]], catalogue: Catalogue | None = None) -> float:
    cited = _cited_papers(citations)
    return sum(any(ref_matches(r, c, catalogue) for c in cited) for r in must) / len(must)


def citation_precision(allowed: list[str], citations: list[Mapping[str, Any]],
                       catalogue: Catalogue | None = None) -> float:
    cited = _cited_papers(citations)
    return sum(any(ref_matches(r, c, catalogue) for r in allowed) for c in cited) / len(cited)


def citation_validity(citations: list[Mapping[str, Any]], sources: list[Mapping[str, Any]]) -> float:
    retrieved = {s.get("paper_id") for s in sources}
    return sum(c.get("paper_id") in retrieved for c in citations) / len(citations)


def fact_hits(facts: list[str], text: str) -> list[bool]:
    """Which fact regexes occur in the text (raw or NFKC-normalised). Each is also tried with ASCII ``\\b`` /
    ``\\w``, so ``\\b718\\b`` finds "718个" in Chinese text (Unicode ``\\w`` counts CJK characters as letters)."""
    alt = unicodedata.normalize("NFKC", text or "")
    return [any(re.search(f, t, flags) for t in (text or "", alt) for flags in (0, re.ASCII)) for f in facts]


def question_metrics(q: Mapping[str, Any], answer: Mapping[str, Any],
                     catalogue: Catalogue | None = None) -> dict[str, float | None]:
    """Every per-question metric (None where it does not apply) for one question dict + answer dict."""
    must, gold, facts = list(q["must"]), list(q["gold"]), list(q["facts"])
    cites, sources = list(answer.get("citations") or []), list(answer.get("sources") or [])
    answerable = bool(q["answerable"])
    m: dict[str, float | None] = dict.fromkeys(("hit@1", "hit@5", "recall@5", "mrr", "ndcg@10"))
    if answerable and must:
        m.update(retrieval_metrics(must, sources, catalogue))
    m["citation_recall"] = citation_recall(must, cites, catalogue) if answerable and must else None
    m["citation_precision"] = citation_precision(must + gold, cites, catalogue) if cites else None
    m["citation_validity"] = citation_validity(cites, sources) if cites else None
    m["fact_recall"] = (sum(fact_hits(facts, answer.get("answer", ""))) / len(facts)) if answerable and facts else None
    m["abstention_accuracy"] = float(is_abstention(answer) != answerable)
    m["false_abstention"] = float(is_abstention(answer)) if answerable else None
    m["parts_answered"] = (float(all(fact_hits(facts, answer.get("answer", ""))))
                           if answerable and q.get("kind") == "multipart" and facts else None)
    lang = detect_lang(answer.get("answer", ""))
    m["language_match"] = None if lang == "none" and is_abstention(answer) else float(lang == q["lang"])
    sup = [float(c.get("support", 0.0)) for c in cites]
    m["support"] = sum(sup) / len(sup) if sup else None
    m["latency_ms"] = _total_ms(answer)
    m["score"] = question_score(m)
    return m


def _total_ms(answer: Mapping[str, Any]) -> float | None:
    t = (answer.get("timings_ms") or {}).get("total")
    return float(t) if t is not None else None


def question_score(m: Mapping[str, float | None]) -> float:
    """One number per question (mean of the applicable quality metrics) to rank the worst."""
    vals = [m[k] for k in QUALITY_METRICS if m.get(k) is not None]
    return sum(vals) / len(vals) if vals else 0.0


def percentile(values: list[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100); None for no values."""
    vals = sorted(values)
    if not vals:
        return None
    pos = (len(vals) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def aggregate(per_question: list[Mapping[str, float | None]]) -> dict[str, float | None]:
    """Mean of each metric over the questions it applies to, latency percentiles, and counts."""
    out: dict[str, float | None] = {}
    for k in METRIC_SCOPE:
        if k.startswith("latency"):
            continue
        vals = [m[k] for m in per_question if m.get(k) is not None]
        out[k] = sum(vals) / len(vals) if vals else None
    lat = [m["latency_ms"] for m in per_question if m.get("latency_ms") is not None]
    out["latency_p50_ms"] = percentile(lat, 50)
    out["latency_p95_ms"] = percentile(lat, 95)
    out["questions"] = float(len(per_question))
    return out
