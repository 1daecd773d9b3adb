"""CI gate: compare a run's metrics with thresholds from a TOML file.

Format (``eval/thresholds.toml``)::

    [overall]
    "hit@5" = 0.9            # minimum
    latency_p95_ms = 5000    # keys ending in _ms (and false_abstention) are maxima

    [kind.fact]
    fact_recall = 0.6
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .metrics import LOWER_IS_BETTER


def default_thresholds_path() -> Path:
    from importlib.resources import files

    return Path(str(files("eval") / "thresholds.toml"))


def load_thresholds(path: str | Path | None = None) -> dict[str, Any]:
    import tomllib

    p = Path(path) if path else default_thresholds_path()
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{p}: cannot read thresholds ({e}); fix the file or pass --thresholds FILE") from e


def _check(scope: str, metrics: Mapping[str, Any], limits: Mapping[str, Any]) -> list[str]:
    fails = []
    for name, limit in limits.items():
        val = metrics.get(name)
        if val is None:
            continue  # metric not applicable in this run (e.g. retrieval-only)
        is_max = name.endswith("_ms") or name in LOWER_IS_BETTER
        if (val > limit) if is_max else (val < limit):
            word = "above maximum" if is_max else "below threshold"
            fails.append(f"{scope} {name} = {val:.4f} is {word} {limit}")
    return fails


def gate(report: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[str]:
    """Every failed threshold as one line; empty when the run passes."""
    fails = _check("overall", report["metrics"], thresholds.get("overall", {}))
    for kind, limits in (thresholds.get("kind") or {}).items():
        if kind in report.get("per_kind", {}):
            fails += _check(f"kind {kind}:", report["per_kind"][kind], limits)
    return fails
