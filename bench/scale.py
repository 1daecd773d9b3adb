"""Issue 14: one growing index measured at 1k, 20k, 200k and 1M papers, every ratio from this run.

    python -m bench.scale                                   # --sizes 1000,20000,200000,1000000
    python -m bench.scale --sizes 1000,20000 --work /tmp/s  # quick check (~10 min)
    python -m bench.scale --sizes 1000,20000,200000,500000 --keep --resume RESULT.json  # go on growing
    python -m bench.scale --report RESULT.json              # re-print a saved run (+ 1M extrapolated)

Two indexes, both built by ``bench.dayadd build`` (stand-in embedder: seeded random unit vectors of
MiniLM's 384 dimensions, so the Chroma collection is MiniLM's and the real MiniLM can query it):
the first 1,000 papers of the scale corpus, and a base of the first ``--base`` papers (19,500) which
is measured, then grown in place to each larger size by ``bench.grow.grow_papers`` (its papers
replicated under new ids, with their records, chunks, link index rows and vectors + noise) and
measured again. At every size, each step in a fresh process:

1. day: the next ``--day`` real papers of the corpus (never in the index: each size gets its own day)
   are ingested with the stand-in embedder (``bench.dayadd``, warm: imports timed apart): seconds
   besides the embedder, stage split, peak RSS;
2. embed: the real MiniLM embedder on that day's passages (those Settings.embeds), load timed apart;
3. latency: ``rag.api.retrieve`` (hybrid) and ``rag.api.ask`` (extractive) p50/p95 over the same 50
   queries (``bench.corpus.make_queries`` over the 1k papers, which every index holds), real MiniLM
   query vectors (the document vectors are stand-ins: the dense hits are arbitrary, their cost is not);
4. cold start: ``python -m rag.cli --index DIR ask --json Q`` (the real CLI, real MiniLM), wall and
   peak RSS of the process, median of 3 questions (the OS page cache holds the index: just used);
5. disk: bytes of the index dir / papers.

Between sizes: the BM25 rebuild (what the segment merge does every <= 24 days) in its own process.
Before growing, the disk needed at the next size is projected from this size's bytes per paper, and the BM25
rebuild's memory from its peak RSS here (both linear); a size that would leave less than ``--min-free-gb``
of disk or need more than 60% of the available memory is replaced by the largest that fits (noted in the
JSON). When the largest size is under 1M, the table adds a 1M column extrapolated linearly from the two
largest sizes (marked EXTRAPOLATED; so are the targets).
Output: a table (each size's numbers and its ratio to 1k), ``bench/results/scale-<stamp>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


# ---------------------------------------------------------------- child processes

def _child(args: list[str]) -> dict:
    """Run ``python -m bench.scale <args>`` (or any argv if args[0] is '-'), return its last stdout JSON line
    plus wall seconds and the peak RSS of the process tree (wait4: max over it and its reaped children)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DIGESTQA_"))}
    env.update({"PYTHONPATH": str(REPO), "ORT_DISABLE_TELEMETRY": "1", "ANONYMIZED_TELEMETRY": "False",
                "DIGESTQA_ANSWERER": "extractive"})
    argv = args[1:] if args[0] == "-" else [sys.executable, "-m", "bench.scale", *args]
    wall, code, out, err, rss = _popen_wait4(argv, env)
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if code != 0 or not lines:
        return {"error": f"exit {code}: {err.strip()[-800:]}"}
    res = json.loads(lines[-1])
    res["process_s"] = round(wall, 3)
    res["tree_peak_rss_mb"] = round(rss, 1)
    return res


def _popen_wait4(argv: list[str], env: dict) -> tuple[float, int, str, str, float]:
    """(wall s, exit code, stdout, stderr, peak RSS MB of the process and its reaped children) of one
    process, reaped with wait4 (stderr goes through a temp file, so neither pipe can fill up)."""
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as errf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=errf, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        errf.seek(0)
        err = errf.read()
    return wall, code, out, err, usage.ru_maxrss / 1024


def _rss_mb() -> float:
    import resource

    return round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                     resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 1)


