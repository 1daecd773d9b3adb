"""Everything but the embedder, in-process and serial: parse -> merge -> chunk -> BM25 tokens ->
catalogue rows (SQLite, term ids, no vectors) -> BM25 index rebuilt from the stored term ids.

`python -m bench.noembed DATA_DIR [N_FILES]` prints JSON; used by `python -m bench` (no_embed_full).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    """CPU seconds of this process (all threads) plus finished child processes."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


class _Clock:
    def __init__(self):
        self.t, self.cpu = {}, {}
        self._t0, self._c0 = time.perf_counter(), _cpu()

    def lap(self, name: str) -> None:
        now, c = time.perf_counter(), _cpu()
        self.t[name], self.cpu[name] = now - self._t0, c - self._c0
        self._t0, self._c0 = now, c


def run(data: Path, settings=None, max_files: int | None = None) -> dict:
    from rag.chunk import chunk_papers, split_text
    from rag.config import Settings
    from rag.merge import merge_papers
    from rag.parse import parse_file
    from rag.retrieve import chunk_tokens_texts, rebuild_bm25
    from rag.store import open_store

    tmp = tempfile.TemporaryDirectory(prefix="dq-noembed-")
    s = settings or Settings(index_dir=tmp.name)
    files = sorted(str(p) for p in Path(data).glob("*.jsonl.gz"))[:max_files]
    t0 = time.perf_counter()  # imports and encoder load are not per-paper costs: timed apart
    split_text("Warm up. " * s.chunk_tokens, s.chunk_tokens, s.chunk_overlap)
    warmup = time.perf_counter() - t0
    store = open_store(s)
    clock = _Clock()
    records = [p for f in files for p in parse_file(f).papers]
    clock.lap("parse")
    papers = merge_papers(records)
    clock.lap("merge")
    chunks = chunk_papers(papers, s)
    clock.lap("chunk")
    tokens = chunk_tokens_texts(chunks, s.bm25_tokenizer)
    clock.lap("tokens")
    for i in range(0, len(chunks), 256):  # the ingest's commit size, BM25-only rows (no vectors)
        store.upsert_chunks(chunks[i:i + 256], [None] * len(chunks[i:i + 256]), tokens[i:i + 256])
    clock.lap("store")
    rebuild_bm25(store)
    clock.lap("bm25")
    store.close()
    tmp.cleanup()
    t = clock.t
    raw = _raw_tokenizer(papers)
    core = t["parse"] + t["merge"] + t["chunk"] + t["tokens"] + t["bm25"]
    return {"files": len(files), "records": len(records), "papers": len(papers), "chunks": len(chunks),
            "warmup_s": round(warmup, 3), "timings": {k: round(v, 3) for k, v in t.items()},
            "cpu": {k: round(v, 3) for k, v in clock.cpu.items()}, "seconds": round(core, 3),
            "papers_per_s": round(len(papers) / core, 1),
            "with_store_papers_per_s": round(len(papers) / sum(t.values()), 1),
            "stage_papers_per_s": {k: round(len(papers) / max(v, 1e-9), 1) for k, v in t.items()},
            "raw_tiktoken": raw}


def _raw_tokenizer(papers) -> dict:
    """Reference cost: cl100k-encoding every field text once, one thread and all cores (the exact
    token counts the chunker needs for texts no cheap bound decides are a subset of this)."""
    from rag.chunk import count_many, encoding, field_texts

    texts = [t for p in papers for _, t in field_texts(p)]
    enc = encoding()
    t0 = time.perf_counter()
    for t in texts:
        enc.encode_ordinary(t)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    count_many(texts)
    many = time.perf_counter() - t0
    return {"texts": len(texts), "one_thread_s": round(one, 3), "all_cores_s": round(many, 3),
            "one_thread_papers_per_s": round(len(papers) / one, 1)}


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), max_files=int(sys.argv[2]) if len(sys.argv) > 2 else None)))
