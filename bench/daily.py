"""Cost of adding one day's papers to a big index (what a user does every day).

In `python -m bench --incremental --day N`, this runs after the largest size: the next N papers of
the corpus are added and the ingest is split into the embedder's time and the rest ("overhead":
parse, merge, chunk, store, BM25 rebuild, which grow with the index, not with the day).

Standalone, on an index a bench run left behind (e.g. `--work DIR`):
`python -m bench.daily INDEX_DIR DATA_DIR FIRST_N THEN_N [CORPUS]` ingests the first FIRST_N papers
(unmeasured: brings the index to a known state) and then THEN_N (measured); prints JSON.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def add_day(s, corpus: Path, data: Path, fields: tuple[str, ...], n_after: int) -> dict:
    """Write the first ``n_after`` papers into ``data`` and ingest; seconds, stage split, overhead."""
    from rag import api

    from .corpus import write_subset

    before = api.stats(s)
    write_subset(corpus, n_after, data, fields)
    t0 = time.perf_counter()
    rep = api.ingest([str(data)], s)
    wall = time.perf_counter() - t0
    after = api.stats(s)
    embed = rep.timings.get("embed", 0.0)
    return {"papers_in_index": before["papers"], "chunks_in_index": before["chunks"],
            "papers_added": rep.papers_new, "chunks_added": rep.chunks_added,
            "vectors_added": after["vectors"] - before["vectors"], "seconds": round(wall, 3),
            "timings": rep.timings, "embed_s": round(embed, 3), "overhead_s": round(wall - embed, 3)}


def main(argv: list[str]) -> int:
    from rag.config import Settings

    from .corpus import ALL_FIELDS, DEFAULT_CORPUS

    index, data, first, then = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    corpus = Path(argv[4]) if len(argv) > 4 else DEFAULT_CORPUS
    s = Settings(index_dir=str(index), answerer="extractive")
    warm = add_day(s, corpus, data, ALL_FIELDS, first)
    print(json.dumps({"settle": warm, "day": add_day(s, corpus, data, ALL_FIELDS, then)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
