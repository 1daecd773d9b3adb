"""Targets (ratios measured in one run) and the printed tables."""
from __future__ import annotations


def _largest(result: dict) -> dict:
    ok = [s for s in result.get("sizes", []) if "error" not in s]
    return ok[-1] if ok else {}


def _check(name: str, value, target: str, met: bool | None, note: str = "") -> dict:
    return {"target": name, "value": value, "goal": target, "met": met, "note": note}


def targets(result: dict) -> list[dict]:
    big = _largest(result)
    if not big:
        return []
    ing, lat = big["ingest"], big["latency"]
    at = f"at {big['size']} papers"
    out = []
    r = big.get("ratios", {})
    if r:
        out.append(_check("pipeline / raw embedder throughput", r["pipeline_vs_raw_throughput"], ">= 0.9",
                          r["pipeline_vs_raw_throughput"] >= 0.9, f"{at}; CPU-time ratio {r['pipeline_vs_raw_cpu']}"))
    full = result.get("no_embed_full", {})
    if "papers_per_s" in full:
        v = full["papers_per_s"]
        out.append(_check("parse+merge+chunk+BM25 papers/s", v, ">= 5000", v >= 5000,
                          f"serial, {full['papers']} papers / {full['chunks']} chunks: {full['timings']}"))
    else:
        v = ing.get("parse_chunk_bm25_papers_per_s")
        out.append(_check("parse+merge+chunk+BM25 papers/s", v, ">= 5000", v is not None and v >= 5000,
                          f"{at} (inside ingest, includes one-time imports)"))
    sp = ing["reingest"]["speedup"]
    out.append(_check("unchanged re-ingest speedup", sp, ">= 50x", sp >= 50, at))
    p95 = lat["hybrid"]["p95_ms"]
    out.append(_check("hybrid retrieval p95 (ms)", p95, "<= 50 at 20k papers", p95 <= 50,
                      at if big["size"] >= 20000 else f"{at} (20k not measured in this run)"))
    g = big.get("grow")
    if g and g.get("latency"):
        c_ratio = g["chunks_after"] / max(1, g["chunks_before"])
        l_ratio = g["latency"]["hybrid"]["p95_ms"] / max(1e-9, p95)
        d_ratio = g["latency"]["dense"]["p50_ms"] / max(1e-9, lat["dense"]["p50_ms"])
        out.append(_check("growth: hybrid p95 ratio vs chunk ratio", round(l_ratio, 2), f"< {c_ratio:.1f} (sub-linear)",
                          l_ratio < c_ratio, f"{g['chunks_before']} -> {g['chunks_after']} chunks; dense p50 ratio "
                                             f"{d_ratio:.2f}"))
    rss = ing["peak_rss_mb"]
    out.append(_check("peak RSS while ingesting (MB)", rss, "<= 1536 at 20k papers", rss <= 1536,
                      f"{at}; parse workers peak {ing['parse_workers_peak_rss_mb']} MB"))
    cold = result.get("cold_start", {}).get("ask", {})
    if "median_s" in cold:
        out.append(_check("`digestqa ask` cold start (s)", cold["median_s"], "< 3", cold["median_s"] < 3,
                          "sample index, extractive answerer"))
    return out


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def size_table(result: dict) -> list[str]:
    lines = [_row(["papers", "chunks", "ingest s", "papers/s", "chunks/s", "raw embed chunks/s", "pipeline/raw",
                   "parse", "merge", "chunk", "embed", "store", "bm25", "no-embed papers/s", "re-ingest s (x)",
                   "peak RSS MB"]),
             _row(["---"] * 16)]
    for s in result.get("sizes", []):
        if "error" in s:
            lines.append(_row([s["size"], s["error"]] + [""] * 14))
            continue
        i, t = s["ingest"], s["ingest"]["timings"]
        raw = s.get("raw_embed", {})
        papers = f"+{i['papers']} (= {i['papers_total']})" if "papers_total" in i else i["papers"]
        lines.append(_row([papers, i["chunks"], i["seconds"], i["papers_per_s"], i["chunks_per_s"],
                           raw.get("chunks_per_s", "-"), s.get("ratios", {}).get("pipeline_vs_raw_throughput", "-"),
                           *(t.get(k, 0) for k in ("parse", "merge", "chunk", "embed", "store", "bm25")),
                           i["parse_chunk_bm25_papers_per_s"],
                           f"{i['reingest']['seconds']} ({i['reingest']['speedup']}x)", i["peak_rss_mb"]]))
    return lines


