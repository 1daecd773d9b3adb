"""``python -m eval.local_llm run``: one index, the extractive answerer and a local LLM, side by side.

Layout of the run dir::

    index-<corpus>/             the index both answerers read (index-sample: the bundled sample; --corpus)
    <set>/extractive/           report.json, report.md, answers.jsonl, plot.png (the harness's files)
    <set>/llm/                  the same for the LLM path, plus llm_calls.jsonl (one record per request)
    server.log                  llama_cpp.server's log (load info, per-request timings)
    summary.md, summary.json    both answerers per question set, per kind, and the slowest questions

Per question the LLM report.json gains ``llm``: prompt tokens (the server's count, see
:mod:`eval.llm_record`), seconds of the LLM request, time to first token, number of requests.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from .local_llm import ModelSpec, get_spec, install

SUMMARY_METRICS = ("citation_precision", "citation_recall", "citation_validity", "fact_recall",
                   "abstention_accuracy", "language_match", "support", "hit@5")
KIND_METRICS = ("citation_recall", "citation_precision", "fact_recall", "abstention_accuracy", "language_match")


@dataclass(frozen=True)
class RunSet:
    """One question set of a run and the corpus its questions are about (None: the bundled sample)."""

    label: str
    questions: str | None
    corpus: tuple[str, ...] | None = None
    held_out: bool = False  # a test split: progress lines never show its questions

    @property
    def corpus_key(self) -> str:
        if not self.corpus:
            return "sample"
        return "corpus-" + hashlib.sha1("\0".join(self.corpus).encode()).hexdigest()[:8]


def bundled_run_sets(names: list[str] | None, shared: str | None) -> list[RunSet]:
    """The bundled dev/test sets (``eval/sets``) named by set or corpus name (none: all) whose corpus is here."""
    from .local_llm import ModelError
    from .sets import CORPORA, bundled_sets, corpus_paths, find_shared

    known = bundled_sets()
    bad = [n for n in names or [] if n not in CORPORA and n not in {s.name for s in known}]
    if bad:
        raise ModelError(f"unknown set {', '.join(bad)}: choose from {', '.join(s.name for s in known)} "
                         f"or {', '.join(CORPORA)}")
    root, out = find_shared(shared), []
    for qs in known:
        if names and qs.name not in names and qs.corpus not in names:
            continue
        paths = corpus_paths(qs.corpus, root)
        if paths is None:
            print(f"{qs.name}: skipped, its corpus is not on this machine (pass --shared DIR)", file=sys.stderr)
            continue
        corpus = None if qs.corpus == "sample" else tuple(str(p) for p in paths)
        out.append(RunSet(qs.name, str(qs.path), corpus, held_out=qs.split == "test"))
    if not out:
        raise ModelError("no question set to run (their corpora are not on this machine: pass --shared DIR)")
    return out


def parse_sets(values: list[str], corpus: list[str] | None = None) -> list[RunSet]:
    """``[LABEL=]FILE`` arguments, all over ``corpus`` (None: the bundled sample) -> RunSets."""
    corpus_t = tuple(str(c) for c in corpus) if corpus else None
    sets = []
    for v in values:
        label, sep, path = v.partition("=")
        if not sep:
            label, path = Path(v).stem, v
        sets.append(RunSet(label, path, corpus_t))
    labels = [s.label for s in sets]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"error: question set labels must differ: {labels} (use LABEL=FILE)")
    return sets


def per_kind_subset(qpath: str | None, n: int, dest: Path) -> str:
    """Write ``n`` questions of each kind (evenly spaced through the file, file order kept) to ``dest``."""
    from .questions import load_questions

    qs = load_questions(qpath)
    keep: set[str] = set()
    for kind in dict.fromkeys(q.kind for q in qs):
        of_kind = [q for q in qs if q.kind == kind]
        step = len(of_kind) / min(n, len(of_kind))
        keep |= {of_kind[int(i * step)].id for i in range(min(n, len(of_kind)))}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in qs if q.id in keep),
                    encoding="utf-8")
    return str(dest)


def _progress(label: str, held_out: bool = False):
    """One progress line; a held-out set's question texts are never printed (a test question seen in a log
    is no longer unseen)."""
    def show(done: int, total: int, msg: str) -> None:
        msg = "(held out)" if held_out and done < total else msg
        print(f"\r[{label} {done}/{total}] {msg[:60]:<60}", end="" if done < total else "\n",
              file=sys.stderr, flush=True)
    return show


def _tagging_progress(label: str, ids: list[str], proxy, held_out: bool = False):
    """Progress that also tells the proxy which question the next LLM request belongs to."""
    show = _progress(label, held_out)

    def progress(done: int, total: int, msg: str) -> None:
        if total == len(ids) and done < total and not msg.startswith("ingest"):
            proxy.tag = ids[done]
        show(done, total, msg)
    return progress


def base_settings(args: argparse.Namespace, index_dir: Path):
    from rag.config import Settings

    over: dict[str, Any] = {"index_dir": str(index_dir), "openai_api_key": None, "openai_base_url": None}
    if args.top_k:
        over["top_k"] = args.top_k
    return Settings.from_env().model_copy(update=over)


def prepare_index(rs: RunSet, settings) -> dict:
    """Ingest the set's corpus (or the bundled sample) into its index; both answerers read it."""
    from rag import api

    paths = list(rs.corpus) if rs.corpus else api.sample_paths()
    rep = api.ingest(paths, settings, _progress(f"ingest {rs.corpus_key}"))
    if not rep.ok:
        print(f"warning: ingest failures: {rep.failures}", file=sys.stderr)
    return {"paths": [str(p) for p in paths], "papers_new": rep.papers_new, "chunks_added": rep.chunks_added,
            "seconds": round(rep.seconds, 1)}


