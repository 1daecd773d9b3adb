"""Choose the offline answerer's thresholds on the dev sets (never on test).

``python -m eval.calibrate [--shared DIR] [--out FILE]`` ingests each dev set's corpus into a temporary index
(or uses ``--index-sample`` / ``--index-corpora``), retrieves every dev question once, then answers them with
each :class:`rag.qa.compose.Config` of a small grid and scores them with :mod:`eval.metrics`. The objective is
the mean of citation recall, citation precision, fact recall, abstention accuracy and language match, subject
to at most ``--max-false-abstention`` (default 2%) answerable questions abstained. It prints the grid's best
rows and the chosen values; copying them into ``Config`` is a deliberate, reviewed step.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path

from rag.config import Settings

from . import metrics as M
from .harness import build_catalogue
from .questions import load_questions
from .sets import bundled_sets, corpus_paths, find_shared

GRID = {
    "content_min": (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4),
    "list_min": (0.2, 0.3, 0.4, 0.5),
    "list_rel": (0.3, 0.4, 0.5, 0.6),
    "runner_rel": (0.7, 0.8, 0.9),
    "lang_bonus": (0.05, 0.15),
}
OBJECTIVE = ("citation_recall", "citation_precision", "fact_recall", "abstention_accuracy", "language_match")


@dataclass
class Case:
    question: dict
    hits: list
    helpers: dict
    asked: str
    catalogue: dict
    prepared: object = None  # rag.qa.compose.prepare(...): reused for every config


def _prepare(settings: Settings, questions, catalogue) -> list[Case]:
    """Retrieve every question once, as the answer stage does (list filters, helpers)."""
    from rag.answer import _list_filters, offline_helpers
    from rag.retrieve import retrieve_hits
    from rag.types import Filters

    cases = []
    for q in questions:
        f = _list_filters(q.question, "extractive", settings, Filters())
        hits = list(retrieve_hits(q.question, settings, f))
        cases.append(Case(q.to_json(), hits, offline_helpers(q.question, settings), q.question, catalogue))
    return cases


def _answer(case: Case, cfg) -> dict:
    from rag.cite import build_citations
    from rag.qa.compose import decide, prepare
    from rag.qa.render import render
    from rag.types import CANNOT_ANSWER

    if case.prepared is None:
        case.prepared = prepare(case.asked, case.hits, cfg=cfg, **case.helpers)
    text = "".join(render(decide(case.prepared, cfg))).strip()
    abstained = text.startswith(CANNOT_ANSWER)
    cites, _ = build_citations(text, case.hits)
    return {"answer": text, "abstained": abstained,
            "citations": [] if abstained else [{"paper_id": c.paper_id, "arxiv_id": c.arxiv_id, "title": c.title,
                                                "support": c.support} for c in cites],
            "sources": [{"rank": h.rank, "paper_id": h.paper_id, "arxiv_id": h.arxiv_id, "title": h.title}
                        for h in case.hits]}


def score(cases: list[Case], cfg) -> dict:
    per = [M.question_metrics(c.question, _answer(c, cfg), c.catalogue) for c in cases]
    agg = M.aggregate(per)
    agg["objective"] = sum(agg[k] or 0.0 for k in OBJECTIVE) / len(OBJECTIVE)
    return agg


def grid_configs(base):
    names = list(GRID)
    for values in itertools.product(*(GRID[n] for n in names)):
        yield replace(base, **dict(zip(names, values)))


def _cases_for(corpus: str, shared, index: str | None, tmp: str, dense: bool = False) -> list[Case]:
    from rag import api

    sets = [s for s in bundled_sets(corpora=(corpus,), splits=("dev",))]
    settings = Settings.from_env(index_dir=index or str(Path(tmp) / corpus), answerer="extractive",
                                 answer_dense=dense)
    if index is None:
        paths = corpus_paths(corpus, shared)
        if paths is None:
            print(f"{corpus}: corpus not found, skipped", file=sys.stderr)
            return []
        api.ingest(paths, settings)
    cat = build_catalogue(settings)
    return [c for s in sets for c in _prepare(settings, load_questions(s.path), cat)]


def main(argv: list[str] | None = None) -> int:
    from rag.qa.compose import Config

    p = argparse.ArgumentParser(prog="python -m eval.calibrate")
    p.add_argument("--shared", help="shared data dir holding corpora/ (default: ../shared)")
    p.add_argument("--index-sample", help="an index already holding the bundled sample")
    p.add_argument("--index-corpora", help="an index already holding the corpora sets' corpus")
    p.add_argument("--max-false-abstention", type=float, default=0.02)
    p.add_argument("--out", help="write every grid row as JSON Lines here")
    p.add_argument("--dense-mix", type=float, default=None,
                   help="rank sentences with sentence vectors too, with this weight (sets answer_dense)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="digestqa-calibrate-") as tmp:
        dense = args.dense_mix is not None
        cases = _cases_for("sample", None, args.index_sample, tmp, dense)
        cases += _cases_for("corpora", find_shared(args.shared), args.index_corpora, tmp, dense)
        base = replace(Config(), dense_mix=args.dense_mix) if dense else Config()
        rows = []
        for cfg in grid_configs(base):
            agg = score(cases, cfg)
            rows.append(({f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name in GRID}, agg))
    ok = [r for r in rows if (r[1]["false_abstention"] or 0.0) <= args.max_false_abstention] or rows
    ok.sort(key=lambda r: -r[1]["objective"])
    if args.out:
        Path(args.out).write_text("\n".join(json.dumps({"config": c, "metrics": m}) for c, m in rows) + "\n")
    print(f"{len(cases)} dev questions, {len(rows)} configs; best with false abstention <= "
          f"{args.max_false_abstention:.0%}:")
    for c, m in ok[:10]:
        print(json.dumps(c), " ".join(f"{k}={m[k]:.3f}" for k in (*OBJECTIVE, "false_abstention", "objective")
                                       if m.get(k) is not None))
    print("chosen:", json.dumps(ok[0][0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