def latency_table(result: dict) -> list[str]:
    lines = [_row(["index", "chunks", "dense p50/p95 ms", "bm25 p50/p95 ms", "hybrid p50/p95 ms",
                   "ask p50/p95 ms", "hybrid source@k"]), _row(["---"] * 7)]
    for s in result.get("sizes", []):
        if "error" in s:
            continue
        rows = [(f"{s['size']} papers", s["ingest"]["chunks"], s["latency"])]
        if s.get("grow", {}).get("latency"):
            g = s["grow"]
            rows.append((f"{g['papers_after']} papers (replicated)", g["chunks_after"], g["latency"]))
        for name, chunks, lat in rows:
            pp = lambda k: f"{lat[k]['p50_ms']:.1f} / {lat[k]['p95_ms']:.1f}"  # noqa: E731
            lines.append(_row([name, chunks, pp("dense"), pp("bm25"), pp("hybrid"), pp("ask"),
                               lat["hybrid"]["source_in_top_k"]]))
    return lines


def baseline_table(result: dict) -> list[str]:
    lines = [_row(["system (same embedder, same papers)", "papers", "texts embedded", "ingest s", "papers/s",
                   "query p50/p95 ms", "source@k"]), _row(["---"] * 7)]
    for s in result.get("sizes", []):
        b = s.get("baseline")
        if not b or "error" in s:
            continue
        i, h = s["ingest"], s["latency"]["hybrid"]
        lines.append(_row(["digestqa pipeline (all fields, hybrid)", i.get("papers_total", i["papers"]), i["chunks"], i["seconds"],
                           i["papers_per_s"], f"{h['p50_ms']:.1f} / {h['p95_ms']:.1f}", h["source_in_top_k"]]))
        if "error" in b:
            lines.append(_row(["llama-index VectorStoreIndex", b["error"], "", "", "", "", ""]))
            continue
        q = b["query"]
        lines.append(_row(["llama-index VectorStoreIndex (title+abstract, dense)", b.get("papers_total", b["papers"]),
                           b["nodes"],
                           b["seconds"], b["papers_per_s"], f"{q['p50_ms']:.1f} / {q['p95_ms']:.1f}",
                           q["source_in_top_k"]]))
    return lines


def print_tables(result: dict) -> None:
    print(f"\nembedder: {result.get('embedder')} | machine: {result['machine']}")
    print("\nIngest (seconds per stage)\n" + "\n".join(size_table(result)))
    print("\nLatency (warm, {} queries)\n".format(_nq(result)) + "\n".join(latency_table(result)))
    for s in result.get("sizes", []):
        d = s.get("day")
        if d:
            print(f"\nOne more day: +{d['papers_added']} papers (+{d['vectors_added']} vectors) into an index of "
                  f"{d['papers_in_index']} papers / {d['chunks_in_index']} chunks: {d['seconds']} s, of which "
                  f"embedder {d['embed_s']} s, the rest {d['overhead_s']} s; stages {d['timings']}")
    base = baseline_table(result)
    if len(base) > 2:
        print("\nBaseline\n" + "\n".join(base))
    cold = result.get("cold_start")
    if cold:
        print("\nCold start: " + ", ".join(f"{k} {v}" for k, v in cold.items() if k in ("help", "ask")))
        print("  ask timings_ms: " + str(cold.get("ask_timings_ms")))
        print("  top imports (ask): " + ", ".join(f"{r['module']} {r['cumulative_ms']} ms"
                                                 for r in cold.get("importtime_ask", [])[:6]))
    print("\nTargets\n" + _row(["target", "value", "goal", "met", "note"]) + "\n" + _row(["---"] * 5))
    for t in result.get("targets", []):
        print(_row([t["target"], t["value"], t["goal"], "yes" if t["met"] else "NO", t["note"]]))


def _nq(result: dict) -> int:
    return next((s.get("queries", 0) for s in result.get("sizes", []) if "queries" in s), 0)


if __name__ == "__main__":  # re-print a saved run: python -m bench.report bench/results/<stamp>.json
    import json
    import sys

    print_tables(json.loads(open(sys.argv[1], encoding="utf-8").read()))
