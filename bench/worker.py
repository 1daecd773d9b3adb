"""One benchmark size in its own process (so peak RSS is per size): `python -m bench.worker ARGS_JSON OUT_JSON`.

Measures, in this order: first ingest (stage split, CPU time, peak RSS), unchanged re-ingest, the raw
embedder on the same chunk texts, retrieval/ask latency, the llama-index baseline, and optionally the
growth step (corpus replicated with new ids up to a chunk target) with latency re-measured.
"""
from __future__ import annotations

import json
import os
import random
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _cpu(who=resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * len(v) + 0.5) - 1))]


def _summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 2), "p95_ms": round(pct(ms, 95), 2),
            "mean_ms": round(sum(ms) / len(ms), 2) if ms else None}


# ---------------------------------------------------------------- ingest

def bench_ingest(data: str, s) -> dict:
    from rag import api

    vectors0 = api.stats(s)["vectors"] if Path(s.index_dir).exists() else 0
    cpu0, cpu_c0, t0 = _cpu(), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    rep = api.ingest([data], s)
    wall = time.perf_counter() - t0
    out = {"seconds": round(wall, 3), "cpu_s": round(_cpu() - cpu0 + _cpu(resource.RUSAGE_CHILDREN) - cpu_c0, 3),
           "files": rep.files, "papers": rep.papers_new, "chunks": rep.chunks_added,
           "failures": len(rep.failures), "timings": rep.timings,
           "peak_rss_mb": round(_rss_mb(), 1), "parse_workers_peak_rss_mb": round(_rss_mb(resource.RUSAGE_CHILDREN), 1)}
    out["papers_per_s"] = round(rep.papers_new / wall, 2)
    out["chunks_per_s"] = round(rep.chunks_added / wall, 2)
    out["vectors"] = api.stats(s)["vectors"] - vectors0  # passages given a dense vector (Settings.dense)
    out["vectors_per_s"] = round(out["vectors"] / wall, 2)
    no_embed = sum(rep.timings.get(k, 0.0) for k in ("parse", "merge", "chunk", "bm25"))
    out["parse_merge_chunk_bm25_s"] = round(no_embed, 3)
    out["parse_chunk_bm25_papers_per_s"] = round(rep.papers_new / no_embed, 1) if no_embed else None
    t0 = time.perf_counter()
    again = api.ingest([data], s)
    re_s = time.perf_counter() - t0
    out["reingest"] = {"seconds": round(re_s, 4), "files_skipped": again.files_skipped, "files": again.files,
                       "chunks_added": again.chunks_added, "speedup": round(wall / re_s, 1)}
    return out


def bench_raw_embed(s, raw_max: int) -> dict:
    """The embedder alone on the very chunk texts the pipeline embedded: those of randomly chosen
    papers (seeded), re-chunked, up to ``raw_max`` texts (chunking only those keeps memory flat)."""
    from rag import api
    from rag.chunk import chunk_papers
    from rag.embed import get_embedder

    papers = api.papers(s)
    random.Random(1).shuffle(papers)
    sample: list[str] = []
    t0 = time.perf_counter()
    for i in range(0, len(papers), 100):
        sample += [c.embed_text for c in chunk_papers(papers[i:i + 100], s) if s.embeds(c.field, c.lang)]
        if len(sample) >= raw_max:
            break
    chunk_s = time.perf_counter() - t0
    sample = sample[:raw_max]
    emb = get_embedder(s)
    emb.embed(sample[:4])  # warm: session already built by the ingest in this process
    cpu0, t0 = _cpu(), time.perf_counter()
    for i in range(0, len(sample), 1024):
        emb.embed(sample[i:i + 1024])
    wall = time.perf_counter() - t0
    return {"texts": api.stats(s)["vectors"], "measured_texts": len(sample), "seconds": round(wall, 3),
            "cpu_s": round(_cpu() - cpu0, 3), "chunks_per_s": round(len(sample) / wall, 2),
            "chunk_sample_s": round(chunk_s, 3), "papers": len(papers)}


# ---------------------------------------------------------------- latency

def bench_latency(s, queries: list[dict]) -> dict:
    from rag import api

    out = {}
    qs = [q["q"] for q in queries]
    for mode in ("dense", "bm25", "hybrid"):
        api.retrieve(qs[0], s, mode=mode)  # warm (model, BM25 mmap, caches)
        ms, found = [], 0
        for q in queries:
            t0 = time.perf_counter()
            hits = api.retrieve(q["q"], s, mode=mode)
            ms.append((time.perf_counter() - t0) * 1000)
            found += any(h.paper_id == q["paper_id"] for h in hits)
        out[mode] = {**_summary(ms), "source_in_top_k": round(found / len(queries), 3)}
    api.ask(qs[0], s)
    ms = []
    for q in qs:
        t0 = time.perf_counter()
        api.ask(q, s)
        ms.append((time.perf_counter() - t0) * 1000)
    out["ask"] = _summary(ms)
    return out


# ---------------------------------------------------------------- llama-index baseline

