"""Run a question set through rag.api and score it (see :func:`run_eval`)."""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

from rag.config import Settings
from rag.types import Filters

from . import metrics as M
from .questions import Question, load_questions

Progress = Callable[[int, int, str], None]
RETRIEVAL_ONLY_TOP_K = 10


@dataclass
class EvalReport:
    """Result of one eval run; files live in ``out_dir``."""

    metrics: dict[str, float | None]
    per_kind: dict[str, dict[str, float | None]]
    per_question: list[dict[str, Any]]
    out_dir: Path
    report_json: Path
    report_md: Path
    plot: Path
    answers: Path
    info: dict[str, Any] = field(default_factory=dict)


def default_out_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def build_catalogue(settings: Settings) -> dict[str, dict[str, list[str]]]:
    """paper_id -> ids/titles it answers to (merged records included); {} if the index can't say."""
    from rag import api

    try:
        papers = api.papers(settings)
    except Exception:  # noqa: BLE001 - the catalogue only refines ref matching
        return {}
    cat: dict[str, dict[str, list[str]]] = {}
    for p in papers:
        titles = [p.title] + [v for k, v in p.extra if "title" in k.lower()]
        cat[p.paper_id] = {"ids": [x for x in (p.arxiv_id, *p.linked_ids) if x], "titles": titles}
    return cat


def _answer_one(q: Question, settings: Settings, retrieval_only: bool) -> dict[str, Any]:
    """The Answer.to_json() dict (or a sources-only stand-in in retrieval-only mode)."""
    from rag import api

    t0 = time.perf_counter()
    if retrieval_only:
        hits = api.retrieve(q.question, settings, Filters(top_k=RETRIEVAL_ONLY_TOP_K))
        ms = (time.perf_counter() - t0) * 1000
        return {"question": q.question, "answer": "", "abstained": False, "citations": [],
                "sources": [{"rank": h.rank, "paper_id": h.paper_id, "arxiv_id": h.arxiv_id,
                             "title": h.title, "score": round(h.score, 6), "fields": list(h.fields)}
                            for h in hits],
                "timings_ms": {"total": round(ms, 1)}}
    d = api.ask(q.question, settings).to_json()
    d.setdefault("timings_ms", {}).setdefault("total", round((time.perf_counter() - t0) * 1000, 1))
    return d


def _safe_answer(q: Question, settings: Settings, retrieval_only: bool) -> tuple[dict[str, Any], str | None]:
    try:
        return _answer_one(q, settings, retrieval_only), None
    except Exception as e:  # noqa: BLE001 - one failing question must not stop the run
        return {"question": q.question, "answer": "", "abstained": False, "citations": [], "sources": [],
                "timings_ms": {}}, f"{type(e).__name__}: {e}"


def _missing(q: Question, answer: dict[str, Any], cat: M.Catalogue) -> dict[str, list[str]]:
    cites = answer.get("citations") or []
    return {"missing_must": [r for r in q.must if not any(M.ref_matches(r, c, cat) for c in cites)],
            "missing_facts": [f for f, ok in zip(q.facts, M.fact_hits(list(q.facts), answer.get("answer", ""))) if not ok]}


def score_question(q: Question, answer: dict[str, Any], cat: M.Catalogue,
                   retrieval_only: bool = False, error: str | None = None) -> dict[str, Any]:
    """Per-question record for report.json."""
    m = M.question_metrics(q.to_json(), answer, cat)
    if retrieval_only:
        m = {k: (v if k in M.RETRIEVAL_METRICS or k == "latency_ms" else None) for k, v in m.items()}
        m["score"] = m.get("hit@5") or 0.0
    rec = {**q.to_json(), "metrics": m, "answer": answer.get("answer", ""),
           "abstained": M.is_abstention(answer), "detected_lang": M.detect_lang(answer.get("answer", "")),
           "cited": [c.get("paper_id") for c in answer.get("citations") or []],
           "sources": [s.get("paper_id") for s in answer.get("sources") or []], "error": error}
    rec.update(_missing(q, answer, cat))
    return rec


def summarise(per_question: list[dict[str, Any]]) -> tuple[dict, dict[str, dict]]:
    """Overall and per-kind aggregates."""
    overall = M.aggregate([r["metrics"] for r in per_question])
    kinds = sorted({r["kind"] for r in per_question})
    per_kind = {k: M.aggregate([r["metrics"] for r in per_question if r["kind"] == k]) for k in kinds}
    return overall, per_kind


