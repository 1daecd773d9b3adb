"""digestqa benchmarks: `python -m bench [--sizes 1000,5000,20000] ...` or `digestqa bench -- ...`.

Per size (first N unique papers of the scale corpus, written as jsonl.gz days into a temp dir), in a
fresh process: ingest (stage split, CPU, peak RSS), unchanged re-ingest, the raw embedder on the same
chunk texts, dense/BM25/hybrid retrieval and ask latency, and the llama-index baseline; at the largest
size the index is then grown to --grow chunks and latency re-measured. Cold start of the CLI last.
Prints a table and writes bench/results/<timestamp>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .corpus import ALL_FIELDS, DEFAULT_CORPUS, write_subset
from .report import print_tables, targets

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = "300,1000"  # ~15 min on 2 shared cores (the embedder dominates); see README Performance


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"papers per run, comma-separated (default {DEFAULT_SIZES})")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="dir of daily-arXiv *.jsonl.gz days")
    p.add_argument("--fields", default="all", help="text fields to keep: 'all' or e.g. abstract,tldr_zh "
                                                   "(fewer fields = fewer chunks to embed)")
    p.add_argument("--queries", type=int, default=50, help="queries per latency run (default 50)")
    p.add_argument("--raw-max", type=int, default=3000,
                   help="raw-embedder texts measured per size (a seeded sample of the chunk texts; default 3000)")
    p.add_argument("--grow", type=int, default=100_000,
                   help="grow the largest index to this many chunks and re-measure latency (0 = off)")
    p.add_argument("--incremental", action="store_true",
                   help="one index grown through the sizes (each size adds the next papers, as a user adds "
                        "days); per size: the increment's ingest, re-ingest, raw embedder, latency, baseline")
    p.add_argument("--day", type=int, default=170,
                   help="with --incremental: then add the next N papers (one day of the scale corpus is "
                        "~170) and split that ingest into embedder time and the rest (0 = off)")
    p.add_argument("--no-baseline", action="store_true", help="skip the llama-index VectorStoreIndex baseline")
    p.add_argument("--no-cold", action="store_true", help="skip the CLI cold-start measurement")
    p.add_argument("--no-embed-full", action="store_true",
                   help="skip parse+merge+chunk+BM25 (no embedder) over the whole corpus (~2-4 min)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where the JSON goes")
    p.add_argument("--work", type=Path, default=None, help="scratch dir (default: a temp dir, removed)")
    return p


def _fields(arg: str) -> tuple[str, ...]:
    if arg == "all":
        return ALL_FIELDS
    fields = tuple(f.strip() for f in arg.split(",") if f.strip())
    bad = [f for f in fields if f not in ALL_FIELDS]
    if bad or not fields:
        raise SystemExit(f"--fields: unknown {bad}; choose from {', '.join(ALL_FIELDS)} or 'all'")
    return fields


def run_size(size: int, args, work: Path, embedder: str, grow: int) -> dict:
    """Subset + one worker process for this size."""
    d = work / f"n{size}"
    subset = write_subset(args.corpus, size, d / "data", _fields(args.fields))
    spec = {"size": size, "subset": subset, "data": str(d / "data"), "work": str(d), "queries": args.queries,
            "raw_max": args.raw_max, "baseline": not args.no_baseline, "grow": grow, "embedder": embedder}
    return _worker(spec, d / "result.json")


def run_incremental(sizes: list[int], args, work: Path, embedder: str) -> list[dict]:
    """One index grown through the sizes, a fresh worker process per size (bench.worker.run_step);
    the day and growth steps run after the largest size."""
    out = []
    for i, size in enumerate(sizes):
        last = i == len(sizes) - 1
        spec = {"incremental": True, "size": size, "corpus": str(args.corpus), "fields": list(_fields(args.fields)),
                "work": str(work / "incremental"), "queries": args.queries, "raw_max": args.raw_max,
                "baseline": not args.no_baseline, "baseline_ids": str(work / "incremental" / "baseline-ids.json"),
                "grow": args.grow if last else 0, "embedder": embedder, "day": args.day if last else 0}
        res = _worker(spec, work / f"incremental-{size}.json")
        out.append(res)
        if "error" in res:
            break
        print(f"bench: {size} papers done ({res['ingest']['seconds']} s ingest)", file=sys.stderr, flush=True)
    return out


def _worker(spec: dict, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ORT_DISABLE_TELEMETRY": "1", "ANONYMIZED_TELEMETRY": "False"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(spec), str(out)], env=env, cwd=REPO)
    if proc.returncode != 0 or not out.exists():
        return {"size": spec.get("size"), "error": f"worker exited with {proc.returncode}"}
    res = json.loads(out.read_text())
    res["worker_s"] = round(time.perf_counter() - t0, 1)
    return res


def _no_embed(corpus: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "bench.noembed", str(corpus)], env=env, cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in load] if load else None}


def main(argv: list[str] | None = None, settings=None) -> int:
    args = build_parser().parse_args([a for a in (argv or []) if a != "--"] if argv is not None else None)
    sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    embedder = settings.embedder if settings is not None else os.environ.get("DIGESTQA_EMBEDDER", "minilm-onnx")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result: dict = {"started": stamp, "machine": _machine(), "args": {**vars(args), "sizes": sizes},
                    "embedder": embedder, "sizes": []}
    tmp = tempfile.TemporaryDirectory(prefix="dq-bench-") if args.work is None else None
    work = Path(tmp.name) if tmp else args.work
    try:
        if args.incremental:
            print(f"bench: one index grown through {sizes} papers ...", file=sys.stderr, flush=True)
            result["sizes"] = run_incremental(sizes, args, work, embedder)
        for size in sizes if not args.incremental else ():
            print(f"bench: {size} papers ...", file=sys.stderr, flush=True)
            result["sizes"].append(run_size(size, args, work, embedder, args.grow if size == sizes[-1] else 0))
        if not args.no_embed_full:
            print("bench: parse+merge+chunk+BM25 over the whole corpus ...", file=sys.stderr, flush=True)
            result["no_embed_full"] = _no_embed(args.corpus)
        if not args.no_cold:
            from .coldstart import run as cold

            print("bench: CLI cold start ...", file=sys.stderr, flush=True)
            result["cold_start"] = cold(work)
    finally:
        if tmp:
            tmp.cleanup()
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = targets(result)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    print_tables(result)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
