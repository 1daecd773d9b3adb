"""Eval tab: run the fixed eval set over the bundled sample in a temporary index (the user's index is untouched)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from rag.config import Settings

Progress = Callable[[int, int, str], None]


def describe_eval() -> str:
    return ("### Evaluation\nRuns the fixed question set over the bundled sample corpus in a **temporary index** "
            "(your own index is not touched) with the current answerer and embedder, then shows the report "
            "table and plot. The full set takes a few minutes offline; pick fewer questions for a quick look.")


def run_eval_ui(settings: Settings, limit: int | None = None,
                progress: Progress | None = None) -> tuple[str, str | None]:
    """(markdown report, plot PNG path or None); errors come back as the markdown text."""
    try:
        from eval import run_eval
        from rag import api
    except ImportError as exc:
        return f"The eval module is not available in this install ({exc}).", None
    out_dir = Path(tempfile.mkdtemp(prefix="digestqa-eval-"))
    try:
        rep = run_eval(settings=settings, out_dir=out_dir, corpus=api.sample_paths(), progress=progress,
                       temp_index=True, limit=limit or None)
    except Exception as exc:  # shown in the tab; the app keeps running
        return f"**Eval failed:** `{type(exc).__name__}: {exc}`", None
    md = Path(rep.report_md).read_text(encoding="utf-8") if Path(rep.report_md).is_file() else str(rep.metrics)
    plot = str(rep.plot) if Path(rep.plot).is_file() else None
    return md, plot
