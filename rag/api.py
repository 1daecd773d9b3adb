"""The public API: everything ui/, eval/ and bench/ may call.

All functions take an optional :class:`~rag.config.Settings`; ``None`` means ``Settings.from_env()``.
Heavy modules (chromadb, onnxruntime, llama-index) are imported lazily so the CLI starts fast.
"""
from __future__ import annotations

import time
from dataclasses import replace
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
           progress: Progress | None = None) -> IngestReport:
    """Parse, merge, chunk, embed and upsert files/folders/globs into the index."""
    from .ingest import ingest_paths

    return ingest_paths(list(paths), _settings(settings), progress)


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
    """Ingest the bundled sample into this index when it is empty; returns None when it already had papers."""
    s = _settings(settings)
    if stats(s)["papers"]:
        return None
    return ingest(sample_paths(), s, progress)


SAMPLE_INDEX = "sample"  # the bundled sample's own index: <index dir>/sample


def sample_settings(settings: Settings | None = None) -> Settings:
    """Settings of the bundled sample's own index, kept apart from the user's (``<index dir>/sample``,
    always the embedded Chroma), so the sample never mixes into the answers from the user's digests."""
    s = _settings(settings)
    return s.model_copy(update={"index_dir": str(Path(s.index_dir).expanduser() / SAMPLE_INDEX), "chroma_url": None})


def sources(settings: Settings | None = None) -> list[str]:
    """Every indexed digest file (as ingested: absolute paths, or the name given to ``ingest_papers``)."""
    from .store import open_store

    store = open_store(_settings(settings))
    try:
        return store.file_paths()
    finally:
        store.close()


def remove(paths: Iterable[str | Path] = (), names: Iterable[str] = (), sample: bool = False,
           settings: Settings | None = None, progress: Progress | None = None):
    """Remove digests from the index (catalogue, Chroma, BM25): files/folders/globs as given to ``ingest``
    (they need not exist any more), source names (a file name or trailing path, e.g. ``README.md`` or
    ``15-May-2025/README.md``), and with ``sample`` the bundled sample (its digests in this index and
    its own index). Papers that also came from other digests stay, re-merged from those.
    Raises ValueError naming what matched nothing (and removes nothing)."""
    import shutil

    from .ingest import match_sources, remove_files

    s = _settings(settings)
    files, unmatched = match_sources(sources(s), list(paths), list(names), sample)
    if unmatched:
        raise ValueError(f"no indexed digest matches {', '.join(map(repr, unmatched))}; "
                         f"`digestqa stats --sources` lists the indexed digests (nothing was removed)")
    report = remove_files(files, s, progress)
    sample_dir = Path(sample_settings(s).index_dir)
    if sample and sample_dir.is_dir():
        shutil.rmtree(sample_dir)
        report = replace(report, sample_index=str(sample_dir))
    return report


def retrieve(question: str, settings: Settings | None = None, filters: Filters | None = None,
             mode: str = "hybrid") -> list[Hit]:
    """Retrieval aggregated per paper, best first. mode: 'hybrid' (dense + BM25 fused by RRF), 'dense', 'bm25'."""
    from .retrieve import retrieve_hits

    return retrieve_hits(question, _settings(settings), filters or Filters(), mode=mode)


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
    ``timings_ms`` has ``load`` (this process's first use of the index: see :func:`load`), ``retrieve``,
    ``answer`` and ``total`` (all three).
    """
    from .answer import answer_stream

    s = _settings(settings)
    load_ms = round(load(s), 1)
    for item in answer_stream(question, s, filters or Filters(), history or []):
        if isinstance(item, Answer):
            t = item.timings_ms
            item = replace(item, timings_ms={"load": load_ms, **t, "total": t.get("total", 0.0) + load_ms})
        yield item


def load(settings: Settings | None = None) -> float:
    """Open what answering needs, once per process and index; returns the milliseconds it took (~0 when
    already open). A first ask pays this: importing chromadb, opening the collection and its HNSW
    segment, loading BM25 and the title index, and building the embedder (sha256 check + ONNX session)."""
    from .retrieve import _bm25, _cached_store, _title_index

    s = _settings(settings)
    t0 = time.perf_counter()
    store = _cached_store(s)
    if getattr(store, "loaded", False) or not store.chunk_count():
        return (time.perf_counter() - t0) * 1000
    _bm25(store)
    _title_index(store)
    if store.embedded_count():
        from .embed import get_embedder

        embedder = get_embedder(s)
        # (a remote embedder's dim may cost a request: its first query loads the segment instead)
        dim = 0 if s.embedder.startswith("openai:") else getattr(embedder, "dim", 0)
        if dim:
            store.dense_query([dim ** -0.5] * dim, 1)  # Chroma loads the HNSW segment on the first query
    store.loaded = True
    return (time.perf_counter() - t0) * 1000


def papers(settings: Settings | None = None) -> list[Paper]:
    """Every merged paper record in the index."""
    from .store import open_store

    return open_store(_settings(settings)).all_papers()


def stats(settings: Settings | None = None) -> dict:
    """papers, chunks, sources (files), embedder, index path, collection name."""
    from .store import open_store

    return open_store(_settings(settings)).stats()


def describe(settings: Settings | None = None) -> dict:
    """Which answerer/model/embedder is in use, and why."""
    s = _settings(settings)
    answerer, reason = s.llm_choice()
    return {"answerer": answerer, "model": s.model if answerer == "llm" else None,
            "embedder": s.embedder, "reason": reason, "index_dir": s.index_dir,
            "chroma_url": s.chroma_url, "collection": s.collection_name}
