"""UI event handlers as plain Python (no gradio import), a thin shell over :mod:`rag.api`."""
from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from rag import api
from rag.config import Settings
from rag.types import Answer, FileError, Filters, IngestReport, Paper

from . import render
from .jobs import Job, JobQueue
from .uploads import Staged, check_upload, display_name, stage

Turn = tuple[str, Answer]  # (question, final answer)
Message = dict[str, str]
TABLE_HEADERS = ["ID", "Title", "Authors", "Date", "Categories", "Digests"]
TABLE_MAX_ROWS = 500  # newest first; a 20k-paper library is searched, not scrolled


def parse_date(value: str | None, name: str) -> str | None:
    """'' -> None; ISO YYYY-MM-DD -> itself; anything else -> ValueError with a fix hint."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{name} date {value!r} is not YYYY-MM-DD (e.g. 2025-12-04)") from None


def build_filters(since: str | None, until: str | None, category: str | None, author: str | None,
                  top_k: float | None) -> Filters:
    """Filter inputs -> :class:`Filters` (raises ValueError on a bad date or an inverted range)."""
    s, u = parse_date(since, "since"), parse_date(until, "until")
    if s and u and s > u:
        raise ValueError(f"since ({s}) is after until ({u}); swap them")
    return Filters(since=s, until=u, category=(category or "").strip() or None,
                   author=(author or "").strip() or None, top_k=int(top_k) if top_k else None)


def chat_messages(turns: Sequence[Turn]) -> list[Message]:
    """Chatbot messages (role/content HTML) for finished turns."""
    out: list[Message] = []
    for i, (question, answer) in enumerate(turns, start=1):
        out += [{"role": "user", "content": render.user_html(question)},
                {"role": "assistant", "content": render.answer_html(answer, i)}]
    return out


def short_authors(authors: Sequence[str], n: int = 3) -> str:
    return ", ".join(authors[:n]) + (" et al." if len(authors) > n else "")


def paper_row(p: Paper) -> list[Any]:
    return [p.arxiv_id or p.paper_id, p.title, short_authors(p.authors), p.date or "",
            ", ".join(p.categories), len({s.file for s in p.sources})]


def matches(p: Paper, query: str) -> bool:
    """Case-insensitive search over id, arXiv id, title and authors."""
    q = query.strip().lower()
    hay = " ".join([p.paper_id, p.arxiv_id or "", p.title, *p.authors]).lower()
    return all(word in hay for word in q.split())


class Controller:
    """Holds the settings and a paper cache; every method is one UI event."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._papers: dict[str, Paper] | None = None
        self._lock = threading.Lock()
        self.jobs = JobQueue(self._run_job)

    # -- paper cache ------------------------------------------------------------------
    def papers(self) -> dict[str, Paper]:
        with self._lock:
            if self._papers is None:
                self._papers = {p.paper_id: p for p in api.papers(self.settings)}
            return self._papers

    def refresh(self) -> None:
        with self._lock:
            self._papers = None

    # -- chat -------------------------------------------------------------------------
    def status(self, answer: Answer | None = None) -> str:
        return render.status_html(api.describe(self.settings), answer)

    def ask(self, question: str, turns: list[Turn] | None, since: str = "", until: str = "",
            category: str = "", author: str = "", top_k: float | None = None
            ) -> Iterator[tuple[list[Message], str, str, list[Turn], str]]:
        """Stream one chat turn: yields (messages, sources html, status html, turns, textbox)."""
        turns = list(turns or [])
        question = (question or "").strip()
        past = chat_messages(turns)
        panel = render.sources_panel_html(turns, self.papers()) if turns else render.sources_panel_html([], {})
        if not question:
            yield past, panel, self.status(), turns, ""
            return
        pending = past + [{"role": "user", "content": render.user_html(question)}]
        try:
            filters = build_filters(since, until, category, author, top_k)
            history = [a for _, a in turns]
            answer, partial = None, ""
            yield pending + [{"role": "assistant", "content": render.streaming_html("")}], panel, self.status(), turns, ""
            for item in api.ask_stream(question, self.settings, filters, history):
                if isinstance(item, Answer):
                    answer = item
                else:
                    partial += item
                    yield pending + [{"role": "assistant", "content": render.streaming_html(partial)}], panel, \
                        self.status(), turns, ""
            if answer is None:
                raise RuntimeError("the answerer returned no final answer")
        except Exception as exc:  # shown in the chat, the app keeps running
            yield pending + [{"role": "assistant", "content": render.error_html(str(exc) or type(exc).__name__)}], \
                panel, self.status(), turns, question
            return
        turns.append((question, answer))
        yield chat_messages(turns), render.sources_panel_html(turns, self.papers()), self.status(answer), turns, ""

    # -- library ----------------------------------------------------------------------
    def table(self, query: str = "") -> list[list[Any]]:
        rows = [p for p in self.papers().values() if matches(p, query or "")]
        rows.sort(key=lambda p: (p.date or "", p.title), reverse=True)
        return [paper_row(p) for p in rows[:TABLE_MAX_ROWS]]

    def stats_html(self) -> str:
        try:
            s = api.stats(self.settings)
        except Exception as e:  # a damaged index: say which file and what fixes it
            if type(e).__name__ not in ("IndexDamaged", "IndexReadOnly"):
                raise
            return f'<div class="dq-err">error: {render.esc(e)}</div>'
        cells = "".join(f'<div class="dq-stat"><div class="dq-stat-v">{render.esc(s[k])}</div>'
                        f'<div class="dq-stat-k">{k}</div></div>' for k in ("papers", "chunks", "sources") if k in s)
        info = " · ".join(f"{k}: {render.esc(s[k])}" for k in ("embedder", "collection", "index_dir") if k in s)
        warn = "".join(f'<div class="dq-err">{render.esc(p)}</div>'
                       for p in [*s.get("problems", ()), *([s["unfinished"]] if s.get("unfinished") else [])])
        return f'<div class="dq-stats">{cells}</div><div class="dq-stats-info">{info}</div>{warn}'

    def categories(self) -> list[str]:
        return sorted({c for p in self.papers().values() for c in p.categories})

    def ingest_uploads(self, uploads: Sequence[Any] | None,
                       progress: Callable[[int, int, str], None] | None = None) -> str:
        """Check, stage and ingest uploads and wait for the result (HTML, errors per file)."""
        job = self._submit(uploads, progress)
        if isinstance(job, str):
            return job
        self.jobs.wait(job)
        return job.result

    def submit_uploads(self, uploads: Sequence[Any] | None) -> str:
        """Check and stage uploads, queue their ingest and answer at once (the jobs panel follows it)."""
        job = self._submit(uploads, None)
        if isinstance(job, str):
            return job
        return self.jobs_html()

    def _submit(self, uploads, progress) -> Job | str:
        if not uploads:
            return '<div class="dq-report dq-warn">Choose one or more digest files first.</div>'
        staged, errors = self._stage_all(uploads)
        if not staged:
            return ingest_report_html(None, [], errors)
        size = sum(s.path.stat().st_size for s in staged)
        return self.jobs.submit([s.name for s in staged], size, (staged, errors, progress))

    def _run_job(self, job: Job) -> str:
        """Pre-check, then ingest one job's staged uploads (the worker thread). Staged copies that were
        not ingested are removed, whatever happens."""
        staged, errors, progress = job.payload

        def report_progress(done: int, total: int, stage: str) -> None:
            job.progress(done, total, stage)
            if progress:
                progress(done, total, stage)

        ingested = False
        try:
            job.progress(0, 0, "checking")
            staged, bad = self._precheck(staged)
            errors = errors + bad
            report = api.ingest([s.path for s in staged], self.settings, report_progress) if staged else None
            ingested = True
        finally:
            if not ingested:
                for s in staged:
                    if s.new:
                        s.path.unlink(missing_ok=True)
        if report is not None:
            self.refresh()
            errors += [self._rename(f, staged) for f in report.failures]
        return ingest_report_html(report, [s.name for s in staged], errors)

    def jobs_html(self) -> str:
        """Every recent ingest job: running ones with their progress, queued ones with their place."""
        jobs = self.jobs.jobs()
        if not jobs:
            return ""
        parts = []
        for job in reversed(jobs):
            label = render.esc(job.label())
            if job.state == "running":
                pct = f" {100 * job.done / job.total:.0f}%" if job.total else ""
                what = f"{render.esc(job.stage)} {job.done}/{job.total}" if job.total else render.esc(job.stage)
                parts.append(f'<div class="dq-job dq-running">Ingesting {label}: {what}{pct}</div>')
            elif job.state == "queued" and (place := self.jobs.position(job)):
                parts.append(f'<div class="dq-job dq-queued">Queued {label}: #{place} in line '
                             "(one ingest at a time per index)</div>")
            elif job.state in ("queued", "running"):  # started between the two looks
                parts.append(f'<div class="dq-job dq-running">Ingesting {label}: starting</div>')
            else:
                parts.append(f'<div class="dq-job">{label}:</div>{job.result}')
        return '<div class="dq-report">' + "".join(parts) + "</div>"

    def finished_jobs(self) -> int:
        """How many jobs have finished (the page refreshes its table when this moves)."""
        return sum(j.state in ("done", "failed") for j in self.jobs.jobs())

    def _stage_all(self, uploads: Sequence[Any]) -> tuple[list[Staged], list[FileError]]:
        staged, errors = [], []
        for up in uploads:
            src, name = display_name(up)
            err = check_upload(src, name, self.settings.upload_max_mb)
            if err:
                errors.append(err)
            else:
                staged.append(stage(src, name, self.settings.index_dir))
        staged = list({s.path: s for s in staged}.values())  # the same file twice in one batch
        return staged, errors

    def _precheck(self, staged: list[Staged]) -> tuple[list[Staged], list[FileError]]:
        """Parse-check uploads before ingesting (``rag.api.check_files`` when available).

        A file with any error is removed and not ingested at all, so nothing partial reaches the index.
        """
        check = getattr(api, "check_files", None)
        if check is None or not staged:
            return staged, []
        found = list(check([s.path for s in staged], self.settings))
        bad_files = {str(Path(f.file).resolve()) for f in found}
        keep = [s for s in staged if str(s.path) not in bad_files]
        for s in staged:
            if s not in keep and s.new:
                s.path.unlink(missing_ok=True)
        return keep, [self._rename(f, staged) for f in found]

    @staticmethod
    def _rename(err: FileError, staged: Sequence[Staged]) -> FileError:
        """Show the user's file name instead of the server-side staged path."""
        for s in staged:
            if Path(err.file).name == s.path.name:
                return FileError(s.name, err.message, err.line)
        return err


def ingest_report_html(report: IngestReport | None, names: Sequence[str], errors: Sequence[FileError]) -> str:
    """Summary of one upload batch, then one line per problem (all escaped)."""
    parts = []
    if report is not None:
        parts.append(f'<div class="dq-ok">Ingested {len(names)} file(s) in {report.seconds:.1f} s: '
                     f'{report.papers_new} new, {report.papers_updated} updated, {report.papers_unchanged} unchanged '
                     f'papers; {report.chunks_added} chunks added'
                     + (f', {report.files_skipped} file(s) unchanged' if report.files_skipped else "") + ".</div>")
        parts += [f'<div class="dq-ok">{render.esc(note)}</div>' for note in report.notes]
    if errors:
        items = "".join(f"<li>{render.esc(str(e))}</li>" for e in errors)
        parts.append(f'<div class="dq-err"><b>{len(errors)} problem(s)</b> — fix the file and upload it again:'
                     f"<ul>{items}</ul></div>")
    return '<div class="dq-report">' + "".join(parts) + "</div>"
