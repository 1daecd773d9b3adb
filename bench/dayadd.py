"""The cost of adding one day besides the embedder, on an index of any size, before/after a code change.

    python -m bench.dayadd build INDEX DATA N       # ingest the first N papers of the scale corpus
    python -m bench.dayadd add INDEX DATA N [--warm]  # then ingest the first N (> before): prints JSON

Both use a stand-in embedder (seeded random unit vectors of MiniLM's 384 dimensions, ~10 us a text), so an
index of 20k papers builds in minutes and a day's number is the rest of the ingest: parse, merge, chunk,
catalogue, Chroma upserts (of real-sized vectors), BM25. The embedder's own time is measured by
`python -m bench` (``embed`` in its stage split). To compare two versions of the code, build one index,
copy it once per run (``cp -a``) and run ``add`` with ``PYTHONPATH`` set to each checkout; an index the
older code built is upgraded by the newer one's first ingest (the link index of rag.delta), so give
both one unmeasured ``add`` first (``settle``) and measure the next. ``--warm`` imports chromadb and
llama-index's sentence splitter before the clock starts (~3 s of a fresh process on 2 cores that do not
grow with the index: what a long-running process, e.g. the UI or `digestqa watch`, has paid already).
"""
from __future__ import annotations

import json
import sys
import time
import zlib
from pathlib import Path


class StandIn:
    """Embedder stand-in: a seeded random unit vector per text (same text, same vector)."""
    name, dim = "stand-in", 384

    def embed(self, texts):
        import numpy as np

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            v = np.random.default_rng(zlib.crc32(t.encode("utf-8"))).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out

    def embed_query(self, text):
        return self.embed([text])[0]


def _ingest(index: Path, data: Path, n: int, warm: bool = False, chroma_url: str | None = None,
            embedder=None, corpus: Path | None = None) -> dict:
    from rag import api, embed
    from rag.config import Settings

    from .corpus import ALL_FIELDS, DEFAULT_CORPUS, write_subset

    embedder = embedder or StandIn()
    embed.get_embedder = lambda settings: embedder
    s = Settings(index_dir=str(index), answerer="extractive", chroma_url=chroma_url)
    write_subset(corpus or DEFAULT_CORPUS, n, data, ALL_FIELDS)
    t0 = time.perf_counter()
    if warm:  # what a process that already ingested or answered has loaded: imports, the sentence splitter
        import chromadb  # noqa: F401

        from rag.chunk import count_tokens, split_text

        count_tokens("warm up")
        split_text("Warm up the sentence splitter. " * s.chunk_tokens, s.chunk_tokens, s.chunk_overlap)
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = api.ingest([str(data)], s)
    wall = time.perf_counter() - t0
    embed_s = rep.timings.get("embed", 0.0)
    return {"warm": warm, "chroma_url": chroma_url, "warmup_s": round(warmup, 3), "papers_new": rep.papers_new, "papers_updated": rep.papers_updated, "chunks_added": rep.chunks_added,
            "seconds": round(wall, 3), "embed_s": round(embed_s, 3), "overhead_s": round(wall - embed_s, 3),
            "timings": rep.timings, "notes": list(rep.notes)[:3], "ok": rep.ok}


def main(argv: list[str]) -> int:
    warm = "--warm" in argv
    argv = [a for a in argv if a != "--warm"]
    if len(argv) != 4 or argv[0] not in ("build", "add") or not argv[3].isdigit():
        raise SystemExit(__doc__)
    cmd, index, data, n = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3])
    print(json.dumps({"cmd": cmd, "n": n, **_ingest(index, data, n, warm)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
