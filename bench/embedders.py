"""Embedder comparison (issue 11): MiniLM (English, + zh->en glossary) vs multilingual embedders.

    python -m bench.embedders xling   [--papers 1000]    # a. zh TL;DR -> English paper, auto-built
    python -m bench.embedders sample                     # b. bundled eval (extractive), overall and lang=zh
    python -m bench.embedders scifact                    # c. BEIR SciFact nDCG@10 / recall@100 (slow)
    python -m bench.embedders speed   [--texts 500]      # d. texts/s on the same abstracts, load time, RSS
    python -m bench.embedders report                     # tables (markdown) from the saved JSON

Every part runs each configuration in its own fresh process (``python -m bench.embedders _one ...``) one
after another, so peak RSS and load times are per embedder; results go to bench/results/embedders-*.json
(one file per part, rewritten per configuration as it finishes) and ``report`` prints the tables.
Configurations: minilm-onnx with the glossary (today) and without, e5-small-int4 and use-m-int8 with
the glossary off ('auto' dense = every text passage; 'en' = English text passages only, where it matters).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
XLING_DIR = SHARED / "daily_arxiv_ai_enhanced" / "data"
SCIFACT = SHARED / "scifact"
RESULTS = REPO / "bench" / "results"

# name -> Settings overrides
CONFIGS: dict[str, dict] = {
    "minilm+glossary": {"embedder": "minilm-onnx", "glossary": True},
    "minilm": {"embedder": "minilm-onnx", "glossary": False},
    "e5": {"embedder": "e5-small-int4", "glossary": False},
    "e5/en": {"embedder": "e5-small-int4", "glossary": False, "dense": "en"},
    "e5+glossary": {"embedder": "e5-small-int4", "glossary": True},  # the glossary as a fallback on top
    "use-m": {"embedder": "use-m-int8", "glossary": False},
    "use-m/en": {"embedder": "use-m-int8", "glossary": False, "dense": "en"},
}
PARTS = {  # which configurations each part runs (dense 'en' only matters where there is Chinese text)
    "xling": ["minilm+glossary", "minilm", "e5", "use-m"],
    "sample": ["minilm+glossary", "minilm", "e5", "e5/en", "use-m", "use-m/en"],
    "scifact": ["minilm", "e5", "use-m"],  # English queries: the glossary never fires
    "speed": ["minilm", "e5", "use-m"],
}


def _settings(cfg: str, index_dir: str):
    from rag.config import Settings

    return Settings(index_dir=index_dir, **CONFIGS[cfg])


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _du_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


# ---------------------------------------------------------------- a. cross-lingual retrieval

_LATIN = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*(?:[-_.+/'’:][A-Za-z0-9]+)*")


def strip_latin(text: str) -> str:
    """The text without any token that has a Latin letter (names, acronyms, English words), so a
    query cannot match a paper lexically through them; punctuation left dangling is harmless."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", _LATIN.sub(" ", text)).strip()