def run_extractive(rs: RunSet, settings, out: Path, limit: int | None):
    from .harness import run_eval

    s = settings.model_copy(update={"answerer": "extractive"})
    return run_eval(rs.questions, s, out, None, _progress(f"{rs.label} extractive", rs.held_out), limit=limit,
                    sample_if_empty=False)


def llm_settings(settings, base_url: str, spec: ModelSpec, timeout: float):
    """The real OpenAI-compatible path: base URL, model name; no retries (the server has one slot)."""
    return settings.model_copy(update={"answerer": "llm", "openai_base_url": base_url, "openai_api_key": None,
                                       "model": spec.name, "llm_timeout": timeout, "llm_stream_timeout": timeout,
                                       "llm_retries": 0})


def run_llm(rs: RunSet, settings, out: Path, limit: int | None, proxy) -> Any:
    from .harness import run_eval
    from .questions import load_questions

    ids = [q.id for q in load_questions(rs.questions)[: limit or None]]
    start = len(proxy.records)
    rep = run_eval(rs.questions, settings, out, None, _tagging_progress(f"{rs.label} llm", ids, proxy, rs.held_out),
                   limit=limit, sample_if_empty=False)
    calls = proxy.settled_records()[start:]  # the last answer's token count may still be running
    attach_calls(rep.report_json, calls)
    return rep


def per_question_llm(calls: list[dict]) -> dict[str, dict]:
    """question id -> {requests, prompt_tokens, llm_seconds, ttft_seconds} from the proxy's records."""
    out: dict[str, dict] = {}
    for c in calls:
        d = out.setdefault(c.get("tag") or "?", {"requests": 0, "prompt_tokens": 0, "llm_seconds": 0.0,
                                                  "ttft_seconds": None, "completion_chunks": 0})
        d["requests"] += 1
        d["prompt_tokens"] += c.get("prompt_tokens") or 0
        d["llm_seconds"] = round(d["llm_seconds"] + (c.get("seconds") or 0.0), 3)
        d["completion_chunks"] += c.get("completion_chunks") or 0
        if d["ttft_seconds"] is None and c.get("ttft_seconds") is not None:
            d["ttft_seconds"] = round(c["ttft_seconds"], 3)
    return out