def _settings(index: str):
    from rag.config import Settings

    return Settings(index_dir=index, answerer="extractive")


def child_day(index: str, data: str, n_after: int) -> dict:
    """The day's ingest (stand-in embedder, warm), as bench.dayadd add --warm."""
    from .dayadd import _ingest

    out = _ingest(Path(index), Path(data), n_after, warm=True)
    out["peak_rss_mb"] = _rss_mb()
    return out


def child_embed(index: str, ids_file: str) -> dict:
    """The real MiniLM embedder on the passages of these papers (those Settings.embeds)."""
    import resource

    from rag.chunk import chunk_papers
    from rag.embed import get_embedder
    from rag.store import open_store

    s = _settings(index)
    store = open_store(s)
    papers = list(store.get_papers(json.loads(Path(ids_file).read_text())).values())
    store.close()
    texts = [c.embed_text for c in chunk_papers(papers, s) if s.embeds(c.field, c.lang)]
    t0 = time.perf_counter()
    emb = get_embedder(s)
    emb.embed(texts[:1])
    load = time.perf_counter() - t0
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    emb.embed(texts)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    return {"papers": len(papers), "passages": len(texts), "load_s": round(load, 3), "seconds": round(wall, 3),
            "cpu_s": round(cpu, 3), "peak_rss_mb": _rss_mb()}


def child_latency(index: str, queries_file: str) -> dict:
    """Warm hybrid retrieve and extractive ask p50/p95 over the queries (real MiniLM query vectors)."""
    from rag import api
    from rag.embed import get_embedder

    from .worker import _summary

    s = _settings(index)
    queries = json.loads(Path(queries_file).read_text())
    t0 = time.perf_counter()
    api.load(s)
    load = time.perf_counter() - t0
    api.retrieve(queries[0]["q"], s)
    api.ask(queries[0]["q"], s)
    emb = get_embedder(s)
    out: dict = {"load_s": round(load, 3), "queries": len(queries)}
    for name, fn in (("embed_query", lambda q: emb.embed_query(q)), ("hybrid", lambda q: api.retrieve(q, s)),
                     ("ask", lambda q: api.ask(q, s))):
        ms = []
        for q in queries:
            t = time.perf_counter()
            fn(q["q"])
            ms.append((time.perf_counter() - t) * 1000)
        out[name] = _summary(ms)
    out["peak_rss_mb"] = _rss_mb()
    return out


def child_grow(index: str, target: int) -> dict:
    from .grow import grow_papers

    out = grow_papers(_settings(index), target)
    out["peak_rss_mb"] = _rss_mb()
    return out


def child_rebuild(index: str) -> dict:
    """The BM25 rebuild from the catalogue's term ids (what the segment merge does)."""
    from rag.retrieve import forget_store, rebuild_bm25
    from rag.store import Store

    s = _settings(index)
    store = Store(s, readonly=False, writer=True)
    t0 = time.perf_counter()
    rebuild_bm25(store)
    wall = time.perf_counter() - t0
    store.close()
    forget_store(s)
    return {"seconds": round(wall, 3), "peak_rss_mb": _rss_mb()}


def child_queries(index: str, n: int, out: str) -> dict:
    from rag import api

    from .corpus import make_queries

    qs = make_queries(api.papers(_settings(index)), n)
    Path(out).write_text(json.dumps(qs, ensure_ascii=False))
    return {"queries": len(qs)}


def child_count(index: str) -> dict:
    from rag.store import open_store

    store = open_store(_settings(index))
    try:
        return {"papers": store.db.execute("SELECT COUNT(*) FROM papers").fetchone()[0]}
    finally:
        store.close()


# ---------------------------------------------------------------- measurements (parent)

