"""Everything but the embedder, in-process and serial: parse -> merge -> chunk -> BM25 tokens + index.

`python -m bench.noembed DATA_DIR [N_PAPERS]` prints JSON; used by `python -m bench --no-embed-sizes`.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _cpu() -> float:
    """CPU seconds of this process (all threads) plus finished child processes."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def run(data: Path, settings=None) -> dict:
    from rag.chunk import chunk_papers, split_text
    from rag.config import Settings
    from rag.merge import merge_papers
    from rag.parse import parse_file
    from rag.retrieve import bm25_from_token_texts, chunk_tokens_texts

    s = settings or Settings(index_dir="/nonexistent-bench")
    files = sorted(str(p) for p in Path(data).glob("*.jsonl.gz"))
    t0 = time.perf_counter()  # imports and encoder load are not per-paper costs: timed apart
    split_text("Warm up. " * s.chunk_tokens, s.chunk_tokens, s.chunk_overlap)
    warmup = time.perf_counter() - t0
    t, cpu = {}, {}
    c0 = _cpu()
    t0 = time.perf_counter()
    records = [p for f in files for p in parse_file(f).papers]
    t["parse"] = time.perf_counter() - t0
    cpu["parse"], c0 = _cpu() - c0, _cpu()
    t0 = time.perf_counter()
    papers = merge_papers(records)
    t["merge"] = time.perf_counter() - t0
    cpu["merge"], c0 = _cpu() - c0, _cpu()
    t0 = time.perf_counter()
    chunks = chunk_papers(papers, s)
    t["chunk"] = time.perf_counter() - t0
    cpu["chunk"], c0 = _cpu() - c0, _cpu()
    t0 = time.perf_counter()
    bm25_from_token_texts(chunk_tokens_texts(chunks, s.bm25_tokenizer))
    t["bm25"] = time.perf_counter() - t0
    cpu["bm25"], c0 = _cpu() - c0, _cpu()
    total = sum(t.values())
    return {"files": len(files), "records": len(records), "papers": len(papers), "chunks": len(chunks),
            "warmup_s": round(warmup, 3),
            "timings": {k: round(v, 3) for k, v in t.items()},
            "cpu": {k: round(v, 3) for k, v in cpu.items()}, "seconds": round(total, 3),
            "papers_per_s": round(len(papers) / total, 1),
            "stage_papers_per_s": {k: round(len(papers) / max(v, 1e-9), 1) for k, v in t.items()}}


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]))))
