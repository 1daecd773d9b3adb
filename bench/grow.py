"""Grow a built index to a chunk target by replicating its papers under new ids (``<id>~rN``).

Re-embedding 100k chunks through the pipeline takes hours on 2 shared cores, so the copies reuse the
stored vectors (plus small seeded noise, re-normalised, so HNSW never sees exact duplicates) and the
stored BM25 tokens. Retrieval then runs over a realistic 100k-chunk index: Chroma HNSW, BM25 and the
catalogue (title table) all grow. This is a retrieval-latency fixture, not an ingest measurement.
"""
from __future__ import annotations

import json
import math
import time

import numpy as np


_META = ("date_int", "categories", "authors", "title", "arxiv_id")


def _rows(store) -> list[tuple]:
    """Every chunk row: id, paper, field, lang, text, hash, its metadata (from the catalogue) and
    its BM25 tokens as a space-joined string (from the stored term ids)."""
    from array import array

    inv = {i: t for t, i in store.terms().items()}
    rows = store.db.execute(f"SELECT chunk_id, paper_id, field, lang, text, hash, {', '.join(_META)}, tok_ids "
                            "FROM chunks ORDER BY chunk_id").fetchall()
    return [(*r[:6], dict(zip(_META, r[6:11])), " ".join(map(inv.__getitem__, array("i", r[11] or b""))))
            for r in rows]


def _vectors(store, ids: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for i in range(0, len(ids), 2000):
        got = store.collection.get(ids=ids[i:i + 2000], include=["embeddings"])
        for cid, vec in zip(got["ids"], got["embeddings"]):
            out[cid] = np.asarray(vec, dtype=np.float32)
    return out


def _copy(rows, vecs, r: int, rng: np.random.Generator):
    from rag.types import Chunk

    chunks, vectors, tokens = [], [], []
    for cid, pid, field, lang, text, h, meta, toks in rows:
        new_pid = f"{pid}~r{r}"
        new_id = f"{new_pid}:{cid.rsplit(':', 2)[1]}:{cid.rsplit(':', 2)[2]}"
        if cid in vecs:
            v = vecs[cid] + rng.normal(0, 0.005, vecs[cid].shape).astype(np.float32)
            vectors.append((v / np.linalg.norm(v)).tolist())
        else:  # a BM25-only passage (Settings.dense): no vector to copy
            vectors.append(None)
        meta = {**meta, "paper_id": new_pid, "field": field, "lang": lang}
        chunks.append(Chunk(new_id, new_pid, field, lang, text, "", h, meta))
        tokens.append(toks or "")
    return chunks, vectors, tokens


def _copy_papers(store, r: int) -> None:
    rows = store.db.execute("SELECT paper_id, hash, json FROM papers WHERE paper_id NOT LIKE '%~r%'").fetchall()
    out = []
    for pid, h, js in rows:
        d = json.loads(js)
        d["paper_id"] = f"{pid}~r{r}"
        out.append((d["paper_id"], h, json.dumps(d, ensure_ascii=False)))
    with store.db:
        store.db.executemany("INSERT OR REPLACE INTO papers VALUES (?,?,?)", out)


def grow_index(settings, target_chunks: int) -> dict:
    """Replicate until the index holds >= target_chunks chunks; returns sizes and build time."""
    from rag.retrieve import forget_store, rebuild_bm25
    from rag.store import open_store

    forget_store(settings)
    store = open_store(settings)
    t0 = time.perf_counter()
    rows = _rows(store)
    before = len(rows)
    copies = max(0, math.ceil(target_chunks / max(1, before)) - 1)
    vecs = _vectors(store, [r[0] for r in rows])
    rng = np.random.default_rng(0)
    for r in range(1, copies + 1):
        chunks, vectors, tokens = _copy(rows, vecs, r, rng)
        for i in range(0, len(chunks), 5000):
            store.upsert_chunks(chunks[i:i + 5000], vectors[i:i + 5000], tokens[i:i + 5000])
        _copy_papers(store, r)
    rebuild_bm25(store)
    out = {"chunks_before": before, "chunks_after": store.chunk_count(), "vectors_after": store.vector_count(),
           "papers_after": store.stats()["papers"], "copies": copies, "build_s": round(time.perf_counter() - t0, 1)}
    store.close()
    forget_store(settings)
    return out
