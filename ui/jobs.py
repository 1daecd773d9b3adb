"""Ingest jobs for the UI: uploads are queued and ingested by one worker thread (one writer per index),
so the upload click answers at once and the page shows every job's progress; queued jobs run smallest
first, so a tiny upload is not stuck behind a big one that has not started yet."""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

# run(job) -> result HTML; it reports progress through job.progress
Runner = Callable[["Job"], str]


@dataclass
class Job:
    id: int
    names: list[str]
    size: int  # bytes uploaded (queued jobs run smallest first)
    state: str = "queued"  # queued | running | done | failed
    stage: str = ""
    done: int = 0
    total: int = 0
    result: str = ""
    submitted: float = field(default_factory=time.monotonic)
    finished: float | None = None
    payload: object = None  # what the runner needs (the staged files)

    def progress(self, done: int, total: int, stage: str) -> None:
        self.done, self.total, self.stage = done, total, stage

    def label(self) -> str:
        names = ", ".join(self.names[:3]) + (f" +{len(self.names) - 3}" if len(self.names) > 3 else "")
        return f"job {self.id} ({names})"


class JobQueue:
    """One worker thread running queued jobs one at a time."""

    def __init__(self, run: Runner, keep: int = 20):
        self._run = run
        self._keep = keep
        self._jobs: list[Job] = []
        self._ids = itertools.count(1)
        self._cv = threading.Condition()
        self._worker: threading.Thread | None = None

    def submit(self, names: list[str], size: int, payload: object) -> Job:
        with self._cv:
            job = Job(next(self._ids), list(names), size, payload=payload)
            self._jobs.append(job)
            self._forget_old()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name="digestqa-ingest", daemon=True)
                self._worker.start()
            self._cv.notify_all()
        return job

    def jobs(self) -> list[Job]:
        with self._cv:
            return list(self._jobs)

    def position(self, job: Job) -> int:
        """1 = runs next; 0 = running or finished (read under the lock: the worker may start it meanwhile)."""
        with self._cv:
            queued = sorted((j for j in self._jobs if j.state == "queued"), key=lambda j: (j.size, j.id))
        return queued.index(job) + 1 if job in queued else 0

    def wait(self, job: Job, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while job.state in ("queued", "running"):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def _next(self) -> Job | None:
        queued = [j for j in self._jobs if j.state == "queued"]
        return min(queued, key=lambda j: (j.size, j.id)) if queued else None

    def _loop(self) -> None:
        while True:
            with self._cv:
                job = self._next()
                if job is None:
                    if not self._cv.wait(timeout=30):
                        self._worker = None
                        return
                    continue
                job.state = "running"
            try:
                result, state = self._run(job), "done"
            except Exception as e:  # noqa: BLE001 - shown in the page, the worker goes on
                result, state = f'<div class="dq-err">{type(e).__name__}: {e}</div>', "failed"
            with self._cv:
                job.result, job.state, job.finished = result, state, time.monotonic()
                self._cv.notify_all()

    def _forget_old(self) -> None:
        done = [j for j in self._jobs if j.state in ("done", "failed")]
        for j in done[:-self._keep] if len(done) > self._keep else ():
            self._jobs.remove(j)