def _prepare_settings(settings: Settings | None, temp_index: bool) -> tuple[Settings, tempfile.TemporaryDirectory | None]:
    s = settings if settings is not None else Settings.from_env()
    if not temp_index:
        return s, None
    tmp = tempfile.TemporaryDirectory(prefix="digestqa-eval-")
    return s.model_copy(update={"index_dir": tmp.name}), tmp


def _ingest(corpus: Iterable[str | Path] | None, settings: Settings, progress: Progress | None) -> dict | None:
    if not corpus:
        return None
    from rag import api

    rep = api.ingest(list(corpus), settings, progress)
    return {"files": rep.files, "papers_new": rep.papers_new, "chunks_added": rep.chunks_added,
            "failures": [str(f) for f in rep.failures], "seconds": round(rep.seconds, 2)}


def _sample_if_empty(settings: Settings) -> list[Path] | None:
    from rag import api

    try:
        empty = not api.stats(settings).get("papers")
    except Exception:  # noqa: BLE001 - an unopenable index is reported by the first question
        return None
    return api.sample_paths() if empty else None


def _run_questions(questions: list[Question], settings: Settings, cat: M.Catalogue, retrieval_only: bool,
                   progress: Progress | None) -> tuple[list[dict], list[dict]]:
    answers, records = [], []
    for i, q in enumerate(questions):
        if progress:
            progress(i, len(questions), f"{q.id}: {q.question[:60]}")
        ans, err = _safe_answer(q, settings, retrieval_only)
        answers.append({"id": q.id, **ans, **({"error": err} if err else {})})
        records.append(score_question(q, ans, cat, retrieval_only, err))
    if progress:
        progress(len(questions), len(questions), "scored")
    return answers, records


def run_eval(questions_path: str | Path | None = None, settings: Settings | None = None,
             out_dir: str | Path | None = None, corpus: Iterable[str | Path] | None = None,
             progress: Progress | None = None, *, temp_index: bool = False, limit: int | None = None,
             retrieval_only: bool = False, judge: bool = False, sample_if_empty: bool = True) -> EvalReport:
    """Answer every question, score it and write answers.jsonl, report.json, report.md, plot.png.

    ``settings`` None -> ``Settings.from_env()``. ``temp_index`` -> a fresh temporary index.
    ``corpus`` is ingested before answering; without it an EMPTY index gets the bundled sample
    (``sample_if_empty``), since the bundled questions are about it. A Settings passed as the first
    positional argument is accepted too.
    """
    from .report import write_reports

    if isinstance(questions_path, Settings):
        questions_path, settings = None, questions_path
    questions = load_questions(questions_path)[: limit or None]
    s, tmp = _prepare_settings(settings, temp_index)
    try:
        if corpus is None and (sample_if_empty or temp_index):
            corpus = _sample_if_empty(s)
        ingest_info = _ingest(corpus, s, progress)
        cat = build_catalogue(s)
        answers, records = _run_questions(questions, s, cat, retrieval_only, progress)
        info = _run_info(s, questions_path, ingest_info, retrieval_only, temp_index)
        if judge:
            from .judge import judge_records

            info["judge"] = judge_records(records, s)
    finally:
        if tmp is not None:
            tmp.cleanup()
    overall, per_kind = summarise(records)
    if judge and isinstance(info.get("judge"), dict) and info["judge"].get("metrics"):
        overall.update(info["judge"]["metrics"])
    return write_reports(Path(out_dir) if out_dir else default_out_dir(), overall, per_kind, records, answers, info)


def _run_info(s: Settings, qpath: Any, ingest_info: dict | None, retrieval_only: bool, temp_index: bool) -> dict:
    answerer, reason = s.llm_choice()
    return {"questions_file": str(qpath or "bundled eval/sets/sample-dev.jsonl"), "answerer": answerer,
            "reason": reason, "model": s.model if answerer == "llm" else None, "embedder": s.embedder,
            "index_dir": None if temp_index else s.index_dir, "temp_index": temp_index,
            "retrieval_only": retrieval_only, "ingest": ingest_info,
            "finished": datetime.now().isoformat(timespec="seconds")}


def load_report(path: str | Path) -> dict[str, Any]:
    """A previous run's report.json (``path`` may be the run dir)."""
    p = Path(path)
    p = p / "report.json" if p.is_dir() else p
    return json.loads(p.read_text(encoding="utf-8"))
