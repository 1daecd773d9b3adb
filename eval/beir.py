"""BEIR mode: index a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv) in a temporary
index and report nDCG@10 and recall@100 for dense, BM25 and hybrid retrieval side by side."""
from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Callable

from rag.config import Settings
from rag.types import Filters, Paper

MODES = ("dense", "bm25", "hybrid")
TOP_K = 100
Progress = Callable[[int, int, str], None]


def load_corpus(root: Path) -> list[Paper]:
    out = []
    with (root / "corpus.jsonl").open(encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                out.append(Paper(paper_id=str(d["_id"]), title=(d.get("title") or "").strip(),
                                 abstract=(d.get("text") or "").strip() or None, title_derived=False))
            except (json.JSONDecodeError, KeyError) as e:
                raise ValueError(f"{root / 'corpus.jsonl'}:{no}: bad BEIR corpus line ({e})") from e
    return out


def load_queries(root: Path) -> dict[str, str]:
    out = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out[str(d["_id"])] = d["text"]
    return out


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {doc id: relevance}; header line and CR line endings tolerated."""
    qrels: dict[str, dict[str, int]] = {}
    for no, raw in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        parts = raw.strip("\r\n ").split("\t")
        if len(parts) < 3 or not parts[2].strip().lstrip("-").isdigit():
            continue  # header or blank
        qrels.setdefault(parts[0].strip(), {})[parts[1].strip()] = int(parts[2])
    return qrels


def ndcg_at(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rels: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def _score_mode(mode: str, queries: dict[str, str], qrels: dict, s: Settings, progress: Progress | None) -> dict:
    from rag import api

    nd, rc, sizes, t0 = [], [], [], time.perf_counter()
    for i, (qid, rels) in enumerate(sorted(qrels.items())):
        hits = api.retrieve(queries[qid], s, Filters(top_k=TOP_K), mode=mode)
        ranked = [h.paper_id for h in hits]
        nd.append(ndcg_at(ranked, rels, 10))
        rc.append(recall_at(ranked, rels, TOP_K))
        sizes.append(len(ranked))
        if progress and i % 50 == 0:
            progress(i, len(qrels), f"{mode}: {i}/{len(qrels)} queries")
    secs = time.perf_counter() - t0
    return {"ndcg@10": sum(nd) / len(nd), "recall@100": sum(rc) / len(rc),
            "mean_hits": sum(sizes) / len(sizes), "min_hits": min(sizes), "ms_per_query": 1000 * secs / len(nd)}


def run_beir(root: str | Path, settings: Settings | None = None, out_dir: str | Path | None = None,
             progress: Progress | None = None, split: str = "test", name: str | None = None) -> dict:
    """Index the corpus in a temp index, evaluate every mode, write beir.json and beir.md into out_dir."""
    from rag import api

    root = Path(root)
    queries, qrels = load_queries(root), load_qrels(root / "qrels" / f"{split}.tsv")
    missing = sorted(q for q in qrels if q not in queries)
    if missing:
        raise ValueError(f"{root}/qrels/{split}.tsv: {len(missing)} query ids not in queries.jsonl (e.g. {missing[0]})")
    docs = load_corpus(root)
    base = settings if settings is not None else Settings.from_env()
    name = name or f"beir:{root.name}"
    with tempfile.TemporaryDirectory(prefix="digestqa-beir-") as tmp:
        s = base.model_copy(update={"index_dir": tmp})
        t0 = time.perf_counter()
        rep = api.ingest_papers(docs, s, name=name, progress=progress)
        ingest_s = time.perf_counter() - t0
        results = {m: _score_mode(m, queries, qrels, s, progress) for m in MODES}
    doc = {"dataset": name, "split": split, "docs": len(docs), "queries": len(qrels), "embedder": s.embedder,
           "candidates": s.candidates, "top_k": TOP_K, "ingest_seconds": round(ingest_s, 1),
           "ingest_failures": [str(f) for f in rep.failures][:20], "results": results}
    if out_dir:
        write_beir(Path(out_dir), doc)
    return doc


def render_beir_md(doc: dict) -> str:
    lines = [f"# BEIR {doc['dataset']} ({doc['split']}): {doc['docs']} docs, {doc['queries']} queries", "",
             f"embedder {doc['embedder']}, candidates {doc['candidates']}, top_k {doc['top_k']}, "
             f"ingest {doc['ingest_seconds']} s", "",
             "| mode | nDCG@10 | recall@100 | mean hits | ms/query |", "|---|---|---|---|---|"]
    for m, r in doc["results"].items():
        lines.append(f"| {m} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['mean_hits']:.1f} | {r['ms_per_query']:.1f} |")
    return "\n".join(lines) + "\n"


def write_beir(out_dir: Path, doc: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "beir.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (out_dir / "beir.md").write_text(render_beir_md(doc), encoding="utf-8")
