"""Run the bundled question sets (dev and test, sample and real corpora) and put them side by side.

Each corpus is ingested once into a fresh temporary index; every set over it is then answered from that
index by :func:`eval.harness.run_eval`, which writes its own report into ``out/<set name>/``.
``summary.md`` / ``summary.json`` hold the sets' headline metrics next to each other.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from rag.config import Settings

from .harness import EvalReport, Progress, _ingest, run_eval
from .report import fmt
from .sets import QuestionSet, bundled_sets, corpus_paths

SUMMARY_METRICS = ("hit@5", "citation_recall", "citation_precision", "fact_recall", "abstention_accuracy",
                   "false_abstention", "parts_answered", "language_match", "support", "latency_p50_ms",
                   "latency_p95_ms")


@dataclass
class SuiteReport:
    reports: dict[str, EvalReport] = field(default_factory=dict)  # set name -> its report
    skipped: dict[str, str] = field(default_factory=dict)  # set name -> why it was not run
    ingest: dict[str, dict | None] = field(default_factory=dict)  # corpus -> ingest summary
    out_dir: Path = Path(".")
    summary_md: Path | None = None


def run_suite(settings: Settings, out_dir: str | Path, sets: list[QuestionSet] | None = None,
              shared: Path | None = None, progress: Progress | None = None,
              limit: int | None = None) -> SuiteReport:
    """Answer and score every set in ``sets`` (default: all bundled sets); corpora not found are skipped."""
    sets = sets if sets is not None else bundled_sets()
    out = Path(out_dir)
    rep = SuiteReport(out_dir=out)
    for corpus in dict.fromkeys(s.corpus for s in sets):
        group = [s for s in sets if s.corpus == corpus]
        paths = corpus_paths(corpus, shared)
        if paths is None:
            rep.skipped.update({s.name: "its corpus is not on this machine (pass --shared DIR)" for s in group})
            continue
        with tempfile.TemporaryDirectory(prefix=f"digestqa-eval-{corpus}-") as tmp:
            s = settings.model_copy(update={"index_dir": tmp})
            rep.ingest[corpus] = _ingest(paths, s, progress)
            for qs in group:
                rep.reports[qs.name] = run_eval(qs.path, s, out / qs.name, progress=_quiet(progress, qs),
                                                limit=limit, sample_if_empty=False)
    rep.summary_md = write_summary(rep)
    return rep


def _quiet(progress: Progress | None, qs: QuestionSet) -> Progress | None:
    """Progress without question texts for held-out sets (a test question seen in a log is no longer unseen)."""
    if progress is None or qs.split != "test":
        return progress
    return lambda done, total, msg: progress(done, total, f"{qs.name} (held out)")


def summary_rows(rep: SuiteReport) -> list[str]:
    """Markdown table: one column per set, one row per headline metric."""
    names = list(rep.reports)
    head = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rows = [f"| questions | " + " | ".join(str(int(rep.reports[n].metrics.get("questions") or 0)) for n in names)
            + " |"]
    for m in SUMMARY_METRICS:
        rows.append(f"| {m} | " + " | ".join(fmt(rep.reports[n].metrics.get(m)) for n in names) + " |")
    return head + rows


def write_summary(rep: SuiteReport) -> Path:
    rep.out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# digestqa eval — dev and test sets", "", *summary_rows(rep), ""]
    lines += [f"- {name}: skipped, {why}" for name, why in rep.skipped.items()]
    path = rep.out_dir / "summary.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = {"sets": {n: {"metrics": r.metrics, "per_kind": r.per_kind, "report": str(r.report_json)}
                    for n, r in rep.reports.items()}, "skipped": rep.skipped, "ingest": rep.ingest}
    (rep.out_dir / "summary.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
    return path
