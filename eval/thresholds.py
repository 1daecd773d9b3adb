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


GATED = ("hit@5", "mrr", "citation_recall", "citation_precision", "citation_validity", "fact_recall",
         "abstention_accuracy", "false_abstention", "parts_answered", "language_match", "support")
MIN_KIND_QUESTIONS = 5  # per-kind limits only for kinds with at least this many questions (dev sets)


def _limit(name: str, value: float, margin: float) -> float:
    """A limit just past a measured value: floored to 2 decimals minus ``margin`` for a minimum, ceiled plus
    ``margin`` for a maximum (so one changed question of a big set does not trip it)."""
    import math

    if name in LOWER_IS_BETTER:
        return round(min(1.0, math.ceil(value * 100) / 100 + margin), 2)
    return round(max(0.0, math.floor(value * 100) / 100 - margin), 2)


def _section(metrics: Mapping[str, Any], margin: float, counts: Mapping[str, int] | None = None) -> dict[str, float]:
    """Limits for one section; with ``counts`` (questions each metric averages over), the margin is at least
    one question's worth, so one changed answer cannot trip a metric over few questions (parts_answered)."""
    counts = counts or {}
    return {m: _limit(m, metrics[m], max(margin, 1 / counts[m] + 0.005) if counts.get(m) else margin)
            for m in GATED if metrics.get(m) is not None}


def _counts(per_kind: Mapping[str, Any]) -> dict[str, int]:
    """Per metric, the questions of the kinds where it is defined (a metric of multipart questions only
    averages over those)."""
    return {m: sum(k.get("questions") or 0 for k in per_kind.values() if k.get(m) is not None) for m in GATED}


# Margins (overall, per kind) by corpus. The sample's answers repeat exactly across fresh ingests; the real
# corpora's do not quite (two fresh ingests: 2 of 82 corpora-test and 0-1 of 152 corpora-dev answers differ,
# sources at ranks 3-5 of a few questions), so their limits leave room for a few changed questions.
MARGINS = {"sample": (0.01, 0.02), "corpora": (0.03, 0.10)}
# Corpora whose answers vary between fresh ingests (Chroma inserts vectors it has not yet persisted into its
# HNSW graph in varying order, so an approximate search's cut-off can differ): each metric also gets one
# question's worth of room (a multipart question flipping moves corpora-dev parts_answered by 0.038).
VARYING = {"corpora"}


def suggest(summary: Mapping[str, Any], margins: Mapping[str, tuple[float, float]] = MARGINS) -> str:
    """thresholds.toml text from a ``digestqa eval`` summary.json: every set's overall metrics; per kind
    only for dev sets (a test set's kinds have a handful of questions each) with enough questions."""
    lines = []
    for name, doc in summary["sets"].items():
        corpus = name.rsplit("-", 1)[0]
        overall_margin, kind_margin = margins.get(corpus, (0.03, 0.10))
        varies = corpus in VARYING  # one question's worth of room for every metric
        counts = _counts(doc["per_kind"]) if varies else None
        lines += [f"[{name}.overall]", *_toml(_section(doc["metrics"], overall_margin, counts)),
                  '"latency_p95_ms" = 3000.0', ""]
        if not name.endswith("-dev"):
            continue
        for kind, m in sorted(doc["per_kind"].items()):
            if (m.get("questions") or 0) >= MIN_KIND_QUESTIONS:
                kind_counts = {k: m["questions"] for k in GATED} if varies else None
                lines += [f"[{name}.kind.{kind}]", *_toml(_section(m, kind_margin, kind_counts)), ""]
    return "\n".join(lines)


def _toml(section: Mapping[str, float]) -> list[str]:
    return [f'"{k}" = {v}' for k, v in section.items()]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m eval.thresholds",
                                description="Print thresholds.toml sections just under a measured run's metrics.")
    p.add_argument("summary", help="summary.json of a `digestqa eval` run (all sets)")
    args = p.parse_args(argv)
    print(suggest(json.loads(Path(args.summary).read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
