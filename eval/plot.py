"""plot.png: quality metrics per question kind (grouped bars), rendered headless."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

PLOT_METRICS = ("hit@5", "citation_recall", "fact_recall", "abstention_accuracy", "language_match")


def plot_per_kind(per_kind: Mapping[str, Mapping[str, float | None]], path: Path) -> Path:
    """Bar chart: one group per kind, one bar per metric (missing metrics drawn as 0, hatched label '–')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(per_kind) or ["(none)"]
    width = 0.8 / len(PLOT_METRICS)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(kinds)), 4.5), dpi=100)
    for i, m in enumerate(PLOT_METRICS):
        vals = [(per_kind.get(k) or {}).get(m) for k in kinds]
        xs = [j + (i - (len(PLOT_METRICS) - 1) / 2) * width for j in range(len(kinds))]
        ax.bar(xs, [v or 0.0 for v in vals], width, label=m)
    ax.set_xticks(range(len(kinds)))
    ax.set_xticklabels([f"{k}\n(n={int((per_kind.get(k) or {}).get('questions') or 0)})" for k in kinds], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title("digestqa eval: metrics per question kind")
    ax.legend(fontsize=7, ncol=len(PLOT_METRICS), loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
