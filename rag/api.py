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
    ``timings_ms`` has ``load`` (this process's first use of the index: see :func:`load`), ``retrieve``,
    ``answer`` and ``total`` (all three).
    """
    from .answer import answer_stream
    from .store import guard
    from .types import check_filters

    s = _settings(settings)
    f = check_filters(filters or Filters())
    with guard(s):
        load_ms = round(load(s), 1)
        for item in answer_stream(question, s, f, history or []):
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


# ---------------------------------------------------------------- papers by id, exports

def get_papers(ids: Iterable[str], settings: Settings | None = None) -> tuple[list[Paper], list[str]]:
    """(papers found, ids not found) for paper ids, arXiv IDs (any version, ``arXiv:`` prefix or abs URL) or ids
    merged into another record; found papers in the order asked, each once."""
    from .store import open_store

    from .export import norm_id

    want = [(i, norm_id(i)) for i in ids]
    store = open_store(_settings(settings))
    try:
        direct = store.get_papers(n for _, n in want)
        rest = [n for _, n in want if n not in direct]
        if rest:
            by_arxiv = store.arxiv_ids_to_papers(rest)
            extra = store.get_papers(by_arxiv[n.lower()] for n in rest if n.lower() in by_arxiv)
            direct.update({n: extra[by_arxiv[n.lower()]] for n in rest if by_arxiv.get(n.lower()) in extra})
            rest = [n for n in rest if n not in direct]
        if rest:
            linked = {x: p for p in store.all_papers() for x in p.linked_ids}
            direct.update({n: linked[n] for n in rest if n in linked})
    finally:
        store.close()
    found = list({direct[n].paper_id: direct[n] for _, n in want if n in direct}.values())
    return found, [i for i, n in want if n not in direct]


def get_paper(paper_id: str, settings: Settings | None = None) -> Paper | None:
    """One paper by paper id or arXiv ID (see :func:`get_papers`), None when the index does not have it."""
    found, _ = get_papers([paper_id], settings)
    return found[0] if found else None


def answer_markdown(answer: Answer, settings: Settings | None = None) -> str:
    """The answer as Markdown with a numbered reference list (arXiv links) of the papers it cites."""
    from .export import answer_markdown as render

    return render(answer, _cited_papers(answer, settings))


def answer_bibtex(answer: Answer, settings: Settings | None = None) -> str:
    """The papers an answer cites as BibTeX ``@misc`` entries (eprint/archivePrefix for arXiv papers)."""
    from .export import answer_bibtex as render

    return render(answer, _cited_papers(answer, settings))


def _cited_papers(answer: Answer, settings: Settings | None) -> dict[str, Paper]:
    ids = [answer.sources[c.n - 1].paper_id for c in answer.citations if 1 <= c.n <= len(answer.sources)]
    try:
        found, _ = get_papers(ids, settings) if ids else ([], [])
    except Exception:  # noqa: BLE001 - an answer made elsewhere (no index): the hits' metadata is enough
        found = []
    return {p.paper_id: p for p in found}


def bibtex(ids: Iterable[str] | None = None, settings: Settings | None = None) -> str:
    """BibTeX for these papers (all indexed papers when ``ids`` is None); unknown ids raise ValueError."""
    from .export import bibtex as render

    if ids is None:
        return render(papers(settings))
    found, missing = get_papers(list(ids), settings)
    if missing:
        raise ValueError(f"not in the index: {', '.join(missing)} (see digestqa papers for the ids)")
    return render(found)


# ---------------------------------------------------------------- sync sources

def sync(source: str | None = None, settings: Settings | None = None, since: str | None = None,
         progress: Progress | None = None) -> list:
    """Fetch and ingest the days not yet ingested from ``source`` (a daily-arXiv data folder URL or an RSS/Atom
    feed; remembered) or, when None, from every remembered source. Returns one ``rag.sync.SyncReport`` per
    source; a failed source has ``error`` set (naming the URL) and changed nothing."""
    from .sync import sync as run

    return run(source, _settings(settings), since, progress=progress)


def sync_sources(settings: Settings | None = None) -> list:
    """The remembered sync sources (``rag.sync.Source``)."""
    from .sync import load_sources

    return load_sources(_settings(settings))


def forget_source(url: str, settings: Settings | None = None) -> bool:
    """Stop syncing a source (its files and papers stay); False when it was not remembered."""
    from .sync import forget

    return forget(url, _settings(settings))


# ---------------------------------------------------------------- watches

def add_watch(phrase: str, settings: Settings | None = None, threshold: float | None = None):
    """Remember a watch phrase (any language); returns the ``rag.watch.Watch``."""
    from .watch import add

    return add(phrase, _settings(settings), threshold)


def watches(settings: Settings | None = None) -> list:
    """The remembered watches."""
    from .watch import load

    return load(_settings(settings))


def remove_watch(phrase: str, settings: Settings | None = None) -> bool:
    from .watch import remove

    return remove(phrase, _settings(settings))


def whats_new(watch: str | None = None, since: str | None = None, until: str | None = None,
              settings: Settings | None = None, paper_ids: Iterable[str] | None = None) -> dict[str, list]:
    """{watch phrase: [``rag.watch.WatchMatch``] best first} for one watch (remembered or ad hoc) or all
    remembered ones, over the papers dated ``since``..``until`` and/or among ``paper_ids`` (e.g. the papers an
    ingest added)."""
    from . import watch as w

    s = _settings(settings)
    chosen = [w.find(watch, s)] if watch else w.load(s)
    if not chosen:
        return {}
    return w.matches(chosen, s, paper_ids, since, until)


def watch_weeks(watch: str, settings: Settings | None = None) -> list[tuple[str, int, int]]:
    """(week's Monday, papers matching ``watch``, papers indexed) for every week of the indexed dates."""
    from . import watch as w

    s = _settings(settings)
    return w.week_counts(w.find(watch, s), s)


def paper_ids(settings: Settings | None = None) -> set[str]:
    """Every paper id in the index (cheap), e.g. to tell which papers an ingest added."""
    from .store import paper_ids as ids

    return ids(_settings(settings))