def xling_items(n: int) -> list[dict]:
    """The first n papers (files in name order, then line order, first occurrence of an id) that have a
    Chinese TL;DR: id, title, abstract and the two query variants."""
    seen, out = set(), []
    for path in sorted(XLING_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            d = json.loads(line) if line.strip() else {}
            tldr = ((d.get("AI") or {}).get("tldr") or "").strip()
            pid = str(d.get("id") or "")
            if not pid or pid in seen or not tldr or not d.get("summary") or not d.get("title"):
                continue
            stripped = strip_latin(tldr)
            if sum("\u4e00" <= ch <= "\u9fff" for ch in stripped) < 8:
                continue  # (almost) nothing Chinese left
            seen.add(pid)
            out.append({"id": pid, "title": d["title"].strip(), "abstract": d["summary"].strip(),
                        "q_asis": tldr, "q_nolatin": stripped})
            if len(out) >= n:
                return out
    return out


def _rank_metrics(ranks: list[int | None]) -> dict:
    n = len(ranks)
    return {"n": n, "hit@1": round(sum(r == 1 for r in ranks) / n, 4),
            "hit@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
            "mrr": round(sum(1 / r for r in ranks if r) / n, 4)}


def run_xling(cfg: str, args) -> dict:
    from rag import api
    from rag.types import Filters, Paper

    items = xling_items(args.papers)
    papers = [Paper(paper_id=it["id"], arxiv_id=it["id"], title=it["title"], abstract=it["abstract"])
              for it in items]
    work = Path(args.work) / f"xling-{CONFIGS[cfg]['embedder']}"
    s = _settings(cfg, str(work))
    t0 = time.perf_counter()
    rep = api.ingest_papers(papers, s, name="xling") if not api.stats(s)["papers"] else None
    ingest_s = time.perf_counter() - t0
    out = {"config": cfg, "papers": len(items), "ingest_s": round(ingest_s, 1) if rep else None,
           "chunks": api.stats(s).get("chunks"), "results": {}}
    asked = items[:args.queries] if args.queries else items
    out["queries"] = len(asked)
    for variant in ("q_nolatin", "q_asis"):
        for mode in ("dense", "hybrid"):
            ranks, t1 = [], time.perf_counter()
            for it in asked:
                hits = api.retrieve(it[variant], s, Filters(top_k=args.depth), mode=mode)
                ranks.append(next((h.rank for h in hits if h.paper_id == it["id"]), None))
            m = _rank_metrics(ranks)
            m["ms_per_query"] = round(1000 * (time.perf_counter() - t1) / len(asked), 1)
            out["results"][f"{variant}/{mode}"] = m
            out.setdefault("ranks", {})[f"{variant}/{mode}"] = ranks  # per query, None = not in the top --depth
            print(cfg, variant, mode, m, file=sys.stderr, flush=True)
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


# ---------------------------------------------------------------- b. bundled eval

def _zh_metrics(per_question: list[dict]) -> dict:
    from eval import metrics as M

    return M.aggregate([r["metrics"] for r in per_question if r.get("lang") == "zh"])


def run_sample(cfg: str, args) -> dict:
    from eval.harness import run_eval
    from rag import api

    s = _settings(cfg, "/nonexistent").model_copy(update={"answerer": "extractive"})
    out_dir = Path(args.work) / f"sample-{cfg.replace('/', '-')}"
    rep = run_eval(None, s, out_dir, api.sample_paths(), None, temp_index=True)
    keys = ("hit@1", "hit@5", "mrr", "citation_recall", "citation_precision", "fact_recall", "language_match")
    pick = lambda m: {k: (round(m[k], 4) if isinstance(m.get(k), float) else m.get(k)) for k in keys}  # noqa: E731
    return {"config": cfg, "overall": pick(rep.metrics), "zh": pick(_zh_metrics(rep.per_question)),
            "n_zh": sum(r.get("lang") == "zh" for r in rep.per_question), "n": len(rep.per_question),
            "report": str(rep.report_json), "peak_rss_mb": _peak_rss_mb()}


# ---------------------------------------------------------------- c. SciFact

def scifact_subset(root: Path, n_docs: int, dest: Path) -> Path:
    """A smaller SciFact: every document judged for a test query plus the first other documents in corpus
    order up to ``n_docs``; same queries and qrels. Scores are not comparable to the full corpus's, only
    between embedders on the same subset."""
    from eval.beir import load_qrels

    judged = {d for rels in load_qrels(root / "qrels" / "test.tsv").values() for d in rels}
    lines = (root / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    keep, others = [], n_docs - len(judged)
    for line in lines:
        doc_id = str(json.loads(line)["_id"]) if line.strip() else None
        if doc_id in judged or (doc_id and others > 0):
            others -= doc_id not in judged
            keep.append(line)
    (dest / "qrels").mkdir(parents=True, exist_ok=True)
    (dest / "corpus.jsonl").write_text("\n".join(keep) + "\n", encoding="utf-8")
    (dest / "queries.jsonl").write_bytes((root / "queries.jsonl").read_bytes())
    (dest / "qrels" / "test.tsv").write_bytes((root / "qrels" / "test.tsv").read_bytes())
    return dest


def run_scifact(cfg: str, args) -> dict:
    from eval.beir import run_beir

    s = _settings(cfg, "/nonexistent")
    root = SCIFACT
    if args.scifact_docs:
        root = scifact_subset(SCIFACT, args.scifact_docs, Path(args.work) / f"scifact-{args.scifact_docs}")
    doc = run_beir(root, s, Path(args.work) / f"scifact-{cfg.replace('/', '-')}")
    return {"config": cfg, "ingest_s": doc["ingest_seconds"], "docs": doc["docs"], "queries": doc["queries"],
            "results": {m: {k: round(v, 4) for k, v in r.items()} for m, r in doc["results"].items()},
            "peak_rss_mb": _peak_rss_mb()}


# ---------------------------------------------------------------- d. throughput, load time, RSS

def speed_texts(n: int) -> list[str]:
    """The first n SciFact abstracts as "title\\nabstract" (real scientific prose, English)."""
    texts = []
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            texts.append(f"{d.get('title', '').strip()}\n{d.get('text', '').strip()}")
            if len(texts) >= n:
                break
    return texts


def run_speed(cfg: str, args) -> dict:
    rss0 = _peak_rss_mb()
    from rag.embed import get_embedder

    texts = speed_texts(args.texts)
    t0 = time.perf_counter()
    emb = get_embedder(_settings(cfg, "/nonexistent"))
    load_s = time.perf_counter() - t0
    rss_loaded = _peak_rss_mb()
    emb.embed(texts[:8])  # warm
    t1, c1 = time.perf_counter(), time.process_time()
    emb.embed(texts)
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    q = [emb.embed_query(t[:200]) for t in texts[:20]]  # short queries, one at a time
    tq = time.perf_counter()
    for t in texts[:50]:
        emb.embed_query(t.split("\n")[0])
    q_ms = 1000 * (time.perf_counter() - tq) / 50
    del q
    return {"config": cfg, "embedder": emb.name, "dim": emb.dim, "texts": len(texts), "load_s": round(load_s, 2),
            "texts_per_s": round(len(texts) / wall, 2), "cpu_s_per_text": round(cpu / len(texts), 4),
            "wall_s": round(wall, 1), "query_ms": round(q_ms, 1), "rss_before_mb": rss0,
            "rss_loaded_mb": rss_loaded, "peak_rss_mb": _peak_rss_mb()}


RUNNERS = {"xling": run_xling, "sample": run_sample, "scifact": run_scifact, "speed": run_speed}


# ---------------------------------------------------------------- driver

def _result_path(results: Path, part: str) -> Path:
    return results / f"embedders-{part}.json"


def _load(results: Path, part: str) -> dict:
    p = _result_path(results, part)
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def _save(results: Path, part: str, cfg: str, res: dict) -> None:
    results.mkdir(parents=True, exist_ok=True)
    doc = _load(results, part)
    doc[cfg] = res
    _result_path(results, part).write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")


def run_part(part: str, args) -> None:
    configs = args.configs.split(",") if args.configs else PARTS[part]
    rounds = args.rounds if part == "speed" else 1
    for r in range(rounds):
        for cfg in configs:
            cmd = [sys.executable, "-m", "bench.embedders", "_one", part, cfg, "--work", args.work,
                   "--papers", str(args.papers), "--texts", str(args.texts), "--depth", str(args.depth),
                   "--scifact-docs", str(args.scifact_docs), "--queries", str(args.queries)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                                  env={**os.environ, "ORT_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
            if proc.returncode != 0:
                print(f"{part} {cfg}: FAILED\n{proc.stderr[-3000:]}", file=sys.stderr)
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["process_s"] = round(time.perf_counter() - t0, 1)
            key = cfg if rounds == 1 else f"{cfg}#{r + 1}"
            _save(args.results, part, key, res)
            print(f"{part} {key}: {json.dumps(res, ensure_ascii=False)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.embedders", description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=[*RUNNERS, "all", "report", "_one"])
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--configs", help=f"comma-separated subset of {', '.join(CONFIGS)}")
    p.add_argument("--papers", type=int, default=1000, help="xling: papers (default 1000)")
    p.add_argument("--queries", type=int, default=0,
                   help="xling: ask only the first N papers' queries (0 = all; the index still holds --papers)")
    p.add_argument("--depth", type=int, default=100, help="xling: papers retrieved per query for MRR (default 100)")
    p.add_argument("--texts", type=int, default=500, help="speed: abstracts embedded (default 500)")
    p.add_argument("--scifact-docs", type=int, default=0,
                   help="scifact: a subset of N documents (all judged ones + the first others; 0 = all 5,183)")
    p.add_argument("--rounds", type=int, default=2, help="speed: alternating rounds (default 2)")
    p.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes (default bench/results)")
    p.add_argument("--work", default=None, help="scratch dir for indexes (default: a temp dir, removed)")
    args = p.parse_args(argv)
    if args.part == "_one":
        part, cfg = args.rest
        print(json.dumps(RUNNERS[part](cfg, args), ensure_ascii=False))
        return 0
    if args.part == "report":
        from .embedders_report import print_report

        print_report({part: _load(args.results, part) for part in RUNNERS})
        return 0
    tmp = None
    if not args.work:
        tmp = tempfile.TemporaryDirectory(prefix="digestqa-embedders-")
        args.work = tmp.name
    try:
        for part in (list(RUNNERS) if args.part == "all" else [args.part]):
            run_part(part, args)
    finally:
        if tmp:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