def attach_calls(report_json: Path, calls: list[dict]) -> None:
    """Add each question's LLM request numbers to report.json (``per_question[i]['llm']``)."""
    doc = json.loads(report_json.read_text(encoding="utf-8"))
    by_q = per_question_llm(calls)
    for r in doc["per_question"]:
        r["llm"] = by_q.get(r["id"], {"requests": 0})
    report_json.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    with (report_json.parent / "llm_calls.jsonl").open("w", encoding="utf-8") as f:
        for c in calls:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------ summary

def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _pct(xs: list[float], p: float) -> float | None:
    from .metrics import percentile

    return percentile(xs, p)


def row_numbers(doc: dict) -> dict[str, Any]:
    """The summary row of one run: quality metrics, abstention counts, prompt tokens, seconds."""
    m, recs = doc["metrics"], doc["per_question"]
    secs = [r["metrics"]["latency_ms"] / 1000 for r in recs if r["metrics"].get("latency_ms") is not None]
    toks = [r["llm"]["prompt_tokens"] for r in recs if (r.get("llm") or {}).get("prompt_tokens")]
    answerable = [r for r in recs if r["answerable"]]
    row = {k: m.get(k) for k in SUMMARY_METRICS}
    row.update(questions=len(recs), answerable=len(answerable),
               abstained_answerable=sum(r["abstained"] for r in answerable),
               answered_unanswerable=sum(not r["abstained"] for r in recs if not r["answerable"]),
               errors=sum(bool(r.get("error")) for r in recs),
               prompt_tokens_mean=_mean(toks), prompt_tokens_p50=_pct(toks, 50), prompt_tokens_max=max(toks, default=None),
               seconds_mean=_mean(secs), seconds_p50=_pct(secs, 50), seconds_p95=_pct(secs, 95))
    return row


