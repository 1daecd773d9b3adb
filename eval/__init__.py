"""digestqa evaluation: a fixed question set over the bundled sample, offline metrics, reports, BEIR.

Function API (used by the UI)::

    from eval import run_eval
    rep = run_eval(questions_path=None,   # None -> bundled eval/questions.jsonl
                   settings=None,         # None -> Settings.from_env(); its index is used as it is
                   out_dir=None,          # None -> runs/<timestamp>
                   corpus=None,           # paths to ingest first (e.g. rag.api.sample_paths())
                   progress=None,         # progress(done, total, message)
                   temp_index=False,      # True -> a fresh temporary index (use with corpus=...)
                   limit=None, retrieval_only=False, judge=False)
    rep.metrics        # overall {metric: value}; see eval.metrics for definitions and scope
    rep.per_kind       # {kind: {metric: value}}
    rep.per_question   # [{id, kind, question, answer, metrics, missing_must, missing_facts, ...}]
    rep.report_md, rep.plot, rep.report_json, rep.answers   # Paths of the files written

The bundled questions are about the five sample digests: to evaluate a clean system call
``run_eval(corpus=rag.api.sample_paths(), temp_index=True)``.

Question file: JSON Lines of ``{id, question, lang (en|zh), kind, must, gold, facts, answerable}``
(validated by :func:`eval.questions.load_questions`; bad files are rejected as ``FILE:LINE: problem``).
A ref is an arXiv id, ``title:<substring>`` or alternatives joined by ``|``.
CLI: :mod:`eval.cli` (``digestqa eval``). BEIR: :mod:`eval.beir`. CI gate: ``eval/thresholds.toml``.
"""
from __future__ import annotations

from typing import Any


def run_eval(*args: Any, **kwargs: Any):
    """See :func:`eval.harness.run_eval` (imported lazily so ``import eval`` stays light)."""
    from .harness import run_eval as _run

    return _run(*args, **kwargs)


__all__ = ["run_eval"]
