"""Chroma server mode against the embedded store, on the same papers, in one run (issue 14 item 3).

    python -m bench.server                      # 19,900 papers + a day of 170, 50 queries; 2 builds, 4 latency rounds
    python -m bench.server --papers 5000 --rounds 1 --work /tmp/srv --keep

Starts ``chroma run --host 127.0.0.1 --port <free> --path <work>/chroma-server`` itself (the ``chroma``
script next to this Python) and stops it at the end. Two index dirs, one per mode, ingest the same data
dir (the first N papers of the scale corpus, ``bench.corpus.write_subset``), each step in a fresh process,
embedded then server back to back:

1. first ingest of N papers (papers/s, chunks/s, the stage split of ``IngestReport.timings``);
2. a day added (the next ``--day`` papers): seconds besides the embedder, stage split;
3. ``--rounds`` rounds, alternating embedded / server: dense and hybrid ``rag.api.retrieve`` and ``ask``
   (extractive) p50/p95 over the same ``--queries`` queries (``bench.corpus.make_queries``), each query's
   top-k paper ids and answer recorded; the server's answers are compared with the embedded ones.

Embedder: a stand-in, so a 20k ingest takes minutes and the numbers are the store's: Chroma upserts of
real-sized vectors, HNSW queries, catalogue, BM25. ``--vectors hashed`` (default, :class:`HashedWords`):
384-dim sums of a random vector per word, with neighbourhoods like a real embedder's; ``random``:
``bench.dayadd.StandIn``'s seeded random unit vectors, which have none (HNSW then finds a quarter of the
exact neighbours and two indexes never agree, so the answers cannot be compared). The server's CPU seconds (``/proc/<pid>/stat``) are
counted per step besides the client's. Prints a table with server / embedded ratios; everything goes to
``bench/results/server-<stamp>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

HOST = "127.0.0.1"
MODES = ("embedded", "server")


# ---------------------------------------------------------------- the chroma server

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class ChromaServer:
    """``chroma run`` on a free loopback port, persisting into ``path``; its CPU seconds and peak RSS."""

    def __init__(self, path: Path, log: Path):
        exe = Path(sys.executable).parent / "chroma"
        if not exe.exists():
            raise SystemExit(f"the `chroma` script is missing next to {sys.executable}; pip install chromadb")
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = log
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "CHROMA_TELEMETRY": "False"}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([str(exe), "run", "--path", str(path), "--host", HOST, "--port",
                                          str(self.port)], stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 90
        while not heartbeat(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"chroma server did not start on {self.url}: {log.read_text()[-2000:]}")
            time.sleep(0.3)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process (and its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)


# ---------------------------------------------------------------- stand-in embedders

class HashedWords:
    """Stand-in embedder with neighbourhoods: the normalised sum of one fixed random vector per word
    (hashed into 2^14 rows; a CJK character counts as a word), so texts that share words are close, as
    with a real embedder. (``bench.dayadd.StandIn``'s random unit vectors have no neighbours at all:
    over 33,684 of them HNSW finds ~25% of the exact top 10, and two separately built indexes agree on no
    query, which says nothing about the store.) ~20 us a text."""
    name, dim = "hashed-words", 384
    _WORD = None

    def __init__(self):
        import re

        import numpy as np

        self.table = np.random.default_rng(0).standard_normal((1 << 14, self.dim)).astype(np.float32)
        self.words = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]")

    def embed(self, texts):
        import zlib

        import numpy as np

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            rows = [zlib.crc32(w.encode("utf-8")) & 0x3FFF for w in self.words.findall(t.lower())] or [0]
            v = self.table[rows].sum(axis=0)
            out[i] = v / (np.linalg.norm(v) or 1.0)
        return out

    def embed_query(self, text):
        return self.embed([text])[0]


def stand_in(kind: str):
    from .dayadd import StandIn

    return HashedWords() if kind == "hashed" else StandIn()


# ---------------------------------------------------------------- steps (each in its own process)

def _settings(index: str, chroma_url: str | None, vectors: str = "hashed"):
    from rag import embed
    from rag.config import Settings

    embedder = stand_in(vectors)
    embed.get_embedder = lambda settings: embedder
    return Settings(index_dir=index, answerer="extractive", chroma_url=chroma_url)


def step_ingest(a: dict) -> dict:
    """First ingest or a day added (``bench.dayadd._ingest`` with a stand-in embedder)."""
    from .dayadd import _ingest

    out = _ingest(Path(a["index"]), Path(a["data"]), a["n"], warm=a.get("warm", False), chroma_url=a["url"],
                  embedder=stand_in(a.get("vectors", "hashed")), corpus=Path(a["corpus"]))
    out["papers_per_s"] = round(out["papers_new"] / out["seconds"], 2)
    out["chunks_per_s"] = round(out["chunks_added"] / out["seconds"], 1)
    return out


def _pct(values: list[float], q: float) -> float:
    from .worker import pct

    return round(pct(values, q), 2)


def step_latency(a: dict) -> dict:
    """Dense and hybrid retrieve and ``ask`` over the queries: ms per query and what came back."""
    from rag import api

    s = _settings(a["index"], a["url"], a.get("vectors", "hashed"))
    qfile = Path(a["queries"])
    if not qfile.exists():
        from .corpus import make_queries

        qfile.write_text(json.dumps(make_queries(api.papers(s), a["n_queries"]), ensure_ascii=False))
    qs = json.loads(qfile.read_text())
    queries = [q["q"] for q in qs]
    out: dict = {}
    for mode in ("dense", "hybrid"):
        api.retrieve(queries[0], s, mode=mode)  # warm: open the store, HNSW segment, BM25 files
        ms, top = [], []
        for q in queries:
            t0 = time.perf_counter()
            hits = api.retrieve(q, s, mode=mode)
            ms.append((time.perf_counter() - t0) * 1000)
            top.append([[h.paper_id, [p.chunk_id for p in h.passages]] for h in hits])
        found = sum(any(p == q["paper_id"] for p, _ in t) for q, t in zip(qs, top)) / len(qs)
        out[mode] = {"p50_ms": _pct(ms, 50), "p95_ms": _pct(ms, 95), "ms": [round(x, 2) for x in ms], "top": top,
                     "source_in_top_k": round(found, 3)}
    api.ask(queries[0], s)
    ms, answers = [], []
    for q in queries:
        t0 = time.perf_counter()
        ans = api.ask(q, s)
        ms.append((time.perf_counter() - t0) * 1000)
        answers.append([ans.text, [c.paper_id for c in ans.citations]])
    out["ask"] = {"p50_ms": _pct(ms, 50), "p95_ms": _pct(ms, 95), "ms": [round(x, 2) for x in ms], "answers": answers}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


STEPS = {"ingest": step_ingest, "latency": step_latency}


def run_step(kind: str, args: dict, server: ChromaServer | None) -> dict:
    """One step in a fresh ``python -m bench.server _step`` process; wall, CPU (client, server), load."""
    cpu0 = _children_cpu()
    srv0 = server.cpu_s() if server else 0.0
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "bench.server", "_step", kind, json.dumps(args)],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if res.returncode != 0:
        raise SystemExit(f"step {kind} {args.get('url') or 'embedded'} failed:\n{res.stderr[-4000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = round(time.perf_counter() - t0, 2)
    out["client_cpu_s"] = round(_children_cpu() - cpu0, 2)
    out["server_cpu_s"] = round(server.cpu_s() - srv0, 2) if server else 0.0
    out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------- comparison and report

def compare(emb: dict, srv: dict) -> dict:
    """How many queries got the same top-k (paper ids in order; and their passages) and the same answer."""
    out = {}
    for mode in ("dense", "hybrid"):
        a, b = emb[mode]["top"], srv[mode]["top"]
        out[mode] = {"queries": len(a),
                     "same_papers": sum([p for p, _ in x] == [p for p, _ in y] for x, y in zip(a, b)),
                     "same_passages": sum(x == y for x, y in zip(a, b))}
    a, b = emb["ask"]["answers"], srv["ask"]["answers"]
    out["ask"] = {"queries": len(a), "same_text": sum(x[0] == y[0] for x, y in zip(a, b)),
                  "same_citations": sum(x[1] == y[1] for x, y in zip(a, b))}
    return out


def _ratio(a: float, b: float) -> str:
    return f"{b / a:.2f}x" if a else "-"


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def report(res: dict) -> str:
    e, s = res["build"]["embedded"], res["build"]["server"]
    lines = [f"Chroma server vs embedded: {e['papers_new']:,} papers, {e['chunks_added']:,} chunks "
             f"(stand-in embedder: {res.get('vectors', 'hashed')} vectors); load average {res['loadavg_start']} at start, {res['loadavg_end']} at end", "",
             "| step | embedded | server | server / embedded |", "|---|---|---|---|"]

    def row(name, a, b, fmt="{:.2f}"):
        lines.append(f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {_ratio(a, b)} |")

    for i, b in enumerate(res.get("builds", [])):
        row(f"first ingest, s (round {i + 1})", b["embedded"]["seconds"], b["server"]["seconds"], "{:.1f}")
    lines.append("| (below: each mode's median build round; of two, the faster) | | | |")
    row("first ingest, s", e["seconds"], s["seconds"], "{:.1f}")
    row("first ingest, papers/s", e["papers_per_s"], s["papers_per_s"], "{:.1f}")
    row("first ingest, chunks/s", e["chunks_per_s"], s["chunks_per_s"], "{:.0f}")
    for k in ("store", "embed", "bm25", "chunk", "merge", "parse"):
        if k in e["timings"] or k in s["timings"]:
            row(f"first ingest: {k} s", e["timings"].get(k, 0.0), s["timings"].get(k, 0.0), "{:.1f}")
    row("first ingest, CPU s client + server", e["client_cpu_s"], s["client_cpu_s"] + s["server_cpu_s"], "{:.0f}")
    de, ds = res["day"]["embedded"], res["day"]["server"]
    row(f"a day added (+{res['day_papers']} papers: {de['papers_new']} new, {de['papers_updated']} updated), "
        "s besides the embedder", de["overhead_s"], ds["overhead_s"])
    row("a day added: store s", de["timings"].get("store", 0.0), ds["timings"].get("store", 0.0))
    rounds = res["latency"]
    for mode in ("dense", "hybrid", "ask"):
        for q in ("p50_ms", "p95_ms"):
            a = _median([r["embedded"][mode][q] for r in rounds])
            b = _median([r["server"][mode][q] for r in rounds])
            row(f"{'`ask`' if mode == 'ask' else mode} {q[:3]} ms (median of {len(rounds)} rounds)", a, b, "{:.1f}")
    lines.append("")
    lines.append(f"server peak RSS {res['server_peak_rss_mb']:.0f} MB; per round (embedded / server p95 ms): " + "; ".join(
        " ".join(f"{m} {r['embedded'][m]['p95_ms']:.1f}/{r['server'][m]['p95_ms']:.1f}" for m in ("dense", "hybrid", "ask"))
        for r in rounds))
    lines.append("query's own paper in the top k (embedded / server, each round): " + "; ".join(
        " ".join(f"{m} {r['embedded'][m]['source_in_top_k']:.2f}/{r['server'][m]['source_in_top_k']:.2f}"
                 for m in ("dense", "hybrid")) for r in rounds))
    same = res["same_answers"]
    lines.append(f"same answers (each round): " + "; ".join(
        f"dense top-k {c['dense']['same_papers']}/{c['dense']['queries']} (passages {c['dense']['same_passages']}), "
        f"hybrid {c['hybrid']['same_papers']}/{c['hybrid']['queries']} (passages {c['hybrid']['same_passages']}), "
        f"ask text {c['ask']['same_text']}/{c['ask']['queries']}, citations {c['ask']['same_citations']}"
        for c in same))
    for m, c in res.get("same_mode_twice", {}).items():
        lines.append(f"{m} vs {m} in the next round (another process, same index): dense top-k "
                     f"{c['dense']['same_papers']}/{c['dense']['queries']} (passages {c['dense']['same_passages']}), "
                     f"hybrid {c['hybrid']['same_papers']}/{c['hybrid']['queries']}, ask text "
                     f"{c['ask']['same_text']}/{c['ask']['queries']}")
    return "\n".join(lines)


def _strip(r: dict) -> dict:
    """A latency result without the per-query payload (kept in the comparison instead)."""
    return {m: ({k: v for k, v in r[m].items() if k not in ("top", "answers")} if isinstance(r[m], dict) else r[m])
            for m in r}


# ---------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    if argv[:1] == ["_step"]:
        print(json.dumps(STEPS[argv[1]](json.loads(argv[2])), ensure_ascii=False))
        return 0
    ap = argparse.ArgumentParser(prog="python -m bench.server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", type=int, default=19900, help="first ingest: the first N papers of the corpus "
                    "(the scale corpus has 20,076: 19,900 leaves room for a day of 170)")
    ap.add_argument("--day", type=int, default=170, help="papers in the day added afterwards (0: none)")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=4, help="latency rounds (embedded, server alternating)")
    ap.add_argument("--builds", type=int, default=2, help="first-ingest rounds, each from scratch (order alternating)")
    ap.add_argument("--work", help="work dir (default: a temp dir, removed unless --keep)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", help="results dir (default bench/results)")
    ap.add_argument("--corpus", help="daily-arXiv jsonl.gz days (default ../shared/corpora/scale)")
    ap.add_argument("--vectors", choices=("hashed", "random"), default="hashed",
                    help="stand-in embedder: hashed words (neighbourhoods like a real embedder's) or "
                         "bench.dayadd's random unit vectors")
    a = ap.parse_args(argv)
    from .corpus import ALL_FIELDS, DEFAULT_CORPUS, write_subset

    corpus = Path(a.corpus) if a.corpus else DEFAULT_CORPUS
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="dq-server-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    res: dict = {"papers": a.papers, "day_papers": a.day, "vectors": a.vectors, "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                 "started": time.strftime("%Y-%m-%d %H:%M:%S"), "build": {}, "day": {}, "latency": [],
                 "same_answers": []}
    server = ChromaServer(work / "chroma-server", work / "chroma-server.log")
    urls = {"embedded": None, "server": server.url}
    index = {m: str(work / f"index-{m}") for m in MODES}
    try:
        write_subset(corpus, a.papers, data, ALL_FIELDS)
        res["builds"] = []
        for r in range(a.builds):  # each round from scratch, the order alternating; the last one is kept
            if r:
                _drop(index, server)
            build = {}
            for m in (MODES if r % 2 == 0 else MODES[::-1]):
                build[m] = run_step("ingest", {"index": index[m], "data": str(data), "n": a.papers, "url": urls[m],
                                               "vectors": a.vectors, "corpus": str(corpus)}, server if m == "server" else None)
                _progress(f"first ingest {m} (round {r + 1})", build[m])
            res["builds"].append(build)
        res["build"] = {m: _median_build([b[m] for b in res["builds"]]) for m in MODES}
        if a.day:
            for m in MODES:
                res["day"][m] = run_step("ingest", {"index": index[m], "data": str(data), "n": a.papers + a.day,
                                                    "url": urls[m], "warm": True, "vectors": a.vectors,
                                                    "corpus": str(corpus)}, server if m == "server" else None)
                _progress(f"day {m}", res["day"][m])
        qfile = work / "queries.json"
        tops = []
        for r in range(a.rounds):
            rnd = {}
            for m in (MODES if r % 2 == 0 else MODES[::-1]):
                rnd[m] = run_step("latency", {"index": index[m], "url": urls[m], "queries": str(qfile),
                                              "n_queries": a.queries, "vectors": a.vectors}, server if m == "server" else None)
                _progress(f"latency round {r + 1} {m}", rnd[m])
            res["same_answers"].append(compare(rnd["embedded"], rnd["server"]))
            tops.append(rnd)
            res["latency"].append({m: _strip(rnd[m]) for m in MODES})
        res["server_peak_rss_mb"] = server.peak_rss_mb()
    finally:
        server.stop()
        res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if len(tops) >= 2:  # the same mode in two processes: how reproducible the approximate search is itself
        res["same_mode_twice"] = {m: compare(tops[0][m], tops[1][m]) for m in MODES}
    res["queries"] = json.loads((work / "queries.json").read_text()) if (work / "queries.json").exists() else []
    text = report(res)
    print(text)
    out = Path(a.out or Path(__file__).resolve().parent / "results") / f"server-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**res, "report": text}, ensure_ascii=False, indent=1))
    print(f"\nsaved {out}")
    if not a.keep and not a.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _drop(index: dict, server: ChromaServer) -> None:
    """Remove both modes' index dirs and the server-mode index's collection (before a new build round)."""
    import sqlite3

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    for cat in Path(index["server"]).glob("catalogue-*.sqlite"):
        with sqlite3.connect(cat) as db:
            row = db.execute("SELECT value FROM meta WHERE key='chroma_collection'").fetchone()
        if row:
            chromadb.HttpClient(host=HOST, port=server.port, settings=ChromaSettings(
                anonymized_telemetry=False)).delete_collection(row[0])
    for d in index.values():
        shutil.rmtree(d, ignore_errors=True)


def _median_build(runs: list[dict]) -> dict:
    """The build round with the median wall time (the first ingest's numbers in the table)."""
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def _progress(what: str, r: dict) -> None:
    keys = ("seconds", "overhead_s", "papers_per_s", "client_cpu_s", "server_cpu_s", "loadavg")
    brief = {k: r[k] for k in keys if k in r}
    for m in ("dense", "hybrid", "ask"):
        if m in r:
            brief[m] = (r[m]["p50_ms"], r[m]["p95_ms"])
    print(f"[{time.strftime('%H:%M:%S')}] {what}: {json.dumps(brief)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