def _f(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def overall_md(rows: list[tuple[str, str, dict]]) -> list[str]:
    head = ["set", "answerer", "n", "cit. precision", "cit. recall", "cit. validity", "fact recall",
            "abstention acc.", "abstained / answerable", "answered / unanswerable", "language match", "support",
            "hit@5", "prompt tokens mean / p50 / max", "s per question mean / p50 / p95", "errors"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, answerer, r in rows:
        cells = [label, answerer, _f(r["questions"]), *[_f(r[k]) for k in ("citation_precision", "citation_recall",
                 "citation_validity", "fact_recall", "abstention_accuracy")],
                 f"{r['abstained_answerable']} / {r['answerable']}",
                 f"{r['answered_unanswerable']} / {r['questions'] - r['answerable']}",
                 _f(r["language_match"]), _f(r["support"]), _f(r["hit@5"]),
                 " / ".join(_f(r[k], 0) for k in ("prompt_tokens_mean", "prompt_tokens_p50", "prompt_tokens_max")),
                 " / ".join(_f(r[k], 2) for k in ("seconds_mean", "seconds_p50", "seconds_p95")), _f(r["errors"])]
        out.append("| " + " | ".join(cells) + " |")
    return out


def kinds_md(extr: dict | None, llm: dict) -> list[str]:
    """Per kind: 'extractive / llm' for each metric, plus the LLM's abstentions, prompt tokens and seconds."""
    head = ["kind", "n", *KIND_METRICS, "llm abstained", "llm prompt tokens", "llm s/question"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, m in llm["per_kind"].items():
        e = (extr or {}).get("per_kind", {}).get(kind, {})
        recs = [r for r in llm["per_question"] if r["kind"] == kind]
        toks = [r["llm"]["prompt_tokens"] for r in recs if (r.get("llm") or {}).get("prompt_tokens")]
        secs = [r["metrics"]["latency_ms"] / 1000 for r in recs if r["metrics"].get("latency_ms") is not None]
        cells = [kind, str(len(recs)), *[f"{_f(e.get(k))} / {_f(m.get(k))}" for k in KIND_METRICS],
                 f"{sum(r['abstained'] for r in recs)}", _f(_mean(toks), 0), _f(_mean(secs), 1)]
        out.append("| " + " | ".join(cells) + " |")
    return out


def write_summary(out: Path, spec: ModelSpec, info: dict, results: list[tuple[str, dict | None, dict]]) -> str:
    rows = []
    for label, extr, llm in results:
        if extr:
            rows.append((label, "extractive", row_numbers(extr)))
        rows.append((label, f"llm {spec.name}", row_numbers(llm)))
    lines = [f"# Local LLM eval: {spec.description} vs the extractive answerer", "",
             f"server: {info['server']}", f"prompt tokens: {info['prompt_tokens_from']}",
             f"seconds per question: digestqa's own timing of retrieve + answer (harness latency)", "",
             *overall_md(rows), ""]
    for label, extr, llm in results:
        lines += [f"## {label}: per kind (extractive / llm)", "", *kinds_md(extr, llm), ""]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text, encoding="utf-8")
    doc = {"model": spec.name, "info": info, "rows": [{"set": l, "answerer": a, **r} for l, a, r in rows]}
    (out / "summary.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return text


def _load(rep) -> dict:
    return json.loads(Path(rep.report_json).read_text(encoding="utf-8"))


def _llama_version() -> str:
    try:
        from importlib.metadata import version

        return version("llama_cpp_python")
    except Exception:  # noqa: BLE001
        return "unknown"


def run_local(args: argparse.Namespace) -> int:
    from .llm_record import LlamaServer, RecordingProxy

    spec = get_spec(args.model)
    gguf = install(spec, args.cache)
    out = Path(args.out or f"runs/local-llm-{spec.name}-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    sets = parse_sets(args.questions, args.corpus) if args.questions else bundled_run_sets(args.sets, args.shared)
    if args.per_kind:
        sets = [replace(rs, questions=per_kind_subset(rs.questions, args.per_kind, out / f"{rs.label}.questions.jsonl"))
                for rs in sets]
    settings = {rs.corpus_key: base_settings(args, out / f"index-{rs.corpus_key}") for rs in sets}
    first = settings[sets[0].corpus_key]
    info = {"model": spec.name, "gguf": str(gguf), "sha256": spec.sha256, "llama_cpp_python": _llama_version(),
            "threads": args.threads, "n_ctx": args.ctx, "timeout_s": args.timeout, "limit": args.limit,
            "per_kind": args.per_kind, "question_sets": {rs.label: rs.questions for rs in sets},
            "top_k": first.top_k, "max_answer_tokens": first.max_answer_tokens,
            "prompt_tokens_from": "the server's usage.prompt_tokens for the same messages (max_tokens=1 replay)",
            "ingest": {key: prepare_index(next(rs for rs in sets if rs.corpus_key == key), s)
                       for key, s in settings.items()}}
    extr = {rs.label: None if args.no_extractive else
            run_extractive(rs, settings[rs.corpus_key], out / rs.label / "extractive", args.limit)
            for rs in sets}
    results = []
    with LlamaServer(gguf, spec.name, args.port, args.threads, args.ctx, out / "server.log") as srv:
        info["server"] = " ".join(srv.command()[1:])
        with RecordingProxy(srv.base_url.rsplit("/v1", 1)[0], log_file=out / "llm_requests.jsonl") as proxy:
            for rs in sets:
                s = llm_settings(settings[rs.corpus_key], proxy.base_url, spec, args.timeout)
                t0 = time.perf_counter()
                rep = run_llm(rs, s, out / rs.label / "llm", args.limit, proxy)
                info.setdefault("llm_wall_seconds", {})[rs.label] = round(time.perf_counter() - t0, 1)
                results.append((rs.label, _load(extr[rs.label]) if extr[rs.label] else None, _load(rep)))
    print(write_summary(out, spec, info, results))
    print(f"wrote {out / 'summary.md'}, {out / 'summary.json'} and per-set run dirs under {out}")
    return 0
