"""A day added as one digest file, on an index of any size: the cost besides the embedder.

    python -m bench.dayfile INDEX FILE_OR_DIR [--chroma-url URL]   # prints JSON

The stand-in embedder of bench.dayadd (so the number is the rest of the ingest), imports done before the
clock starts (what a long-running process has paid). Used for the 1k / 20k / 1M table in the README with
a daily-arXiv file none of the indexes holds.
"""
from __future__ import annotations

import json
import resource
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--chroma-url"):
        raise SystemExit(__doc__)
    from rag import api, embed
    from rag.chunk import count_tokens, split_text
    from rag.config import Settings

    from .dayadd import StandIn

    stand_in = StandIn()
    embed.get_embedder = lambda settings: stand_in
    s = Settings(index_dir=argv[0], answerer="extractive", chroma_url=argv[3] if len(argv) == 4 else None)
    import chromadb  # noqa: F401 - warm, as bench.dayadd --warm

    count_tokens("warm up")
    split_text("Warm up the sentence splitter. " * s.chunk_tokens, s.chunk_tokens, s.chunk_overlap)
    t0 = time.perf_counter()
    rep = api.ingest([argv[1]], s)
    wall = time.perf_counter() - t0
    embed_s = rep.timings.get("embed", 0.0)
    print(json.dumps({"papers_new": rep.papers_new, "papers_updated": rep.papers_updated, "chunks": rep.chunks_added,
                      "seconds": round(wall, 3), "overhead_s": round(wall - embed_s, 3), "timings": rep.timings,
                      "notes": list(rep.notes)[:3], "ok": rep.ok,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
