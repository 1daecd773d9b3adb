"""Watch calibration: precision and recall of ``rag.watch`` on a labelled set; thresholds fitted on dev only.

The labelled sets (``eval/sets/watches-dev.jsonl``, ``watches-test.jsonl``) hold one watch phrase a line over the
``corpora`` collection (``../shared/corpora/arxiv_daily_report_table`` + ``daily_arxiv_ai_enhanced/data``):

    {"watch": "Gaussian splatting", "lang": "en", "corpus": "corpora",
     "positive": [arXiv IDs a reader judged to match], "judged": [every arXiv ID that was read]}

How they were made: for each phrase a pool of candidates was read (hybrid, BM25 and dense retrieval top 25/12/12,
plus the watch scorer's 15 best at score >= 0.3 with the initial weights), and each candidate was judged by
reading its title and abstract: does a reader watching this phrase want to see this paper (its main topic, not
a passing mention)? Papers outside the pool count as not matching, so a match outside the pool counts against
precision (reported as ``unjudged``).

Calibration picks (WEIGHT, THRESHOLD) maximising micro-F1 over the dev watches; the test split is scored once
with them. ``python -m eval.watches [--index DIR | --shared DIR] [--out FILE]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings

WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
THRESHOLDS = tuple(round(0.2 + 0.01 * i, 2) for i in range(71))


@dataclass(frozen=True)
class Labelled:
    watch: str
    lang: str
    positive: frozenset[str]
    judged: frozenset[str]


def load(split: str, path: str | Path | None = None) -> list[Labelled]:
    from .sets import set_path

    p = Path(path) if path else set_path(f"watches-{split}")
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(Labelled(d["watch"], d.get("lang", "en"), frozenset(d["positive"]), frozenset(d["judged"])))
        except (ValueError, KeyError) as e:
            raise ValueError(f"{p}:{n}: {e}; expected watch, positive, judged") from None
    return out


def features(sets: list[Labelled], settings: Settings) -> dict[str, list]:
    """{watch: [Scored]} over every indexed paper, keyed by arXiv ID (paper_id for arXiv papers)."""
    from rag import watch

    return watch.score_papers([watch.Watch(s.watch) for s in sets], settings)


def counts(sets: list[Labelled], feats: dict[str, list], weight: float, threshold: float) -> dict:
    tp = fp = fn = unjudged = 0
    per = {}
    for s in sets:
        got = {f.paper_id for f in feats[s.watch] if f.score(weight) >= threshold}
        a, b, c = len(got & s.positive), len(got - s.positive), len(s.positive - got)
        tp, fp, fn, unjudged = tp + a, fp + b, fn + c, unjudged + len(got - s.judged)
        per[s.watch] = _prf(a, b, c) | {"predicted": len(got), "positive": len(s.positive)}
    return _prf(tp, fp, fn) | {"unjudged": unjudged, "per_watch": per}


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(f, 3), "tp": tp, "fp": fp, "fn": fn}


def calibrate(dev: list[Labelled], feats: dict[str, list]) -> tuple[float, float, dict]:
    """(weight, threshold, dev counts) with the best dev micro-F1 (ties: the higher threshold, fewer alerts)."""
    best = None
    for w in WEIGHTS:
        for t in THRESHOLDS:
            c = counts(dev, feats, w, t)
            key = (c["f1"], t)
            if best is None or key > best[0]:
                best = (key, w, t, c)
    return best[1], best[2], best[3]


def _index(args, settings: Settings) -> tuple[Settings, tempfile.TemporaryDirectory | None]:
    from rag import api

    from .sets import corpus_paths, find_shared

    if args.index:
        return settings.model_copy(update={"index_dir": args.index}), None
    paths = corpus_paths("corpora", find_shared(args.shared))
    if paths is None:
        raise SystemExit("error: ../shared/corpora not found: pass --shared DIR or --index DIR (an index of them)")
    tmp = tempfile.TemporaryDirectory(prefix="digestqa-watches-")
    s = settings.model_copy(update={"index_dir": tmp.name})
    print(f"ingesting {', '.join(map(str, paths))} into a temporary index...", file=sys.stderr)
    api.ingest(paths, s)
    return s, tmp


def run(args) -> dict:
    s, tmp = _index(args, Settings.from_env())
    try:
        dev, test = load("dev"), load("test")
        feats = features(dev + test, s)
        w, t, dev_c = calibrate(dev, feats)
        test_c = counts(test, feats, w, t)
        from rag import watch

        current = {"weight": watch.WEIGHT, "threshold": watch.THRESHOLD,
                   "dev": counts(dev, feats, watch.WEIGHT, watch.THRESHOLD),
                   "test": counts(test, feats, watch.WEIGHT, watch.THRESHOLD)}
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {"calibrated": {"weight": w, "threshold": t, "dev": dev_c, "test": test_c}, "in_code": current,
            "watches": {"dev": len(dev), "test": len(test)},
            "positives": {"dev": sum(len(x.positive) for x in dev), "test": sum(len(x.positive) for x in test)}}


def render(rep: dict) -> str:
    lines = []
    for name in ("calibrated", "in_code"):
        r = rep[name]
        lines.append(f"{name}: weight {r['weight']}, threshold {r['threshold']}")
        for split in ("dev", "test"):
            c = r[split]
            lines.append(f"  {split:<4} precision {c['precision']:.3f}  recall {c['recall']:.3f}  F1 {c['f1']:.3f}  "
                         f"(tp {c['tp']}, fp {c['fp']} of which unjudged {c['unjudged']}, fn {c['fn']})")
    lines.append("per test watch (in code):")
    for wname, c in rep["in_code"]["test"]["per_watch"].items():
        lines.append(f"  {wname:<48} P {c['precision']:.2f} R {c['recall']:.2f} ({c['predicted']} flagged, "
                     f"{c['positive']} positive)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.watches", description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", help="an index holding the corpora collection (else ingested into a temp index)")
    ap.add_argument("--shared", help="shared data dir holding corpora/ (default: ../shared)")
    ap.add_argument("--out", help="write the report as JSON here")
    args = ap.parse_args(argv)
    rep = run(args)
    print(render(rep))
    if args.out:
        Path(args.out).write_text(json.dumps(rep, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
