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
    parser.add_argument("--set", dest="sets", action="append", metavar="NAME",
                        help="bundled set(s) to run: sample-dev, sample-test, corpora-dev, corpora-test, or a corpus "
                             "name (sample, corpora) for both its splits; default: all (repeatable)")
    parser.add_argument("--split", choices=("dev", "test"), help="only this split of the bundled sets "
                                                                  "(default: both)")
    parser.add_argument("--shared", metavar="DIR",
                        help="shared data dir holding corpora/ for the corpora sets (default: DIGESTQA_SHARED or "
                             "../shared beside the checkout)")
    parser.add_argument("--require-all", action="store_true",
                        help="fail (exit 2) when a selected set's corpus is missing instead of skipping it (CI)")


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


def _gate(args: argparse.Namespace, reports: dict[str, dict]) -> int:
    """Check each set's report against its section of the thresholds file (``[<set name>.overall]`` ...)."""
    from .thresholds import gate, load_thresholds

    if not args.thresholds and (args.limit or args.questions or args.corpus):
        print("threshold gate skipped (partial or custom question set; pass --thresholds FILE to force it)")
        return 0
    try:
        limits = load_thresholds(args.thresholds)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    label = (lambda n: f"{n}: ") if len(reports) > 1 else (lambda n: "")  # noqa: E731
    fails = [f"{label(name)}{f}" for name, report in reports.items() for f in gate(report, limits.get(name, limits))]
    for f in fails:
        print(f"THRESHOLD FAILED: {f}")
    print("thresholds: FAIL" if fails else f"thresholds: pass ({', '.join(reports)})")
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


def _selected_sets(args: argparse.Namespace):
    from .sets import CORPORA, bundled_sets

    wanted = args.sets or []
    bad = [w for w in wanted if w not in CORPORA and w not in {s.name for s in bundled_sets()}]
    if bad:
        raise ValueError(f"unknown set {', '.join(bad)}: choose from {', '.join(s.name for s in bundled_sets())} "
                         f"or {', '.join(CORPORA)}")
    split = (args.split,) if args.split else None
    return [s for s in bundled_sets(splits=split) if not wanted or s.name in wanted or s.corpus in wanted]


def _run_suite(args: argparse.Namespace, settings: Settings) -> int:
    """The bundled dev/test sets side by side (the default ``digestqa eval``)."""
    from .harness import default_out_dir, load_report
    from .sets import find_shared
    from .suite import run_suite, summary_rows

    try:
        sets = _selected_sets(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    shared = find_shared(args.shared)
    rep = run_suite(settings, Path(args.out) if args.out else default_out_dir(), sets, shared,
                    _progress_bars(lambda msg: "questions"), args.limit)
    print("\n".join(summary_rows(rep)))
    for name, why in rep.skipped.items():
        print(f"{name}: skipped, {why}")
    print(f"\nwrote {rep.summary_md} and a report per set under {rep.out_dir}")
    if rep.skipped and args.require_all:
        print("error: --require-all and some sets were skipped", file=sys.stderr)
        return 2
    return _gate(args, {n: load_report(r.report_json) for n, r in rep.reports.items()})


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the eval (or BEIR) described by ``args``; 0 ok, 1 threshold failure, 2 bad input."""
    from .harness import load_report, run_eval
    from .judge import unavailable_reason
    from .questions import QuestionFileError
    from .report import kind_table, overall_table

    if args.beir:
        return _run_beir(args, settings)
    if not (args.questions or args.corpus or getattr(args, "index", None) or args.retrieval_only or args.judge):
        return _run_suite(args, settings)
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
    return code or _gate(args, {"sample-dev": load_report(rep.report_json)})


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m eval.cli``) until the lead's CLI wires it; --index sets the index dir."""
    p = argparse.ArgumentParser(prog="digestqa eval")
    p.add_argument("--index", help="index dir to answer from (as it is)")
    add_arguments(p)
    args = p.parse_args(argv)
    return run(args, Settings.from_env(index_dir=args.index))


if __name__ == "__main__":
    sys.exit(main())
