"""Everything but the embedder, in-process and serial: parse -> merge -> chunk -> BM25 tokens + index.

`python -m bench.noembed DATA_DIR [N_PAPERS]` prints JSON; used by `python -m bench --no-embed-sizes`.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def run(data: Path, settings=None) -> dict:
    import bm25s

    from rag.chunk import chunk_papers
    from rag.config import Settings
    from rag.merge import merge_papers
    from rag.parse import parse_file
    from rag.retrieve import tokens_text

    s = settings or Settings(index_dir="/nonexistent-bench")
    files = sorted(str(p) for p in Path(data).glob("*.jsonl.gz"))
    chunk_papers([], s)  # imports and encoder load are not per-paper costs; timed separately below
    t = {}
    t0 = time.perf_counter()
    records = [p for f in files for p in parse_file(f).papers]
    t["parse"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    papers = merge_papers(records)
    t["merge"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    chunks = chunk_papers(papers, s)
    t["chunk"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    corpus = [tokens_text(c.embed_text, s.bm25_tokenizer).split() for c in chunks]
    model = bm25s.BM25(k1=0.9, b=0.4)
    model.index(corpus, show_progress=False)
    t["bm25"] = time.perf_counter() - t0
    total = sum(t.values())
    return {"files": len(files), "records": len(records), "papers": len(papers), "chunks": len(chunks),
            "timings": {k: round(v, 3) for k, v in t.items()}, "seconds": round(total, 3),
            "papers_per_s": round(len(papers) / total, 1)}


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]))))
