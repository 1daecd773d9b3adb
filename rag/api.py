"""The public API: everything ui/, eval/ and bench/ may call.

All functions take an optional :class:`~rag.config.Settings`; ``None`` means ``Settings.from_env()``.
Heavy modules (chromadb, onnxruntime, llama-index) are imported lazily so the CLI starts fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

from .config import Settings
from .types import Answer, Filters, Hit, IngestReport, Paper

# progress(done, total, message)
Progress = Callable[[int, int, str], None]


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else Settings.from_env()


def sample_paths() -> list[Path]:
    """The bundled sample corpus (the five seed digests)."""
    from importlib.resources import files

    root = Path(str(files("rag.data") / "sample"))
    return sorted(p for p in root.iterdir() if p.suffix == ".txt")


def ingest(paths: Iterable[str | Path], settings: Settings | None = None,
           progress: Progress | None = None, on_wait: Callable[[str], None] | None = None) -> IngestReport:
    """Parse, merge, chunk, embed and upsert files/folders/globs into the index. One ingest per index
    at a time: a second one waits, calling ``on_wait`` with "another ingest is running (pid N); waiting"
    (default: printed to stderr)."""
    from .ingest import ingest_paths
    from .store import guard

    s = _settings(settings)
    with guard(s):
        return ingest_paths(list(paths), s, progress, on_wait)


def check_files(paths: Iterable[str | Path], settings: Settings | None = None) -> list:
    """Parse only (index nothing): the FileErrors these files would produce, e.g. to vet uploads."""
    from .ingest import check_paths

    return check_paths(list(paths), _settings(settings))


def ingest_papers(records: Iterable[Paper], settings: Settings | None = None, name: str = "records",
                  progress: Progress | None = None) -> IngestReport:
    """Index ready-made :class:`Paper` records (e.g. a BEIR corpus) as if they came from one file ``name``."""
    from .ingest import ingest_records

    return ingest_records(list(records), name, _settings(settings), progress)


def ensure_sample(settings: Settings | None = None, progress: Progress | None = None) -> IngestReport | None:
    """Ingest the bundled sample when the index is empty; returns None when it already had papers."""
    s = _settings(settings)
    if stats(s)["papers"]:
        return None
    return ingest(sample_paths(), s, progress)


def retrieve(question: str, settings: Settings | None = None, filters: Filters | None = None,
             mode: str = "hybrid") -> list[Hit]:
    """Retrieval aggregated per paper, best first. mode: 'hybrid' (dense + BM25 fused by RRF), 'dense', 'bm25'."""
    from .retrieve import retrieve_hits
    from .store import guard

    from .types import check_filters

    s = _settings(settings)
    with guard(s):
        return retrieve_hits(question, s, check_filters(filters or Filters()), mode=mode)


def ask(question: str, settings: Settings | None = None, filters: Filters | None = None,
        history: list | None = None) -> Answer:
    """Retrieve and answer with citations (no streaming)."""
    answer = None
    for item in ask_stream(question, settings, filters, history):
        if isinstance(item, Answer):
            answer = item
    assert answer is not None
    return answer


def ask_stream(question: str, settings: Settings | None = None, filters: Filters | None = None,
               history: list | None = None) -> Iterator[str | Answer]:
    """Yield answer text deltas as they arrive, then the final :class:`Answer`.

    ``history`` is the chat so far: earlier :class:`Answer` objects (or (question, answer text) pairs). A
    follow-up ("and who are its authors?", "它的作者是谁？") is resolved to the papers those answers cited.
    """
    from .answer import answer_stream
    from .store import guard

    from .types import check_filters

    s = _settings(settings)
    f = check_filters(filters or Filters())
    with guard(s):
        yield from answer_stream(question, s, f, history or [])


def papers(settings: Settings | None = None) -> list[Paper]:
    """Every merged paper record in the index."""
    from .store import guard, open_store

    s = _settings(settings)
    with guard(s):
        store = open_store(s)
        try:
            return store.all_papers()
        finally:
            store.close()


def stats(settings: Settings | None = None) -> dict:
    """papers, chunks, sources (files), embedder, index path, collection name."""
    from .store import guard, open_store

    s = _settings(settings)
    with guard(s):
        store = open_store(s)
        try:
            return store.stats()
        finally:
            store.close()


def doctor(settings: Settings | None = None) -> list:
    """Check the index (catalogue vs Chroma vs BM25: counts and ids) without changing anything:
    :class:`rag.doctor.Finding` lines, ``ok`` False for each problem ``repair`` fixes."""
    from .doctor import check

    return check(_settings(settings))


def repair(settings: Settings | None = None, progress: Progress | None = None,
           on_wait: Callable[[str], None] | None = None):
    """Fix the index: salvage a damaged catalogue, re-merge papers, re-make chunk rows, re-embed missing
    vectors, delete orphan ones, rebuild BM25 (:class:`rag.doctor.RepairReport`)."""
    from .doctor import repair as fix

    return fix(_settings(settings), progress, on_wait)


def describe(settings: Settings | None = None) -> dict:
    """Which answerer/model/embedder is in use, and why."""
    s = _settings(settings)
    answerer, reason = s.llm_choice()
    return {"answerer": answerer, "model": s.model if answerer == "llm" else None,
            "embedder": s.embedder, "reason": reason, "index_dir": s.index_dir,
            "chroma_url": s.chroma_url, "collection": s.collection_name}
