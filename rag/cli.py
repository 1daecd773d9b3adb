"""The `digestqa` command: ingest, remove, ask, chat, papers, stats, doctor, repair, ui, eval, bench."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
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
                   help="use a Chroma server (e.g. http://127.0.0.1:8000) instead of the embedded store "
                        "(default: $DIGESTQA_CHROMA_URL, else the embedded store in the index dir)")
    g.add_argument("--embedder", metavar="NAME", default=argparse.SUPPRESS,
                   help="minilm-onnx (offline), openai:<model> or st:<sentence-transformers model> "
                        "(default: $DIGESTQA_EMBEDDER or minilm-onnx)")
    return p


def _default(name: str):
    """A Settings field's default, for --help."""
    return Settings.model_fields[name].default
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
                   help="only papers from digests (or submitted) on/after; YYYY-MM or YYYY cover the whole "
                        "period (default: no lower limit)")
    g.add_argument("--until", metavar="YYYY-MM-DD", type=_date_arg,
                   help="only papers from digests (or submitted) on/before (default: no upper limit)")
    g.add_argument("--category", help="only papers in this arXiv category, e.g. cs.IR (default: any)")
    g.add_argument("--author", help="only papers with an author matching this, case-insensitive (default: any)")
    g.add_argument("--top-k", type=_top_k_arg, metavar="N",
                   help=f"number of papers handed to the answerer (default: {_default('top_k')}; 'which papers' "
                        f"questions get at least 10 with the extractive answerer)")
    g.add_argument("--answerer", choices=["auto", "llm", "extractive"], default=None,
                   help="auto: LLM when OPENAI_API_KEY/OPENAI_BASE_URL is set, else extractive "
                        "(default: $DIGESTQA_ANSWERER or auto)")
    g.add_argument("--model", help=f"chat model for the LLM answerer (default: $DIGESTQA_MODEL or {_default('model')})")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="digestqa", parents=[common],
                                     description="Ask questions of your arXiv daily digests, with citations.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("ingest", parents=[common], help="index digest files, folders or globs")
    p.add_argument("paths", nargs="+", help="files, folders (recursive) or globs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = sub.add_parser("remove", parents=[common], help="remove digests' papers from the index",
                       description="Remove digests from the index (catalogue, Chroma vectors, BM25). A paper "
                                   "that also came from another digest stays, with that digest's fields.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="digest files, folders or globs as ingested (they need not exist any more)")
    p.add_argument("--source", action="append", default=[], metavar="NAME",
                   help="an indexed digest by file name or trailing path, e.g. 15-May-2025/README.md "
                        "(repeatable; default: none; `digestqa stats --sources` lists them)")
    p.add_argument("--sample", action="store_true",
                   help="the bundled sample: its own index, and its digests if an older digestqa put them here")
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
    p = sub.add_parser("stats", parents=[common], help="papers, chunks, sources, embedder, index path")
    p.add_argument("--sources", action="store_true", help="also list every indexed digest file")
    sub.add_parser("doctor", parents=[common], help="check the index (catalogue vs Chroma vs BM25); exit 1 "
                                                    "when something needs `digestqa repair`")
    p = sub.add_parser("repair", parents=[common], help="fix what doctor finds: salvage a damaged catalogue, "
                                                        "re-embed missing vectors, rebuild BM25")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p = sub.add_parser("ui", parents=[common], help="open the web UI (Gradio)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--auth", metavar="USER:PASS", help="login; required when --host is not local (default: none)")
    p.add_argument("--upload-max-mb", type=float, default=None,
                   help=f"largest upload accepted, in MB (default: {_default('upload_max_mb'):g})")
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
    p.add_argument("--forget", metavar="URL", help="stop syncing this source (its papers stay indexed; default: none)")
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
    a.add_argument("--until", metavar="YYYY-MM-DD", help="papers dated on/before (default: no upper limit)")
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

UNITS = {"parse": "files", "embed": "passages", "re-embed": "passages", "questions": "questions"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 citation', '2 citations', '0 papers' (``many`` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


class ProgressBars:
    """A ``progress(done, total, stage)`` callback drawing one tqdm bar per stage on stderr ('parse' in files,
    then 'embed' in passages, ...). The bar is created at the stage's first call (done is 0 there for
    'embed') and advanced with ``update`` so tqdm's rate and ETA are measured from that moment; the total
    may be refined on the way (ingest estimates it for corpora of more than 1,000 papers)."""

    def __init__(self, file=None, units: dict[str, str] | None = None):
        self.file = file if file is not None else sys.stderr
        self.units = {**UNITS, **(units or {})}
        self.bars: dict[str, object] = {}
        self.closed: set[str] = set()

    def __call__(self, done: int, total: int, stage: str, note: str | None = None) -> None:
        from tqdm import tqdm

        if stage in self.closed:
            if done >= total:
                return
            self.closed.discard(stage)  # the stage starts again (the next file set, the next question set)
            del self.bars[stage]
        bar = self.bars.get(stage)
        if bar is None:
            width = max(6, *map(len, self.units))
            bar = self.bars[stage] = tqdm(total=total, desc=f"{stage:>{width}}", unit=" " + self.units.get(stage, "items"),
                                          file=self.file, leave=True, dynamic_ncols=True, smoothing=0.1,
                                          mininterval=0.5)
        if bar.disable:
            return
        bar.total = max(total, done)
        if note:
            bar.set_postfix_str(note[:40], refresh=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            self.closed.add(stage)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _progress_bar(quiet: bool) -> Callable[[int, int, str], None] | None:
    return None if quiet else ProgressBars()


def print_report(r: IngestReport, out=None) -> None:
    out = out or sys.stdout  # looked up per call (not bound at import), so redirections apply
    embed_s = r.timings.get("embed", 0.0)
    rate = f" ({r.passages_embedded / embed_s:.1f}/s)" if r.passages_embedded and embed_s > 0 else ""
    print(f"files: {r.files} ({r.files_skipped} unchanged, skipped) | papers: {r.papers_new} new, "
          f"{r.papers_updated} updated, {r.papers_unchanged} unchanged | chunks: +{r.chunks_added} "
          f"-{r.chunks_removed} | embedded: {plural(r.passages_embedded, 'passage')}{rate} | "
          f"failures: {len(r.failures)} | {r.seconds:.1f} s", file=out)
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
    _note_mixed_sample(s)
    return EXIT_FAILED_FILES if report.failures else 0


def _note_mixed_sample(s: Settings) -> None:
    """Before the sample had its own index, `ask` put it into the user's: say how to take it out."""
    from .ingest import is_sample_file
    from . import api

    mixed = [f for f in api.sources(s) if is_sample_file(f)]
    if mixed and len(mixed) < len(api.sources(s)):
        print(f"note: this index also holds the bundled sample ({plural(len(mixed), 'digest')}, put there by an "
              f"earlier digestqa); `digestqa remove --sample` takes its papers out", file=sys.stderr)


def print_remove_report(r, s: Settings, out=sys.stdout) -> None:
    from . import api

    if r.files:
        print(f"removed {plural(len(r.files), 'digest')}: {plural(r.papers_removed, 'paper')} removed, "
              f"{plural(len(r.papers_kept), 'paper')} kept (also in other digests) | chunks: +{r.chunks_added} "
              f"-{r.chunks_removed} | {r.seconds:.1f} s", file=out)
        for f in r.files:
            print(f"  - {f}", file=out)
        if r.papers_kept:
            titles = {p.paper_id: p.title for p in api.papers(s) if p.paper_id in set(r.papers_kept)}
            for pid in r.papers_kept:
                print(f"  kept {pid}: {_clip(titles.get(pid, ''), 80)}", file=out)
    if r.sample_index:
        print(f"removed the bundled sample's index {r.sample_index}", file=out)
    if not r.files and not r.sample_index:
        print("nothing to remove", file=out)


def cmd_remove(args, s: Settings) -> int:
    from . import api

    if not (args.paths or args.source or args.sample):
        print("error: say what to remove: PATH, --source NAME or --sample", file=sys.stderr)
        return EXIT_ERROR
    try:
        report = api.remove(args.paths, args.source, args.sample, s, _progress_bar(args.quiet))
    except KeyboardInterrupt:
        print("interrupted: the index still answers; run the same command again to finish", file=sys.stderr)
        return 130
    print_remove_report(report, s)
    return 0


def print_new_matches(new_ids: set[str], s: Settings, out=None) -> None:
    """After an ingest or sync: the new papers matching each watch."""
    from . import api

    if not new_ids:
        return
    found = api.whats_new(settings=s, paper_ids=new_ids)
    print_matches(found, out, header=f"watches ({plural(len(new_ids), 'new paper')}):")


def print_matches(found: dict, out=None, header: str | None = None) -> None:
    out = out or sys.stdout
    if header:
        print(header, file=out)
    for phrase, ms in found.items():
        print(f'  "{phrase}": {plural(len(ms), "matching paper")}', file=out)
        for m in ms:
            print(f"    {(m.arxiv_id or m.paper_id):<16} {m.date or '':<10} {_clip(m.title, 90)}", file=out)
            print(f"      {m.field}: \"{_clip(m.sentence, 160)}\"", file=out)
            print(f"      why: {m.why}", file=out)


# ---------------------------------------------------------------- ask / chat

def _answer_settings(s: Settings) -> Settings:
    """The index to answer from: this one, or while it is empty the bundled sample's own index (built on
    first use), so the sample never mixes into the user's digests."""
    from . import api
    from .config import SCHEMA_VERSION, schema_change

    st = api.stats(s)
    if not st["papers"] and (st.get("unfinished") or st["sources"]):
        raise ValueError(f"index {s.index_dir} has no papers yet: an ingest into it was interrupted before it "
                         "finished; run that ingest again to finish it (what it embedded is kept)")
    if st["schema"] < SCHEMA_VERSION:
        print(f"note: index {s.index_dir} was built by schema {st['schema']}: answering from it; the next "
              f"`digestqa ingest` re-embeds its {plural(st['papers'], 'paper')} ({schema_change(st['schema'])})",
              file=sys.stderr)
    if st["papers"]:
        return s
    sample = api.sample_settings(s)
    if api.stats(sample)["papers"]:
        print(f"index {s.index_dir} is empty: answering from the bundled sample ({sample.index_dir}); "
              "`digestqa ingest PATH` indexes your digests", file=sys.stderr)
        return sample
    print(f"index {s.index_dir} is empty: ingesting the bundled sample corpus "
          f"({plural(len(api.sample_paths()), 'digest')}) into its own index {sample.index_dir} first; "
          "`digestqa ingest PATH` indexes your digests (the sample stays apart)...", file=sys.stderr)
    report = api.ensure_sample(sample, _progress_bar(not sys.stderr.isatty()))
    if report:
        print_report(report, out=sys.stderr)
    return sample


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
    load = a.timings_ms.get("load", 0.0)
    lines.append(f"answerer: {a.answerer}{model}, {a.reason} | embedder: {a.embedder} | "
                 f"{a.timings_ms.get('total', 0):.0f} ms" + (f" (loading the index: {load:.0f} ms)" if load >= 50 else ""))
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
    s = _answer_settings(s)
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
    s = _answer_settings(s)
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
            if last.interpreted:
                print(f"  (answered as: {last.interpreted})")
            print(f"  ({plural(len(last.citations), 'citation')}; /sources for details)")


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
    print(f"{plural(len(papers), 'paper')} (* = derived title)", file=sys.stderr)
    return 0


def cmd_stats(args, s: Settings) -> int:
    from . import api

    st = api.stats(s)
    files = st.pop("source_files", [])
    for k, v in st.items():
        print(f"{k:>11}: {v}")
    sample = api.sample_settings(s)
    if Path(sample.index_dir).is_dir():
        n = api.stats(sample)["papers"]
        print(f"{'sample':>11}: {plural(n, 'paper')} in {sample.index_dir} (answers come from it while this index "
              "is empty; `digestqa remove --sample` deletes it)")
    if args.sources:
        for f in files:
            print(f"  {f}")
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

    # quiet: no Gradio banner (its "set `share=True` in `launch()`" hint is for Python callers)
    app = launch(s, host=args.host, port=args.port, auth=args.auth, prevent_thread_lock=True, quiet=True)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"digestqa UI on http://{shown}:{args.port}/ (index {s.index_dir}); Ctrl+C stops it", flush=True)
    app.block_thread()
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
            print(f"{src.kind:<5} {src.url}  ({plural(len(days), 'file')}{', last ' + days[-1] if days else ''}; "
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
    print(f"sync {r.url} ({r.kind}): fetched {plural(len(r.fetched), 'file')}: {', '.join(r.fetched)}")
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


COMMANDS = {"sync": cmd_sync, "watch": cmd_watch, "mcp": cmd_mcp, "ingest": cmd_ingest, "remove": cmd_remove,
            "ask": cmd_ask, "chat": cmd_chat, "papers": cmd_papers, "stats": cmd_stats, "doctor": cmd_doctor,
            "repair": cmd_repair, "ui": cmd_ui, "eval": cmd_eval, "bench": cmd_bench}
# Expected failures: one line "error: ..." and exit 2, never a traceback.
ONE_LINE_ERRORS = ("LLMError", "EmbedderError", "ValueError", "FileNotFoundError", "SyncError", "IndexDamaged",
                   "IndexReadOnly", "PermissionError", "ChromaUnavailable")


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
    """Run one command; a closed stdout (``digestqa papers | head``) ends it quietly, as SIGPIPE ends a
    Unix tool (exit 141), instead of a BrokenPipeError traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # (inside the try: a pipe closed early fails here, not at exit)
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 141


def _main(argv: list[str] | None = None) -> int:
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
