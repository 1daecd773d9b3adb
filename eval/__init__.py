"""digestqa evaluation: bundled question sets (dev/test over the sample and real corpora), offline metrics, reports, BEIR.

Function API (used by the UI)::

    from eval import run_eval
    rep = run_eval(questions_path=None,   # None -> bundled eval/sets/sample-dev.jsonl
                   settings=None,         # None -> Settings.from_env(); its index is used as it is
                   out_dir=None,          # None -> runs/<timestamp>
                   corpus=None,           # paths to ingest first (e.g. rag.api.sample_paths())
                   progress=None,         # progress(done, total, message)
                   temp_index=False,      # True -> a fresh temporary index
                   limit=None, retrieval_only=False, judge=False,
                   sample_if_empty=True)  # empty index and no corpus -> ingest the bundled sample first
    rep.metrics        # overall {metric: value}; see eval.metrics for definitions and scope
    rep.per_kind       # {kind: {metric: value}}
    rep.per_question   # [{id, kind, question, answer, metrics, missing_must, missing_facts, ...}]
    rep.report_md, rep.plot, rep.report_json, rep.answers   # Paths of the files written

The bundled questions are about the five sample digests: to evaluate a clean system call
``run_eval(settings=s, temp_index=True)`` (the sample is ingested into a fresh temporary index;
the user's index is never touched) or point ``settings.index_dir`` at an empty directory.

Question file: JSON Lines of ``{id, question, lang (en|zh), kind, must, gold, facts, answerable}``
(validated by :func:`eval.questions.load_questions`; bad files are rejected as ``FILE:LINE: problem``).
A ref is an arXiv id, ``title:<substring>`` or alternatives joined by ``|``.
CLI: :mod:`eval.cli` (``digestqa eval``). BEIR: :mod:`eval.beir`. CI gate: ``eval/thresholds.toml``.
"""
from __future__ import annotations

from .harness import EvalReport, run_eval

__all__ = ["EvalReport", "run_eval"]