def bench_baseline(s, queries: list[dict], root: Path, skip: frozenset[str] = frozenset()) -> dict:
    """Plain llama-index VectorStoreIndex over Chroma, same embedder, one Document per paper.

    Papers in ``skip`` are already in the baseline collection (incremental runs): only the others
    are embedded, and the query runs over the whole collection."""
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from llama_index.core import Document, StorageContext, VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore
    except ImportError as exc:
        return {"error": f"{exc}; pip install llama-index-vector-stores-chroma"}
    from rag import api
    from rag.embed import as_llama_index, get_embedder

    docs = [Document(text=f"{p.title}\n{p.abstract or ''}", doc_id=p.paper_id)
            for p in api.papers(s) if p.paper_id not in skip]
    embed_model = as_llama_index(get_embedder(s), batch=s.embed_batch)
    client = chromadb.PersistentClient(path=str(root / "baseline-chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_or_create_collection("baseline", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    ctx = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=col))
    t0 = time.perf_counter()
    VectorStoreIndex.from_documents(docs, storage_context=ctx, embed_model=embed_model)
    wall = time.perf_counter() - t0
    index = VectorStoreIndex.from_vector_store(ctx.vector_store, embed_model=embed_model)
    retriever = index.as_retriever(similarity_top_k=s.top_k)
    retriever.retrieve(queries[0]["q"])
    ms, found = [], 0
    for q in queries:
        t1 = time.perf_counter()
        nodes = retriever.retrieve(q["q"])
        ms.append((time.perf_counter() - t1) * 1000)
        found += any(n.node.ref_doc_id == q["paper_id"] for n in nodes)
    return {"papers": len(docs), "papers_total": len(docs) + len(skip), "nodes": col.count(),
            "seconds": round(wall, 3), "paper_ids": [d.doc_id for d in docs],
            "papers_per_s": round(len(docs) / wall, 2), "nodes_per_s": round(len(docs) / wall, 2),
            "query": {**_summary(ms), "source_in_top_k": round(found / len(queries), 3)}}


# ---------------------------------------------------------------- main

def _raw(res: dict, s, raw_max: int) -> None:
    """Raw embedder throughput and the pipeline/raw ratios (wall and CPU per embedded chunk)."""
    res["raw_embed"] = raw = bench_raw_embed(s, raw_max)
    ing = res["ingest"]
    res["ratios"] = {"pipeline_vs_raw_throughput": round(ing["vectors_per_s"] / raw["chunks_per_s"], 3),
                     "raw_cpu_s_per_chunk": round(raw["cpu_s"] / raw["measured_texts"], 5),
                     "pipeline_cpu_s_per_chunk": round(ing["cpu_s"] / max(1, ing["vectors"]), 5)}
    res["ratios"]["pipeline_vs_raw_cpu"] = round(res["ratios"]["raw_cpu_s_per_chunk"]
                                                 / res["ratios"]["pipeline_cpu_s_per_chunk"], 3)


def run(args: dict) -> dict:
    from rag.config import Settings

    from .corpus import make_queries
    from rag import api

    root = Path(args["work"])
    s = Settings(index_dir=str(root / "index"), answerer="extractive", embedder=args.get("embedder") or "minilm-onnx")
    res: dict = {"size": args["size"], "subset": args.get("subset")}
    res["ingest"] = bench_ingest(args["data"], s)
    queries = make_queries(api.papers(s), args["queries"])
    res["queries"] = len(queries)
    if args.get("raw", True):
        _raw(res, s, args["raw_max"])
    res["latency"] = bench_latency(s, queries)
    if args.get("baseline"):
        res["baseline"] = bench_baseline(s, queries, root)
        res["baseline"].pop("paper_ids", None)
    if args.get("grow"):
        from .grow import grow_index

        res["grow"] = grow_index(s, args["grow"])
        res["grow"]["latency"] = bench_latency(s, queries)
    res["peak_rss_mb_end"] = round(_rss_mb(), 1)
    return res


def run_step(args: dict) -> dict:
    """One size of an incremental run (`python -m bench --incremental`), in its own process: add
    the next papers to the shared index (as a user adds days of digests, each `digestqa ingest` a
    new process, so peak RSS is that ingest's own), re-ingest everything, raw embedder, latency
    over the whole index, baseline grown by the same papers; after the last size, the day and
    growth steps."""
    from rag import api
    from rag.config import Settings

    from .corpus import make_queries, write_subset

    root, data = Path(args["work"]), Path(args["work"]) / "data"
    s = Settings(index_dir=str(root / "index"), answerer="extractive", embedder=args.get("embedder") or "minilm-onnx")
    size = args["size"]
    res: dict = {"size": size, "subset": write_subset(Path(args["corpus"]), size, data, tuple(args["fields"]))}
    res["ingest"] = bench_ingest(str(data), s)
    res["ingest"]["papers_total"] = len(api.papers(s))
    queries = make_queries(api.papers(s), args["queries"])
    res["queries"] = len(queries)
    _raw(res, s, args["raw_max"])
    res["latency"] = bench_latency(s, queries)
    if args.get("baseline"):
        done = Path(args["baseline_ids"])
        in_baseline = frozenset(json.loads(done.read_text())) if done.exists() else frozenset()
        res["baseline"] = bench_baseline(s, queries, root, in_baseline)
        done.write_text(json.dumps(sorted(in_baseline | set(res["baseline"].pop("paper_ids", [])))))
    res["peak_rss_mb_end"] = round(_rss_mb(), 1)
    if args.get("day"):
        from .daily import add_day

        res["day"] = add_day(s, Path(args["corpus"]), data, tuple(args["fields"]), size + args["day"])
    if args.get("grow"):
        from .grow import grow_index

        res["grow"] = grow_index(s, args["grow"])
        res["grow"]["latency"] = bench_latency(s, make_queries(api.papers(s), args["queries"]))
    return res


def main() -> int:
    args = json.loads(sys.argv[1])
    res = run_step(args) if args.get("incremental") else run(args)
    Path(sys.argv[2]).write_text(json.dumps(res, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
