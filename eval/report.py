"""Write report.json / report.md / answers.jsonl / plot.png, and compare two runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .metrics import METRIC_SCOPE

KIND_COLUMNS = ("hit@5", "mrr", "citation_recall", "citation_precision", "fact_recall",
                "abstention_accuracy", "language_match")


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3f}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(fmt(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]


def overall_table(metrics: Mapping[str, Any]) -> list[str]:
    rows = [[k, metrics.get(k), METRIC_SCOPE.get(k, "")] for k in metrics if k != "questions"]
    return _table(["metric", "value", "over"], rows)


def kind_table(per_kind: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = [[k, int(m.get("questions") or 0), *[m.get(c) for c in KIND_COLUMNS]] for k, m in per_kind.items()]
    return _table(["kind", "n", *KIND_COLUMNS], rows)


def worst(records: list[dict[str, Any]], n: int = 10) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["metrics"]["score"], r["id"]))[:n]


def worst_section(records: list[dict[str, Any]]) -> list[str]:
    out = ["## Worst 10 questions", ""]
    for r in worst(records):
        out += [f"### {r['id']} ({r['kind']}, {r['lang']}) — score {r['metrics']['score']:.2f}", "",
                f"**Q:** {r['question']}", "", f"**A:** {(r['answer'] or '(empty)')[:500]}", "",
                f"- abstained: {r['abstained']} (answerable: {r['answerable']}); language: {r['detected_lang']}",
                f"- missing cited refs: {', '.join(r['missing_must']) or 'none'}",
                f"- missing facts: {', '.join(f'`{f}`' for f in r['missing_facts']) or 'none'}",
                f"- cited: {', '.join(map(str, r['cited'])) or 'none'}; retrieved: {', '.join(map(str, r['sources'])) or 'none'}"]
        if r.get("error"):
            out.append(f"- error: {r['error']}")
        out.append("")
    return out


def render_md(metrics: Mapping[str, Any], per_kind: Mapping[str, Mapping[str, Any]],
              records: list[dict[str, Any]], info: Mapping[str, Any]) -> str:
    head = [f"# digestqa eval — {int(metrics.get('questions') or 0)} questions", "",
            f"answerer: {info.get('answerer')} ({info.get('reason')}); embedder: {info.get('embedder')}; "
            f"questions: {info.get('questions_file')}", ""]
    if isinstance(info.get("judge"), dict) and info["judge"].get("message"):
        head += [f"judge: {info['judge']['message']}", ""]
    body = ["## Overall", "", *overall_table(metrics), "", "## Per kind", "", *kind_table(per_kind), ""]
    return "\n".join(head + body + worst_section(records)) + "\n"


def write_reports(out_dir: Path, metrics: dict, per_kind: dict, records: list[dict], answers: list[dict],
                  info: dict):
    """Write all run files and return an :class:`~eval.harness.EvalReport`."""
    from .harness import EvalReport
    from .plot import plot_per_kind

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {n: out_dir / n for n in ("answers.jsonl", "report.json", "report.md", "plot.png")}
    with paths["answers.jsonl"].open("w", encoding="utf-8") as f:
        for a in answers:
            f.write(json.dumps(a, ensure_ascii=False) + "\n")
    doc = {"metrics": metrics, "per_kind": per_kind, "per_question": records, "info": info}
    paths["report.json"].write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    paths["report.md"].write_text(render_md(metrics, per_kind, records, info), encoding="utf-8")
    plot_per_kind(per_kind, paths["plot.png"])
    return EvalReport(metrics=metrics, per_kind=per_kind, per_question=records, out_dir=out_dir,
                      report_json=paths["report.json"], report_md=paths["report.md"], plot=paths["plot.png"],
                      answers=paths["answers.jsonl"], info=info)


def compare(current: Mapping[str, Any], previous: Mapping[str, Any]) -> str:
    """Markdown tables of metric deltas (overall) and per-question score changes (current - previous)."""
    cm, pm = current["metrics"], previous["metrics"]
    rows = [[k, pm.get(k), cm.get(k), _delta(cm.get(k), pm.get(k))] for k in cm if k in pm or cm.get(k) is not None]
    out = ["## Overall vs previous", "", *_table(["metric", "previous", "current", "delta"], rows), ""]
    prev_q = {r["id"]: r for r in previous.get("per_question", [])}
    changed = []
    for r in current.get("per_question", []):
        p = prev_q.get(r["id"])
        d = _delta(r["metrics"]["score"], p["metrics"]["score"]) if p else None
        if p is None or (d is not None and abs(d) > 1e-9):
            changed.append([r["id"], r["kind"], p["metrics"]["score"] if p else None, r["metrics"]["score"], d])
    out += ["## Questions whose score changed", ""]
    out += _table(["id", "kind", "previous", "current", "delta"], changed) if changed else ["(none)"]
    return "\n".join(out) + "\n"


def _delta(a: Any, b: Any) -> float | None:
    return round(a - b, 6) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
