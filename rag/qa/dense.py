"""Sentence-vector similarity for the offline answerer, from the index's own embedder.

Cosine similarities are mapped to 0..1 with the embedder's calibration (``lo`` -> 0, ``hi`` -> 1): unrelated
sentences score ~0, a sentence that answers the question ~1, comparable with the lexical score. An
English-only embedder (MiniLM) gives no similarity across languages (None), a multilingual one does.
Vectors are cached per embedder (bounded, thread-safe); a sentence's vector does not depend on what it is
embedded with, so caching never changes an answer.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from ..text import language

# name -> (multilingual, cosine mapped to 0, cosine mapped to 1); measured on the dev sets' evidence sentences
CALIBRATION: dict[str, tuple[bool, float, float]] = {
    "minilm-onnx": (False, 0.15, 0.65),
}
CACHE_SIZE = 50_000
MAX_UNITS = 60  # units compared per question part (the best lexical ones and every unit across languages)


class SentenceVectors:
    """An embedder's vectors of sentences, kept in a bounded LRU cache."""

    def __init__(self, embedder, size: int = CACHE_SIZE):
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def vectors(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            fresh = self.embedder.embed(missing)
            with self._lock:
                for t, v in zip(missing, fresh):
                    self._cache[t] = v
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        with self._lock:
            out = []
            for t in texts:
                v = self._cache.get(t)
                if v is None:  # evicted meanwhile by another thread
                    v = self.embedder.embed([t])[0]
                out.append(v)
        return np.vstack(out) if out else np.zeros((0, 1), dtype=np.float32)


class DenseScorer:
    """:class:`rag.qa.evidence.Dense` over one embedder."""

    def __init__(self, vectors: SentenceVectors, multilingual: bool, lo: float, hi: float):
        self.vectors, self.multilingual, self.lo, self.hi = vectors, multilingual, lo, hi

    def similarities(self, query: str, texts: list[str]) -> list[float | None]:
        if not texts:
            return []
        lang = language(query)
        usable = [i for i, t in enumerate(texts) if self.multilingual or language(t) == lang]
        out: list[float | None] = [None] * len(texts)
        if not usable:
            return out
        q = self.vectors.embedder.embed_query(query)
        mat = self.vectors.vectors([texts[i] for i in usable])
        for i, cos in zip(usable, mat @ q):
            out[i] = float(min(1.0, max(0.0, (cos - self.lo) / (self.hi - self.lo))))
        return out


_SCORERS: dict[int, SentenceVectors] = {}
_SCORERS_LOCK = threading.Lock()


def scorer_for(embedder, name: str) -> DenseScorer | None:
    """The dense scorer of an embedder with a calibration (None for others: the answerer stays lexical)."""
    if name not in CALIBRATION:
        return None
    multilingual, lo, hi = CALIBRATION[name]
    with _SCORERS_LOCK:
        vecs = _SCORERS.get(id(embedder))
        if vecs is None or vecs.embedder is not embedder:
            vecs = _SCORERS[id(embedder)] = SentenceVectors(embedder)
    return DenseScorer(vecs, multilingual, lo, hi)