def cold_start(index: Path, questions: list[str]) -> dict:
    """`python -m rag.cli --index DIR ask --json Q`, fresh process each: wall, peak RSS, its timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DIGESTQA_"))}
    env.update({"PYTHONPATH": str(REPO), "ORT_DISABLE_TELEMETRY": "1", "ANONYMIZED_TELEMETRY": "False",
                "DIGESTQA_ANSWERER": "extractive"})
    runs = []
    for q in questions:
        wall, code, out, err, rss = _popen_wait4([sys.executable, "-m", "rag.cli", "--index", str(index),
                                                  "ask", "--json", q], env)
        if code != 0:
            return {"error": f"exit {code}: {err.strip()[-500:]}"}
        timings = json.loads(out.strip().splitlines()[-1]).get("timings_ms", {})
        runs.append({"s": round(wall, 3), "rss_mb": round(rss, 1), "timings_ms": timings})
    return {"median_s": round(statistics.median(r["s"] for r in runs), 3),
            "max_rss_mb": max(r["rss_mb"] for r in runs),
            "median_load_ms": round(statistics.median(r["timings_ms"].get("load", 0) for r in runs), 1),
            "runs": runs}


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def index_parts(path: Path) -> dict:
    out: dict[str, int] = {}
    for p in path.iterdir():
        key = p.name.split("-")[0] if p.name.startswith(("catalogue", "bm25")) else p.name
        out[key] = out.get(key, 0) + (dir_bytes(p) if p.is_dir() else p.stat().st_size)
    return out


def first_ids(corpus: Path, n: int) -> list[str]:
    """The first n unique paper ids in day order (as bench.corpus.write_subset picks them)."""
    from .corpus import _records, day_files

    seen: dict[str, None] = {}
    for day in day_files(corpus):
        for _, obj in _records(day):
            seen.setdefault(str(obj.get("id", "")), None)
            if len(seen) >= n:
                return list(seen)
    return list(seen)


def measure(index: Path, data: Path, n_before: int, day: int, corpus: Path, queries: Path, work: Path) -> dict:
    """One size: the day (and its real embedder cost), latency, cold start, disk."""
    label = f"{n_before}"
    res: dict = {}
    print(f"scale: {label}: day ...", file=sys.stderr, flush=True)
    res["papers_before_day"] = child_count(str(index))["papers"]
    res["day"] = _child(["_day", str(index), str(data), str(n_before + day)])
    ids = first_ids(corpus, n_before + day)[n_before:]
    ids_file = work / f"day-{label}.json"
    ids_file.write_text(json.dumps(ids))
    print(f"scale: {label}: real embedder on the day ...", file=sys.stderr, flush=True)
    res["embed"] = _child(["_embed", str(index), str(ids_file)])
    print(f"scale: {label}: latency ...", file=sys.stderr, flush=True)
    res["latency"] = _child(["_latency", str(index), str(queries)])
    print(f"scale: {label}: cold start ...", file=sys.stderr, flush=True)
    qs = [q["q"] for q in json.loads(queries.read_text())]
    res["cold"] = cold_start(index, [qs[1], qs[2], qs[3]])
    res["papers"] = child_count(str(index))["papers"]
    res["disk_bytes"] = dir_bytes(index)
    res["disk_parts"] = index_parts(index)
    res["bytes_per_paper"] = round(res["disk_bytes"] / max(1, res["papers"]))
    return res


# ---------------------------------------------------------------- the run

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,20000,200000,1000000",
                   help="index sizes in papers; the smallest is built on its own, the others grow one index")
    p.add_argument("--base", type=int, default=19_500, help="real papers in the grown index's base (default 19500)")
    p.add_argument("--day", type=int, default=170, help="papers in a day (default 170)")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--corpus", type=Path, default=None, help="scale corpus dir (default ../shared/corpora/scale)")
    p.add_argument("--work", type=Path, default=Path("/tmp/dq-scale"),
                   help="scratch dir; indexes already built there (exactly the papers asked) are reused")
    p.add_argument("--min-free-gb", type=float, default=10.0, help="disk to leave free after growing")
    p.add_argument("--keep", action="store_true", help="keep the indexes (default: remove the grown one)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--resume", type=Path, default=None,
                   help="the JSON of a run stopped after some sizes (--keep): grow its index on to the other sizes")
    p.add_argument("--report", type=Path, default=None, help="re-print the table of a saved run's JSON")
    return p


def _build(index: Path, data: Path, n: int) -> dict:
    if index.exists() and "error" not in (c := _child(["_count", str(index)])) and c["papers"] == n:
        return {"reused": True, "papers": n}
    shutil.rmtree(index, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    return _child(["-", sys.executable, "-m", "bench.dayadd", "build", str(index), str(data), str(n)])


def fit_size(want: int, papers: int, bytes_per_paper: float, free: int, min_free: float) -> int:
    """The largest size <= want (a multiple of 100k, or want itself) whose growth leaves min_free bytes."""
    room = free - min_free
    fits = lambda n: (n - papers) * bytes_per_paper * 1.1 <= room  # noqa: E731 - 10% margin
    if fits(want):
        return want
    n = (papers + int(room / (bytes_per_paper * 1.1))) // 100_000 * 100_000
    return n if n > papers else 0


def fit_memory(want: int, papers: int, rebuild_rss_mb: float, available_mb: float, share: float = 0.6) -> int:
    """The largest size <= want (a multiple of 100k, or want itself) whose BM25 rebuild, projected linearly
    from ``rebuild_rss_mb`` at ``papers``, stays under ``share`` of the available memory."""
    per_paper = rebuild_rss_mb / max(1, papers)
    if want * per_paper <= share * available_mb:
        return want
    n = int(share * available_mb / per_paper) // 100_000 * 100_000
    return n if n > papers else 0


def _available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def run(args) -> dict:
    from .corpus import DEFAULT_CORPUS

    corpus = args.corpus or DEFAULT_CORPUS
    sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    queries = work / "queries.json"
    if args.resume:  # a run stopped after some sizes: go on growing its index (kept with --keep)
        result = json.loads(args.resume.read_text())
        result.setdefault("resumed", []).append({"at": time.strftime("%Y%m%d-%H%M%S"), "sizes": sizes,
                                                 "loadavg": [round(x, 2) for x in os.getloadavg()]})
        small = int(next(iter(result["sizes"])))
    else:
        result = {"started": time.strftime("%Y%m%d-%H%M%S"), "args": {**vars(args), "sizes": sizes},
                  "loadavg_start": [round(x, 2) for x in os.getloadavg()], "sizes": {}}
        small = sizes[0]
        print(f"scale: building {small} and the {args.base}-paper base ...", file=sys.stderr, flush=True)
        result["build"] = {"small": _build(work / "small", work / "small-data", small),
                           "base": _build(work / "big", work / "big-data", args.base) if len(sizes) > 1 else None}
        result["queries"] = _child(["_queries", str(work / "small"), str(args.queries), str(queries)])
        result["sizes"][str(small)] = measure(work / "small", work / "small-data", small, args.day, corpus,
                                              queries, work)
        result["sizes"][str(small)]["bm25_rebuild"] = _child(["_rebuild", str(work / "small")])
    big = [s for s in sizes if s > small]
    for i, size in enumerate(big):
        if str(size) in result["sizes"]:
            continue
        n_real = args.base + args.day * (len(result["sizes"]) - 1)  # the real papers in the grown index
        index = work / "big"
        if i:
            cur = result["sizes"][list(result["sizes"])[-1]]
            free = shutil.disk_usage(work).free
            have = _child(["_count", str(index)])["papers"]
            target = fit_size(size, have, cur["bytes_per_paper"], free, args.min_free_gb * 2**30)
            if target != size:
                result.setdefault("notes", []).append(
                    f"{size} papers: projected {size * cur['bytes_per_paper'] / 2**30:.1f} GB at "
                    f"{cur['bytes_per_paper']} B/paper, {free / 2**30:.1f} GB free: measured at {target} instead")
            rss = (cur.get("bm25_rebuild") or {}).get("tree_peak_rss_mb")
            by_mem = fit_memory(target, have, rss, _available_mb()) if rss else target
            if by_mem != target:
                result.setdefault("notes", []).append(
                    f"{target} papers: the BM25 rebuild (segment merge) would need ~{rss * target / have / 1024:.1f} GB "
                    f"({rss:.0f} MB at {have} papers, linear), {_available_mb() / 1024:.1f} GB available: "
                    f"measured at {by_mem} instead")
                target = by_mem
            if not target:
                break
            print(f"scale: growing to {target} papers ...", file=sys.stderr, flush=True)
            grow = _child(["_grow", str(index), str(target)])
            if "error" in grow:
                result.setdefault("notes", []).append(f"grow to {target}: {grow['error']}")
                break
            rebuild = _child(["_rebuild", str(index)])  # BM25 of the grown index (timed: the segment merge)
            size = target
        res = measure(index, work / "big-data", n_real, args.day, corpus, queries, work)
        if i:
            res["grow"], res["bm25_rebuild"] = grow, rebuild
        else:
            res["bm25_rebuild"] = _child(["_rebuild", str(index)])
        result["sizes"][str(size)] = res
        _save(result, args.out)  # partial results survive an interrupted run
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["table"] = table(result)
    result["targets"] = targets(result)
    if not args.keep:
        shutil.rmtree(work / "big", ignore_errors=True)
    return result


# ---------------------------------------------------------------- report

ROWS = (  # (label, path in a size's result)
    ("papers in the index (before the day)", ("papers_before_day",)),
    ("day: papers added", ("day", "papers_new")),
    ("day: passages embedded (real MiniLM)", ("embed", "passages")),
    ("day: s besides the embedder (warm)", ("day", "overhead_s")),
    ("day: merge s", ("day", "timings", "merge")),
    ("day: store s (catalogue + Chroma)", ("day", "timings", "store")),
    ("day: bm25 s", ("day", "timings", "bm25")),
    ("day: imports s (apart)", ("day", "warmup_s")),
    ("day: fresh process s (stand-in embedder)", ("day", "process_s")),
    ("day: peak RSS MB", ("day", "tree_peak_rss_mb")),
    ("day: real MiniLM s (model load apart)", ("embed", "seconds")),
    ("day: real MiniLM CPU s", ("embed", "cpu_s")),
    ("MiniLM load s", ("embed", "load_s")),
    ("hybrid p50 ms", ("latency", "hybrid", "p50_ms")),
    ("hybrid p95 ms", ("latency", "hybrid", "p95_ms")),
    ("ask p50 ms", ("latency", "ask", "p50_ms")),
    ("ask p95 ms", ("latency", "ask", "p95_ms")),
    ("query embed p50 ms (in hybrid)", ("latency", "embed_query", "p50_ms")),
    ("warm process RSS MB (after 100 asks)", ("latency", "tree_peak_rss_mb")),
    ("ask cold start s (median of 3)", ("cold", "median_s")),
    ("ask cold: load ms (median)", ("cold", "median_load_ms")),
    ("ask peak RSS MB (fresh process)", ("cold", "max_rss_mb")),
    ("BM25 rebuild s (segment merge)", ("bm25_rebuild", "seconds")),
    ("BM25 rebuild peak RSS MB", ("bm25_rebuild", "tree_peak_rss_mb")),
    ("disk bytes per paper", ("bytes_per_paper",)),
    ("disk GB", ("disk_bytes",)),
)


def _get(d, path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


EXTRAPOLATE_TO = 1_000_000
_SIZE_FREE = {"day: papers added", "day: passages embedded (real MiniLM)", "day: merge s", "day: imports s (apart)",
              "day: real MiniLM s (model load apart)", "day: real MiniLM CPU s", "MiniLM load s",
              "query embed p50 ms (in hybrid)"}


def _papers(result: dict, size: str) -> int:
    return _get(result["sizes"][size], ("papers_before_day",)) or int(size)


def extrapolate(result: dict, path: tuple, to: int = EXTRAPOLATE_TO) -> float | None:
    """The metric at ``to`` papers, linear through the two largest sizes measured (None if < 2 sizes or
    the largest already reaches ``to``)."""
    sizes = list(result["sizes"])[1:]
    if len(sizes) < 2 or _papers(result, sizes[-1]) >= to:
        return None
    (a, b), (x0, x1) = ([_get(result["sizes"][s], path) for s in sizes[-2:]],
                        [_papers(result, s) for s in sizes[-2:]])
    if not all(isinstance(v, (int, float)) for v in (a, b)) or x1 == x0:
        return None
    return round(b + (b - a) * (to - x1) / (x1 - x0), 3)


def table(result: dict) -> list[list[str]]:
    sizes = list(result["sizes"])
    extra = [f"{EXTRAPOLATE_TO} EXTRAPOLATED"] if extrapolate(result, ROWS[0][1]) is not None else []
    head = ["metric", *sizes, *extra, *(f"{s} / {sizes[0]}" for s in sizes[1:] + [x.split()[0] for x in extra])]
    rows = [head]
    for label, path in ROWS:
        vals = [_get(result["sizes"][s], path) for s in sizes]
        if extra:  # only what grows with the index (the day's own work and the model do not)
            v = extrapolate(result, path) if label not in _SIZE_FREE else None
            vals.append(int(v) if path == ("papers_before_day",) and v else v)
        if path == ("disk_bytes",):
            vals = [None if v is None else round(v / 2**30, 2) for v in vals]
        base = vals[0]
        ratios = [f"{v / base:.2f}x" if isinstance(v, (int, float)) and isinstance(base, (int, float)) and base
                  else "" for v in vals[1:]]
        rows.append([label, *("" if v is None else f"{v:,}" if isinstance(v, int) else f"{v}" for v in vals), *ratios])
    return rows


def targets(result: dict) -> dict:
    sizes = list(result["sizes"])
    get = lambda s, *p: _get(result["sizes"][s], p)  # noqa: E731
    small, largest = sizes[0], sizes[-1]
    twenty = next((s for s in sizes if 15_000 <= int(s) <= 25_000), None)
    out = {"largest_measured": int(largest)}
    d0, dn = get(small, "day", "overhead_s"), get(largest, "day", "overhead_s")
    if d0 and dn:
        out["day_besides_embedder_largest_vs_1k"] = {"ratio": round(dn / d0, 2), "target": "<= 2", "met": dn / d0 <= 2}
    if twenty and get(twenty, "day", "overhead_s") is not None:
        v = get(twenty, "day", "overhead_s")
        out["day_besides_embedder_20k_s"] = {"value": v, "target": "< 2", "met": v < 2}
    for key, path, limit in (("hybrid_p95_ms", ("latency", "hybrid", "p95_ms"), 100),
                             ("ask_cold_start_s", ("cold", "median_s"), 3),
                             ("ask_peak_rss_mb", ("cold", "max_rss_mb"), 3072)):
        v = get(largest, *path)
        if v is not None:
            out[key] = {"value": v, "target": f"<= {limit}", "met": v <= limit,
                        "at_papers": _papers(result, largest)}
            x = extrapolate(result, path)
            if x is not None:
                out[key].update({"extrapolated_1M": x, "met_extrapolated_1M": x <= limit})
    x = extrapolate(result, ("day", "overhead_s"))
    if x is not None and d0:
        out["day_besides_embedder_largest_vs_1k"].update({"extrapolated_1M_ratio": round(x / d0, 2),
                                                           "met_extrapolated_1M": x / d0 <= 2})
    return out


def print_table(result: dict) -> None:
    rows = result["table"]
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for r in rows[1:]:
        print("| " + " | ".join(r) + " |")
    print()
    for k, v in result["targets"].items():
        print(f"{k}: {v}")
    for n in result.get("notes", []):
        print(f"note: {n}")


def _save(result: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scale-{result['started']}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return path


_CHILDREN = {"_day": (child_day, (str, str, int)), "_embed": (child_embed, (str, str)),
             "_latency": (child_latency, (str, str)), "_grow": (child_grow, (str, int)),
             "_rebuild": (child_rebuild, (str,)), "_queries": (child_queries, (str, int, str)),
             "_count": (child_count, (str,))}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _CHILDREN:
        fn, types = _CHILDREN[argv[0]]
        print(json.dumps(fn(*(t(a) for t, a in zip(types, argv[1:]))), ensure_ascii=False), flush=True)
        return 0
    args = build_parser().parse_args(argv)
    if args.report:  # re-print a saved run (with this version's table and targets)
        result = json.loads(args.report.read_text())
        result["table"], result["targets"] = table(result), targets(result)
        print_table(result)
        return 0
    result = run(args)
    path = _save(result, args.out)
    print_table(result)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
