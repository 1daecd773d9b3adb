"""``digestqa eval``: the lead's CLI wires ``add_arguments`` and ``run`` into a subcommand."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--questions", metavar="FILE", help="question file (JSON Lines); default: the bundled set")
    parser.add_argument("--out", metavar="DIR", help="run directory; default runs/<timestamp>")
    parser.add_argument("--corpus", nargs="+", metavar="PATH",
                        help="ingest these files/folders first, into --index, else a temporary index "
                             "(default: the bundled sample in a temporary index, unless --index is given)")
    parser.add_argument("--compare", metavar="DIR",
                        help="previous run dir (or report.json) to show deltas against (default: none)")
    parser.add_argument("--retrieval-only", action="store_true", help="score retrieval only (no answering)")
    parser.add_argument("--beir", metavar="DIR", help="run the BEIR benchmark on this dataset dir instead "
                                                      "(default: none)")
    parser.add_argument("--judge", action="store_true", help="add LLM-judge scores (needs a configured LLM)")
    parser.add_argument("--thresholds", metavar="FILE",
                        help="CI gate file (default: eval/thresholds.toml; skipped for --limit / custom --questions)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N questions, for debugging "
                                                               "(default: all)")


def _progress_bars(stage_of):
    """tqdm bars like ``digestqa ingest``'s (parse, embed), then one for the questions; ``stage_of`` maps a
    progress message that is not an ingest stage to its bar's name."""
    from rag.cli import ProgressBars

    bars = ProgressBars(units={"dense": "queries", "bm25": "queries", "hybrid": "queries"})

    def progress(done: int, total: int, msg: str) -> None:
        if msg in ("parse", "embed"):
            bars(done, total, msg)
        else:
            bars(done, total, stage_of(msg), note=msg.split(":", 1)[0] if ":" in msg else None)

    return progress


def _corpus_plan(args: argparse.Namespace) -> tuple[list | None, bool]:
    """(paths to ingest, use a temporary index) from --index/--corpus."""
    from rag import api

    has_index = getattr(args, "index", None) is not None
    if args.corpus:
        return list(args.corpus), not has_index
    if has_index:
        return None, False
    return api.sample_paths(), True


def _run_beir(args: argparse.Namespace, settings: Settings) -> int:
    from .beir import render_beir_md, run_beir
    from .harness import default_out_dir

    out = Path(args.out) if args.out else default_out_dir()
    try:
        doc = run_beir(args.beir, settings, out, _progress_bars(lambda msg: msg.split(":", 1)[0]))
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(render_beir_md(doc))
    print(f"wrote {out / 'beir.json'} and {out / 'beir.md'}")
    return 0


def _gate(args: argparse.Namespace, report: dict) -> int:
    from .thresholds import gate, load_thresholds

    if not args.thresholds and (args.limit or args.questions):
        print("threshold gate skipped (partial or custom question set; pass --thresholds FILE to force it)")
        return 0
    try:
        fails = gate(report, load_thresholds(args.thresholds))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f in fails:
        print(f"THRESHOLD FAILED: {f}")
    print("thresholds: FAIL" if fails else "thresholds: pass")
    return 1 if fails else 0


def _compare(args: argparse.Namespace, rep) -> int:
    from .harness import load_report
    from .report import compare

    try:
        prev = load_report(args.compare)
    except (OSError, ValueError) as e:
        print(f"error: --compare {args.compare}: {e}; pass a run dir holding report.json", file=sys.stderr)
        return 2
    text = compare(load_report(rep.report_json), prev)
    (rep.out_dir / "compare.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the eval (or BEIR) described by ``args``; 0 ok, 1 threshold failure, 2 bad input."""
    from .harness import load_report, run_eval
    from .judge import unavailable_reason
    from .questions import QuestionFileError
    from .report import kind_table, overall_table

    if args.beir:
        return _run_beir(args, settings)
    if args.judge and (why := unavailable_reason(settings)):
        print(why)
    corpus, temp = _corpus_plan(args)
    try:
        rep = run_eval(args.questions, settings, args.out, corpus, _progress_bars(lambda msg: "questions"),
                       temp_index=temp, limit=args.limit,
                       retrieval_only=args.retrieval_only, judge=args.judge and not unavailable_reason(settings),
                       sample_if_empty=False)
    except QuestionFileError as e:
        print(f"error: question file rejected, nothing run:\n{e}", file=sys.stderr)
        return 2
    print("\n".join(overall_table(rep.metrics) + [""] + kind_table(rep.per_kind)))
    print(f"\nwrote {rep.answers}, {rep.report_json}, {rep.report_md}, {rep.plot}")
    code = _compare(args, rep) if args.compare else 0
    return code or _gate(args, load_report(rep.report_json))


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m eval.cli``) until the lead's CLI wires it; --index sets the index dir."""
    p = argparse.ArgumentParser(prog="digestqa eval")
    p.add_argument("--index", help="index dir to answer from (as it is)")
    add_arguments(p)
    args = p.parse_args(argv)
    return run(args, Settings.from_env(index_dir=args.index))


if __name__ == "__main__":
    sys.exit(main())
