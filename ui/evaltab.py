"""Eval tab: run the fixed eval set in a temporary index (the user's index is never touched)."""
from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import Any

from rag.config import Settings


def describe_eval() -> str:
    return ("### Evaluation\nRuns the fixed question set over the bundled sample corpus in a **temporary index** "
            "(your own index is not touched) with the current answerer and embedder, then shows the report "
            "table and plot. Takes a minute or two offline.")


def _run_eval():
    try:
        from eval import run_eval
    except ImportError:
        return None
    return run_eval


def _call(run_eval, settings: Settings, out_dir: Path) -> Any:
    """Call ``eval.run_eval`` with whichever of settings/out_dir it accepts."""
    params = inspect.signature(run_eval).parameters
    kwargs: dict[str, Any] = {}
    for name in ("out_dir", "output_dir", "out"):
        if name in params:
            kwargs[name] = out_dir
            break
    return run_eval(settings, **kwargs)


def _field(result: Any, *names: str) -> Any:
    for n in names:
        v = result.get(n) if isinstance(result, dict) else getattr(result, n, None)
        if v:
            return v
    return None


def run_eval_ui(settings: Settings) -> tuple[str, str | None]:
    """(markdown report, plot PNG path or None)."""
    run_eval = _run_eval()
    if run_eval is None:
        return "The eval module (`eval.run_eval`) is not available in this install.", None
    tmp = Path(tempfile.mkdtemp(prefix="digestqa-eval-"))
    temp_settings = settings.model_copy(update={"index_dir": str(tmp / "index")})
    try:
        result = _call(run_eval, temp_settings, tmp / "out")
    except Exception as exc:
        return f"Eval failed: `{type(exc).__name__}: {exc}`", None
    md = _field(result, "markdown", "report_md", "table_md", "report")
    png = _field(result, "plot", "plot_png", "png", "plot_path")
    if md and Path(str(md)).suffix == ".md" and Path(str(md)).is_file():
        md = Path(str(md)).read_text(encoding="utf-8")
    return str(md or result), (str(png) if png and Path(str(png)).is_file() else None)
