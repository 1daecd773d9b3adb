"""The `digestqa` command: ingest, ask, chat, papers, stats, doctor, repair, ui, eval, bench."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from .config import Settings
from .types import Answer, Filters, IngestReport

EXIT_FAILED_FILES = 1
EXIT_ERROR = 2


# ---------------------------------------------------------------- argument parsing

def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("index")
    g.add_argument("--index", metavar="DIR", default=argparse.SUPPRESS,
                   help="index data dir (default: $DIGESTQA_INDEX or the platform data dir)")
    g.add_argument("--chroma-url", metavar="URL", default=argparse.SUPPRESS,
                   help="use a Chroma server (e.g. http://127.0.0.1:8000) instead of the embedded store")
    g.add_argument("--embedder", metavar="NAME", default=argparse.SUPPRESS,
                   help="minilm-onnx (default, offline), openai:<model> or st:<sentence-transformers model>")
    return p


def _date_arg(value: str) -> str:
    """A --since/--until value: YYYY-MM-DD, YYYY-MM or YYYY (a partial date covers its whole period)."""
    from .types import check_date

    try:
        return check_date(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _top_k_arg(value: str) -> int:
    from .types import check_top_k

    try:
        return check_top_k(int(value))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e) if "top-k" in str(e) else f"{value!r} is not a whole number") from None


def _filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters")
    g.add_argument("--since", metavar="YYYY-MM-DD", type=_date_arg,
                   help="only papers from digests (or submitted) on/after")
    g.add_argument("--until", metavar="YYYY-MM-DD", type=_date_arg,
                   help="only papers from digests (or submitted) on/before")
    g.add_argument("--category", help="only papers in this arXiv category (e.g. cs.IR)")
    g.add_argument("--author", help="only papers with an author matching this (case-insensitive)")
    g.add_argument("--top-k", type=_top_k_arg, metavar="N", help="number of papers handed to the answerer")
    g.add_argument("--answerer", choices=["auto", "llm", "extractive"], default=None,
                   help="auto (default): LLM when OPENAI_API_KEY/OPENAI_BASE_URL is set, else extractive")
    g.add_argument("--model", help="chat model for the LLM answerer ($DIGESTQA_MODEL)")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="digestqa", parents=[common],
                                     description="Ask questions of your arXiv daily digests, with citations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("ingest", parents=[common], help="index digest files, folders or globs")
    p.add_argument("paths", nargs="+", help="files, folders (recursive) or globs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = sub.add_parser("ask", parents=[common], help="answer one question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print one JSON object (same as --format json)")
    p.add_argument("--format", choices=["text", "md", "bibtex", "json"], default="text",
                   help="text (default, streamed), md (answer + numbered references with arXiv links), "
                        "bibtex (the cited papers), json")
    _filters(p)
    p = sub.add_parser("chat", parents=[common], help="terminal chat with history and streaming")
    _filters(p)
    p = sub.add_parser("papers", parents=[common], help="list merged paper records")
    p.add_argument("--json", action="store_true", help="print a JSON array of every record")
    p.add_argument("--bibtex", action="store_true", help="print BibTeX @misc entries (of IDS, else of every paper)")
    p.add_argument("ids", nargs="*", metavar="ID", help="only these papers (paper or arXiv IDs)")
    _add_workflow_commands(sub, common)
    sub.add_parser("stats", parents=[common], help="papers, chunks, sources, embedder, index path")
    sub.add_parser("doctor", parents=[common], help="check the index (catalogue vs Chroma vs BM25); exit 1 "
                                                    "when something needs `digestqa repair`")
    p = sub.add_parser("repair", parents=[common], help="fix what doctor finds: salvage a damaged catalogue, "
                                                        "re-embed missing vectors, rebuild BM25")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = sub.add_parser("ui", parents=[common], help="open the web UI (Gradio)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--auth", metavar="USER:PASS", help="required when --host is not local")
    p.add_argument("--upload-max-mb", type=float, default=None, help="largest upload accepted (default 50)")
    p = sub.add_parser("eval", parents=[common], help="run the eval question set and write a report")
    _add_eval_args(p)
    sub.add_parser("bench", parents=[common], help="run the benchmarks (slow; see bench/README.md); "
                                                   "options after `bench` go to python -m bench")
    return parser


def _add_workflow_commands(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sync", parents=[common], help="fetch and ingest new days from digest sources",
                       description="Fetch the days not yet ingested from a daily-arXiv data folder (a base URL of "
                                   "dated YYYY-MM-DD*.jsonl/.md files) or an RSS/Atom feed of arXiv listings; "
                                   "sources are remembered: without URL every remembered source is updated.")
    p.add_argument("url", nargs="?", help="source URL (remembered); omit to update every remembered source")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="first day to fetch (default: the last 7 days on a "
                                                         "first sync, then the days after the last one fetched)")
    p.add_argument("--list", action="store_true", help="list the remembered sources and exit")
    p.add_argument("--forget", metavar="URL", help="stop syncing this source (its papers stay indexed)")
    p.add_argument("--json", action="store_true", help="print one JSON object per source")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = sub.add_parser("watch", parents=[common], help="standing phrases and the new papers matching them")
    wsub = p.add_subparsers(dest="watch_command", required=True, metavar="ACTION")
    a = wsub.add_parser("add", parents=[common], help="watch a phrase (any language)")
    a.add_argument("phrase")
    a.add_argument("--threshold", type=float, help="match score needed (0-1; default: the calibrated one)")
    wsub.add_parser("list", parents=[common], help="list the watches")
    a = wsub.add_parser("remove", parents=[common], help="stop watching a phrase")
    a.add_argument("phrase")
    a = wsub.add_parser("run", parents=[common], help="list the papers matching the watches")
    a.add_argument("phrase", nargs="?", help="only this watch (a remembered one or any phrase)")
    a.add_argument("--since", metavar="YYYY-MM-DD", help="papers dated on/after (default: the last 7 indexed days)")
    a.add_argument("--until", metavar="YYYY-MM-DD", help="papers dated on/before")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_parser("mcp", parents=[common], help="serve the index to MCP clients over stdio")


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    from eval.cli import add_arguments  # argparse only: keeps the CLI start fast

    add_arguments(p)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {"index_dir": getattr(args, "index", None), "chroma_url": getattr(args, "chroma_url", None),
                 "embedder": getattr(args, "embedder", None), "answerer": getattr(args, "answerer", None),
                 "model": getattr(args, "model", None),
                 "upload_max_mb": getattr(args, "upload_max_mb", None)}
    return Settings.from_env(**overrides)


def filters_from(args: argparse.Namespace) -> Filters:
    from .types import check_filters

    return check_filters(Filters(since=args.since, until=args.until, category=args.category, author=args.author,
                                 top_k=args.top_k))


# ---------------------------------------------------------------- ingest

def _progress_bar(quiet: bool) -> Callable[[int, int, str], None] | None:
    if quiet:
        return None
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(done: int, total: int, stage: str) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=f"{stage:>6}", unit=" files" if stage == "parse" else " papers",
                                     file=sys.stderr, leave=True, dynamic_ncols=True)
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def print_report(r: IngestReport, out=None) -> None:
    out = out or sys.stdout  # looked up per call (not bound at import), so redirections apply
    print(f"files: {r.files} ({r.files_skipped} unchanged, skipped) | papers: {r.papers_new} new, "
          f"{r.papers_updated} updated, {r.papers_unchanged} unchanged | chunks: +{r.chunks_added} "
          f"-{r.chunks_removed} | failures: {len(r.failures)} | {r.seconds:.1f} s", file=out)
    for note in r.notes:
        print(f"  note: {note}", file=out)
    for f in r.failures:
        print(f"  failed: {f}", file=out)


def cmd_ingest(args, s: Settings) -> int:
    from . import api

    watched = bool(api.watches(s))
    before = api.paper_ids(s) if watched else set()
    try:
        report = api.ingest(args.paths, s, _progress_bar(args.quiet))
    except KeyboardInterrupt:
        print("interrupted: what was indexed so far is kept; run the same command again to finish",
              file=sys.stderr)
        return 130
    print_report(report)
    if watched:
        print_new_matches(api.paper_ids(s) - before, s)
    return EXIT_FAILED_FILES if report.failures else 0


def print_new_matches(new_ids: set[str], s: Settings, out=None) -> None:
    """After an ingest or sync: the new papers matching each watch."""
    from . import api

    if not new_ids:
        return
    found = api.whats_new(settings=s, paper_ids=new_ids)
    print_matches(found, out, header=f"watches ({len(new_ids)} new papers):")


def print_matches(found: dict, out=None, header: str | None = None) -> None:
    out = out or sys.stdout
    if header:
        print(header, file=out)
    for phrase, ms in found.items():
        print(f'  "{phrase}": {len(ms)} matching paper{"" if len(ms) == 1 else "s"}', file=out)
        for m in ms:
            print(f"    {(m.arxiv_id or m.paper_id):<16} {m.date or '':<10} {_clip(m.title, 90)}", file=out)
            print(f"      {m.field}: \"{_clip(m.sentence, 160)}\"", file=out)
            print(f"      why: {m.why}", file=out)


# ---------------------------------------------------------------- ask / chat

def _ensure_index(s: Settings) -> None:
    from . import api
    from .config import SCHEMA_VERSION, schema_change

    st = api.stats(s)
    if not st["papers"] and (st.get("unfinished") or st["sources"]):
        raise ValueError(f"index {s.index_dir} has no papers yet: an ingest into it was interrupted before it "
                         "finished; run that ingest again to finish it (what it embedded is kept)")
    if st["schema"] < SCHEMA_VERSION:
        print(f"note: index {s.index_dir} was built by schema {st['schema']}: answering from it; the next "
              f"`digestqa ingest` re-embeds its {st['papers']} papers ({schema_change(st['schema'])})",
              file=sys.stderr)
    if st["papers"]:
        return
    print(f"index {s.index_dir} is empty: ingesting the bundled sample corpus "
          f"({len(api.sample_paths())} digests) first...", file=sys.stderr)
    report = api.ensure_sample(s)
    if report:
        print_report(report, out=sys.stderr)


def format_answer(a: Answer) -> str:
    lines = ["", "Sources:"]
    cited = {c.n for c in a.citations}
    for h in a.sources:
        mark = "*" if h.rank in cited else " "
        ident = h.arxiv_id or h.paper_id
        lines.append(f" {mark}[{h.rank}] {h.title} ({ident}{', ' + h.date if h.date else ''})")
    if a.citations:
        lines.append("Evidence (the cited sentence, its support):")
    for c in a.citations:
        lines.append(f"  [{c.n}] {c.evidence_support:.2f} ({c.field}): {_clip(c.evidence or c.passage, 200)}")
    if a.unsupported:
        lines.append("Unsupported (not backed by the cited source; check before use):")
        lines += [f"  ! {_clip(c.text, 200)}" + (f" [cites {', '.join(map(str, c.cites))}]" if c.cites
                                                 else " [no citation]") for c in a.unsupported]
    if a.interpreted:
        lines.append(f"(answered as: {a.interpreted})")
    if a.dropped_citations:
        lines.append(f"  dropped citation numbers that match no source: {list(a.dropped_citations)}")
    model = f" ({a.model})" if a.model else ""
    lines.append(f"answerer: {a.answerer}{model}, {a.reason} | embedder: {a.embedder} | "
                 f"{a.timings_ms.get('total', 0):.0f} ms")
    return "\n".join(lines)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _stream_answer(question: str, s: Settings, f: Filters, history) -> Answer:
    from . import api

    answer = None
    try:
        for item in api.ask_stream(question, s, f, history):
            if isinstance(item, Answer):
                answer = item
            else:
                print(item, end="", flush=True)
    finally:
        print()  # (an error after streamed text starts on its own line)
    return answer


def cmd_ask(args, s: Settings) -> int:
    from . import api

    filters = filters_from(args)  # a bad filter is an error before anything else happens
    _ensure_index(s)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        print(json.dumps(api.ask(args.question, s, filters).to_json(), ensure_ascii=False))
        return 0
    if fmt in ("md", "bibtex"):
        answer = api.ask(args.question, s, filters)
        if fmt == "md":
            print(api.answer_markdown(answer, s), end="")
        else:
            text = api.answer_bibtex(answer, s)
            print(text, end="")
            if not text:
                print("the answer cites no paper: no BibTeX", file=sys.stderr)
        return 0
    print(format_answer(_stream_answer(args.question, s, filters, [])))
    return 0


def cmd_chat(args, s: Settings) -> int:
    from . import api

    filters_from(args)
    _ensure_index(s)
    d = api.describe(s)
    print(f"digestqa chat — answerer: {d['answerer']} ({d['reason']}), embedder: {d['embedder']}.\n"
          "Type a question; /sources shows the last sources, /clear forgets the history, /quit exits.")
    history: list[Answer] = []
    last: Answer | None = None
    while True:
        try:
            q = input("\n> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if q in ("/quit", "/exit"):
            return 0
        if q == "/clear":
            history, last = [], None
            continue
        if q == "/sources":
            print(format_answer(last) if last else "no answer yet")
            continue
        if q:
            last = _stream_answer(q, s, filters_from(args), history)
            history.append(last)
            n = len(last.citations)
            if last.interpreted:
                print(f"  (answered as: {last.interpreted})")
            print(f"  ({n} citation{'' if n == 1 else 's'}; /sources for details)")


# ---------------------------------------------------------------- papers / stats / ui / eval / bench

def cmd_papers(args, s: Settings) -> int:
    from . import api

    if args.bibtex:
        print(api.bibtex(args.ids or None, s), end="")
        return 0
    if args.ids:
        papers, missing = api.get_papers(args.ids, s)
        if missing:
            print(f"error: not in the index: {', '.join(missing)}", file=sys.stderr)
            return EXIT_ERROR
    else:
        papers = api.papers(s)
    if args.json:
        print(json.dumps([p.to_json() for p in papers], ensure_ascii=False, indent=1))
        return 0
    for p in papers:
        mark = "*" if p.title_derived else " "
        print(f"{(p.arxiv_id or p.paper_id):<16} {p.date or '':<10} {mark}{_clip(p.title, 90)}")
    print(f"{len(papers)} papers (* = derived title)", file=sys.stderr)
    return 0


def cmd_stats(args, s: Settings) -> int:
    from . import api

    st = api.stats(s)
    st.pop("source_files", None)
    for k, v in st.items():
        print(f"{k:>11}: {v}")
    return 0


def cmd_doctor(args, s: Settings) -> int:
    from . import api

    findings = api.doctor(s)
    for f in findings:
        print(f)
    bad = [f for f in findings if not f.ok]
    if bad:
        print(f"{len(bad)} problem{'s' if len(bad) != 1 else ''}: run `digestqa{_index_flag(s)} repair`",
              file=sys.stderr)
        return EXIT_FAILED_FILES
    print(f"index {s.index_dir} is healthy", file=sys.stderr)
    return 0


def cmd_repair(args, s: Settings) -> int:
    from . import api

    report = api.repair(s, _progress_bar(args.quiet))
    for action in report.actions:
        print(f"  {action}")
    for f in report.lost_files:
        print(f"  lost (ingest it again): {f}")
    print(f"repaired {s.index_dir} in {report.seconds:.1f} s" + (
        f"; {len(report.lost_files)} digest files must be ingested again" if report.lost_files else ""))
    return EXIT_FAILED_FILES if report.lost_files else 0


def _index_flag(s: Settings) -> str:
    from .store import index_flag

    return index_flag(s)


def cmd_ui(args, s: Settings) -> int:
    from ui.app import launch

    launch(s, host=args.host, port=args.port, auth=args.auth)
    return 0


def cmd_eval(args, s: Settings) -> int:
    from eval.cli import run

    return run(args, s)


def cmd_bench(args, s: Settings) -> int:
    from bench.__main__ import main as bench_main

    return bench_main(args.bench_args, s)


def cmd_sync(args, s: Settings) -> int:
    from . import api

    if args.list:
        for src in api.sync_sources(s):
            days = sorted(src.fetched)
            print(f"{src.kind:<5} {src.url}  ({len(days)} files{', last ' + days[-1] if days else ''}; "
                  f"last sync {src.last_sync or 'never'})")
        return 0
    if args.forget:
        ok = api.forget_source(args.forget, s)
        print(f"forgot {args.forget}" if ok else f"not a remembered source: {args.forget}",
              file=sys.stdout if ok else sys.stderr)
        return 0 if ok else EXIT_ERROR
    watched = bool(api.watches(s))
    reports = api.sync(args.url, s, args.since, _progress_bar(args.quiet or args.json))
    failed = False
    for r in reports:
        failed |= not r.ok
        if args.json:
            print(json.dumps(_sync_json(r), ensure_ascii=False))
            continue
        _print_sync(r)
        if watched and r.new_papers:
            print_new_matches(set(r.new_papers), s)
    return EXIT_FAILED_FILES if failed else 0


def _sync_json(r) -> dict:
    ing = r.ingest
    return {"url": r.url, "kind": r.kind, "fetched": list(r.fetched), "urls": list(r.urls), "error": r.error,
            "new_papers": list(r.new_papers),
            "ingest": None if ing is None else {"files": ing.files, "papers_new": ing.papers_new,
                                                "papers_updated": ing.papers_updated,
                                                "failures": [str(f) for f in ing.failures]}}


def _print_sync(r) -> None:
    if r.error:
        print(f"sync {r.url}: FAILED, nothing changed: {r.error}")
        return
    if not r.fetched:
        print(f"sync {r.url} ({r.kind}): up to date")
        return
    print(f"sync {r.url} ({r.kind}): fetched {len(r.fetched)} file(s): {', '.join(r.fetched)}")
    print_report(r.ingest)


def cmd_watch(args, s: Settings) -> int:
    from . import api

    action = args.watch_command
    if action == "add":
        w = api.add_watch(args.phrase, s, args.threshold)
        print(f'watching "{w.phrase}"' + (f" (threshold {w.threshold})" if w.threshold else ""))
        return 0
    if action == "list":
        ws = api.watches(s)
        for w in ws:
            print(f'"{w.phrase}"  added {w.added}' + (f", threshold {w.threshold}" if w.threshold else ""))
        if not ws:
            print('no watches yet: digestqa watch add "RQ-VAE semantic IDs"', file=sys.stderr)
        return 0
    if action == "remove":
        if api.remove_watch(args.phrase, s):
            print(f'removed "{args.phrase}"')
            return 0
        print(f'error: no watch "{args.phrase}" (digestqa watch list)', file=sys.stderr)
        return EXIT_ERROR
    return _watch_run(args, s)


def _watch_run(args, s: Settings) -> int:
    from . import api
    from .watch import default_since

    if not args.phrase and not api.watches(s):
        print('error: no watches yet: digestqa watch add "RQ-VAE semantic IDs" (or name a phrase)', file=sys.stderr)
        return EXIT_ERROR
    since = args.since or (None if args.until else default_since(s))
    found = api.whats_new(args.phrase, since, args.until, s)
    if args.json:
        print(json.dumps({"since": since, "until": args.until,
                          "watches": {k: [m.to_json() for m in v] for k, v in found.items()}}, ensure_ascii=False))
        return 0
    span = f"since {since}" if since else "all dates"
    print_matches(found, header=f"papers dated {span}{' until ' + args.until if args.until else ''}:")
    return 0


def cmd_mcp(args, s: Settings) -> int:
    from .mcp_server import serve

    serve(s)
    return 0


COMMANDS = {"sync": cmd_sync, "watch": cmd_watch, "mcp": cmd_mcp, "ingest": cmd_ingest, "ask": cmd_ask, "chat": cmd_chat, "papers": cmd_papers,
            "stats": cmd_stats, "doctor": cmd_doctor, "repair": cmd_repair, "ui": cmd_ui, "eval": cmd_eval,
            "bench": cmd_bench}
# Expected failures: one line "error: ..." and exit 2, never a traceback.
ONE_LINE_ERRORS = ("LLMError", "EmbedderError", "ValueError", "FileNotFoundError", "SyncError", "IndexDamaged",
                   "IndexReadOnly", "PermissionError")


def _command_index(argv: list[str]) -> int | None:
    """Position of the subcommand (the first word that is not a global option or its value)."""
    i = 0
    while i < len(argv):
        if argv[i] in ("--index", "--chroma-url", "--embedder"):
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    i = _command_index(argv)
    if i is not None and argv[i] == "bench":  # everything after `bench` belongs to python -m bench
        argv, rest = argv[:i + 1], [a for a in argv[i + 1:] if a != "--"]
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        args.bench_args = rest
    s = settings_from(args)
    try:
        return COMMANDS[args.command](args, s)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line, not a traceback, for expected failures
        if type(e).__name__ in ONE_LINE_ERRORS:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
