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


# ---------------------------------------------------------------- whole papers, for the 1M-paper bench

_REPLICA = "~r"  # a replica's paper id: <original id>~r<N>
_CHUNK_COPY_COLS = ("chunk_id, paper_id, field, lang, text, hash, tokens, date_int, categories, authors, title, "
                    "arxiv_id, embedded, tok_ids")


def grow_papers(settings, target_papers: int, batch: int = 5000) -> dict:
    """Grow the index in place to ``target_papers`` papers by replicating its original papers (ids without
    ``~r``) under new ids ``<id>~r<N>``: everything an ingest or a query reads about a paper is copied, so
    a day added to the grown index costs what it would at that size: the catalogue's merged record, its
    raw records (under ``<file>~r<N>``: ``rag.delta`` finds records by paper id), its chunk rows (text,
    metadata, BM25 term ids), its link index rows (``link_groups``, ``link_clauses``), and its vectors in
    Chroma (+ seeded noise, re-normalised). Texts, titles and arXiv ids are the originals' (so the
    vocabulary does not grow and each term's postings are N times longer than a real corpus's). The BM25
    files are not rebuilt here (``rag.retrieve.rebuild_bm25``: timed apart by the caller)."""
    from rag.retrieve import forget_store
    from rag.store import Store

    forget_store(settings)
    store = Store(settings, readonly=False, writer=True)
    db = store.db
    t0 = time.perf_counter()
    originals = [r[0] for r in db.execute(f"SELECT paper_id FROM papers WHERE instr(paper_id, '{_REPLICA}') = 0 "
                                          "ORDER BY paper_id")]
    total = db.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
    row = db.execute("SELECT value FROM meta WHERE key='bench_replicas'").fetchone()
    rounds = int(row[0]) if row else 0
    vecs = _original_vectors(store, originals)
    vec_s = time.perf_counter() - t0
    rng = np.random.default_rng(rounds)
    sql_s = chroma_s = 0.0
    added = 0
    while total < target_papers:
        rounds += 1
        take = originals[:min(len(originals), target_papers - total)]
        t1 = time.perf_counter()  # vectors first, then the rows with the round number (one transaction):
        _copy_vectors(store, vecs, set(take), f"{_REPLICA}{rounds}", rng, batch)  # an interrupted round
        chroma_s += time.perf_counter() - t1  # is redone under the same ids by the next call
        t1 = time.perf_counter()
        _copy_rows(db, take, f"{_REPLICA}{rounds}", rounds)
        sql_s += time.perf_counter() - t1
        total += len(take)
        added += len(take)
    store.close()
    forget_store(settings)
    return {"papers_added": added, "papers_after": total, "replica_rounds": rounds,
            "read_vectors_s": round(vec_s, 1), "sql_s": round(sql_s, 1), "chroma_s": round(chroma_s, 1),
            "seconds": round(time.perf_counter() - t0, 1)}


def _original_vectors(store, originals: list[str]) -> dict[str, tuple[np.ndarray, dict]]:
    """chunk id -> (vector, Chroma metadata) of every embedded chunk of the original papers."""
    ids = [r[0] for r in store.db.execute(f"SELECT chunk_id FROM chunks WHERE embedded=1 AND "
                                          f"instr(paper_id, '{_REPLICA}') = 0 ORDER BY chunk_id")]
    out = {}
    for i in range(0, len(ids), 2000):
        got = store.collection.get(ids=ids[i:i + 2000], include=["embeddings", "metadatas"])
        for cid, vec, meta in zip(got["ids"], got["embeddings"], got["metadatas"]):
            out[cid] = (np.asarray(vec, dtype=np.float32), meta)
    return out


def _copy_rows(db, paper_ids: list[str], suffix: str, round_no: int) -> None:
    """Copy these papers' catalogue rows under ``<id><suffix>`` in one transaction (inside SQLite)."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS grow_sel (paper_id TEXT PRIMARY KEY)")
        db.execute("DELETE FROM grow_sel")
        db.executemany("INSERT INTO grow_sel VALUES (?)", [(p,) for p in paper_ids])
        s = (suffix,)
        db.execute("INSERT INTO papers SELECT paper_id || ?1, hash, json_set(json, '$.paper_id', paper_id || ?1) "
                   "FROM papers WHERE paper_id IN (SELECT paper_id FROM grow_sel)", s)
        db.execute("INSERT INTO records (file, idx, json, paper_id) SELECT file || ?1, idx, "
                   "json_set(json, '$.paper_id', paper_id || ?1), paper_id || ?1 FROM records "
                   "WHERE paper_id IN (SELECT paper_id FROM grow_sel)", s)
        db.execute(f"INSERT INTO chunks ({_CHUNK_COPY_COLS}) SELECT paper_id || ?1 || substr(chunk_id, "
                   "length(paper_id) + 1), paper_id || ?1, field, lang, text, hash, tokens, date_int, categories, "
                   "authors, title, arxiv_id, embedded, tok_ids FROM chunks "
                   "WHERE paper_id IN (SELECT paper_id FROM grow_sel)", s)
        db.execute("INSERT INTO link_groups SELECT paper_id || ?1, ided, title_key, "
                   "CASE WHEN link IS NULL THEN NULL ELSE link || ?1 END FROM link_groups "
                   "WHERE paper_id IN (SELECT paper_id FROM grow_sel)", s)
        db.execute("INSERT INTO link_clauses SELECT paper_id || ?1, clause, ided FROM link_clauses "
                   "WHERE paper_id IN (SELECT paper_id FROM grow_sel)", s)
        db.execute("INSERT INTO title_keys SELECT CASE WHEN key = paper_id THEN key || ?1 ELSE key END, kind, "
                   "paper_id || ?1 FROM title_keys WHERE paper_id IN (SELECT paper_id FROM grow_sel)", s)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('bench_replicas', ?)", (str(round_no),))
        db.execute("INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) "
                   "DO UPDATE SET value = CAST(value AS INTEGER) + 1")


def _copy_vectors(store, vecs: dict, papers: set[str], suffix: str, rng: np.random.Generator, batch: int) -> None:
    ids, embs, metas = [], [], []
    col = store.collection
    for cid, (v, meta) in vecs.items():
        pid = meta["paper_id"]
        if pid not in papers:
            continue
        w = v + rng.normal(0, 0.005, v.shape).astype(np.float32)
        ids.append(pid + suffix + cid[len(pid):])
        embs.append(w / np.linalg.norm(w))
        metas.append({**meta, "paper_id": pid + suffix})
        if len(ids) >= batch:
            col.upsert(ids=ids, embeddings=np.stack(embs), metadatas=metas)
            ids, embs, metas = [], [], []
    if ids:
        col.upsert(ids=ids, embeddings=np.stack(embs), metadatas=metas)
