"""Ingest: expand paths, parse changed files, merge, chunk, embed, upsert, rebuild BM25.

Idempotent: files are skipped by (size, mtime) and content hash; papers by content hash; chunks by
content hash. Interrupting it leaves a usable index; re-running finishes the job without duplicates.

Schema upgrades: when the index of these settings is empty and an older SCHEMA_VERSION built one
(see rag.store.open_store, which keeps answering from it meanwhile), an ingest first re-indexes that
index's stored records into the current collection (the parsers' current clean-up, e.g. unwrapping,
re-applied: no source file is needed), then drops the old collection.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .config import Settings
from .types import Chunk, FileError, IngestReport, Paper, ParseResult, Source

# progress(done, total, stage): stage "parse" counts files, then "embed" counts passages given a vector
# (done / total, from the first embedder call on; the total is exact for the first _CHUNK_GROUP papers
# and estimated from them for the rest, refined as each group is chunked).
Progress = Callable[[int, int, str], None]
DIGEST_SUFFIXES = (".txt", ".md", ".markdown", ".jsonl", ".json", ".gz")
# Passages given a vector per embedder call, Chroma upsert and SQLite commit (measured: MiniLM
# embeds ~15% faster in calls of >= 128 texts than of ~50, as a commit of 256 chunks held).
_EMBED_COMMIT = 256
_COMMIT_MAX_CHUNKS = 2048  # and at most this many chunks per commit (runs of BM25-only passages)
_CHUNK_GROUP = 1000  # papers chunked, embedded and committed together


@dataclass
class _Run:
    settings: Settings
    progress: Progress | None
    failures: list[FileError] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    skipped: int = 0
    embedded: int = 0  # passages given a vector so far in this stage
    embedded_before: int = 0  # ... in earlier stages (a schema upgrade's re-embed)
    embed_total: int = 0  # passages to embed (see Progress)
    notes: list[str] = field(default_factory=list)
    stage: str = "embed"  # progress label of the embed stage ("re-embed" during a schema upgrade)

    def tick(self, done: int, total: int, msg: str) -> None:
        if self.progress:
            self.progress(done, total, msg)

    def timer(self, name: str, t0: float) -> float:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - t0
        return now


# ---------------------------------------------------------------- path expansion

def expand_paths(paths: list[str | Path]) -> tuple[list[Path], list[FileError]]:
    """Files, folders (recursive, digest suffixes only) and globs; missing paths become errors."""
    files, errors = [], []
    for raw in paths:
        p = Path(str(raw)).expanduser()
        if any(ch in str(raw) for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True) if Path(m).is_file())
            files.extend(matches) if matches else errors.append(
                FileError(str(raw), "no file matches this pattern; check the glob"))
        elif p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and _is_digest_name(f)))
        elif p.is_file():
            files.append(p)
        else:
            errors.append(FileError(str(raw), "no such file or directory; check the path"))
    return list(dict.fromkeys(f.resolve() for f in files)), errors


def _is_digest_name(p: Path) -> bool:
    return p.suffix.lower() in DIGEST_SUFFIXES and not p.name.startswith(".") and p.name != "SOURCES.md"


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- parsing

def _changed_files(store, files: list[Path], run: _Run) -> list[tuple[Path, str, os.stat_result]]:
    """Files whose content is new or changed; unchanged ones are counted as skipped."""
    todo = []
    for f in files:
        try:
            st = f.stat()
            known = store.file_stat(str(f))
            if known and known[1] == st.st_size and abs(known[2] - st.st_mtime) < 1e-6:
                run.skipped += 1
                continue
            sha = _sha(f)
        except OSError as e:
            run.failures.append(FileError(str(f), f"cannot read: {e.strerror}; check permissions"))
            continue
        if known and known[0] == sha:
            store.touch_file(str(f), st.st_size, st.st_mtime)
            run.skipped += 1
            continue
        todo.append((f, sha, st))
    return todo


def _parse_all(todo: list[tuple[Path, str, os.stat_result]], run: _Run) -> list[ParseResult]:
    from .parse import parse_file

    max_bytes = int(run.settings.max_file_mb * 2**20)
    paths = [str(f) for f, _, _ in todo]
    # Measured: on 2 cores a process pool is slower than serial (pickling records back costs more
    # than parsing saves: 119 files / 23k records 5.5-6.5 s vs 3.6-5.7 s), so only use it on bigger boxes.
    if len(paths) >= 50 and (os.cpu_count() or 1) >= 4:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            return list(pool.map(parse_file, paths, [max_bytes] * len(paths), chunksize=4))
    results = []
    for i, p in enumerate(paths):
        results.append(parse_file(p, max_bytes=max_bytes))
        run.tick(i + 1, len(paths), "parse")
    return results


# ---------------------------------------------------------------- main entry points

def check_paths(paths: list[str | Path], settings: Settings) -> list[FileError]:
    """Every problem ingesting these paths would report, without touching the index."""
    from .parse import parse_file

    files, errors = expand_paths(paths)
    max_bytes = int(settings.max_file_mb * 2**20)
    for f in files:
        res = parse_file(str(f), max_bytes=max_bytes)
        errors.extend(res.errors)
        if not res.papers and not res.errors:
            errors.append(FileError(str(f), "no papers found in this file"))
    return errors


def ingest_paths(paths: list[str | Path], settings: Settings, progress: Progress | None = None) -> IngestReport:
    t_start = time.perf_counter()
    run = _Run(settings, progress)
    files, errors = expand_paths(paths)
    run.failures.extend(errors)
    store = _open_for_writing(settings, run)
    try:
        t0 = time.perf_counter()
        todo = _changed_files(store, files, run)
        results = _parse_all(todo, run)
        run.timer("parse", t0)
        file_rows, new_records = _collect(todo, results, run)
        report = _index(store, file_rows, new_records, run)
    finally:
        store.close()
        _forget(settings)
    return _finish(report, run, len(files), t_start)


def ingest_records(records: list[Paper], name: str, settings: Settings,
                   progress: Progress | None = None) -> IngestReport:
    """Index ready-made records as the contents of one virtual file ``name`` (their text unwrapped,
    as the parsers do)."""
    from .parse.common import unwrap_paper

    t_start = time.perf_counter()
    run = _Run(settings, progress)
    records = [unwrap_paper(p if p.sources else replace(p, sources=(Source(name, format="records"),)))
               for p in records]
    sha = hashlib.sha256(json.dumps([p.paper_id for p in records]).encode()).hexdigest()
    store = _open_for_writing(settings, run)
    try:
        if store.file_sha(name) == sha:
            run.skipped = 1
            report = IngestReport()
        else:
            row = {"path": name, "sha": sha, "size": len(records), "mtime": 0.0, "format": "records",
                   "papers": len(records), "errors": 0}
            report = _index(store, [row], {name: records}, run)
    finally:
        store.close()
        _forget(settings)
    return _finish(report, run, 1, t_start)


# ---------------------------------------------------------------- schema upgrade

def _open_for_writing(settings: Settings, run: _Run):
    """The current store, after upgrading an index an older schema built (if any; see module doc)."""
    from .store import Store, older_collections

    store = Store(settings)
    older = older_collections(settings)
    if older and not store.has_files():
        try:
            _upgrade(store, *older[0], run)
        except BaseException:  # interrupted: the old index stays, the next ingest resumes
            store.close()
            raise
    for version, name in older:  # stale once the current collection holds the files
        Store(settings, collection=name, schema=version).drop()
    return store


def _upgrade(store, version: int, name: str, run: _Run) -> None:
    """Re-index the records of the schema-``version`` collection ``name`` into ``store``."""
    from . import config
    from .parse.common import unwrap_paper
    from .store import Store

    old = Store(run.settings, collection=name, schema=version)
    try:
        rows, records, papers = old.file_rows(), old.records_by_file(), old.stats()["papers"]
    finally:
        old.close()
    if not rows:
        return
    note = (f"index schema {version} -> {config.SCHEMA_VERSION}: re-embedding {papers} papers "
            f"({config.schema_change(version)})")
    run.notes.append(note)
    run.stage = "re-embed"  # (its bar counts passages like "embed"; the note ends the report)
    try:
        _index(store, rows, {f: [unwrap_paper(p) for p in recs] for f, recs in records.items()}, run)
    finally:
        run.stage, run.embedded_before, run.embedded, run.embed_total = "embed", run.embedded, 0, 0


def _collect(todo, results: list[ParseResult], run: _Run) -> tuple[list[dict], dict[str, list[Paper]]]:
    """File rows and records to commit; files that yielded nothing usable stay out (retried next time)."""
    rows, records = [], {}
    for (f, sha, st), res in zip(todo, results):
        run.failures.extend(res.errors)
        if not res.papers:
            if not res.errors:
                run.failures.append(FileError(str(f), "no papers found in this file"))
            continue
        rows.append({"path": str(f), "sha": sha, "size": st.st_size, "mtime": st.st_mtime,
                     "format": res.format, "papers": len(res.papers), "errors": len(res.errors)})
        records[str(f)] = list(res.papers)
    return rows, records


def _index(store, file_rows: list[dict], new_records: dict[str, list[Paper]], run: _Run) -> IngestReport:
    from .merge import merge_papers, paper_hash

    if not file_rows:
        return IngestReport()
    t0 = time.perf_counter()
    old = [p for p in store.all_records() if not p.sources or p.sources[0].file not in new_records]
    merged = merge_papers(old + [p for recs in new_records.values() for p in recs])
    hashes = {p.paper_id: paper_hash(p) for p in merged}
    old_hashes = store.paper_hashes()
    t0 = run.timer("merge", t0)
    counts = _counts(new_records, merged, hashes, old_hashes)
    changed = [p for p in merged if old_hashes.get(p.paper_id) != hashes[p.paper_id]]
    added, removed = _sync_chunks(store, changed, set(hashes), set(old_hashes), run)
    t0 = time.perf_counter()
    store.commit_files(file_rows, new_records, merged, hashes)
    t0 = run.timer("store", t0)
    from .retrieve import rebuild_bm25

    rebuild_bm25(store)
    run.timer("bm25", t0)
    return IngestReport(papers_new=counts[0], papers_updated=counts[1], papers_unchanged=counts[2],
                        chunks_added=added, chunks_removed=removed)


def _counts(new_records, merged, hashes, old_hashes) -> tuple[int, int, int]:
    """new / updated / unchanged among the merged papers these files contribute to."""
    files = set(new_records)
    touched = [p.paper_id for p in merged if any(s.file in files for s in p.sources)]
    new = sum(pid not in old_hashes for pid in touched)
    updated = sum(pid in old_hashes and old_hashes[pid] != hashes[pid] for pid in touched)
    return new, updated, len(touched) - new - updated


def _sync_chunks(store, changed: list[Paper], live: set[str], before: set[str], run: _Run) -> tuple[int, int]:
    """Chunk, embed and upsert the changed papers, then delete their stale chunks and those of papers
    that are gone."""
    added, keep, existing = _upsert_changed(store, changed, run)
    changed_ids = {p.paper_id for p in changed}
    gone_papers = before - live
    stale = [cid for cid in existing if cid not in keep and
             (cid.rsplit(":", 2)[0] in changed_ids or cid.rsplit(":", 2)[0] in gone_papers)]
    t0 = time.perf_counter()
    store.delete_chunks(stale)
    run.timer("store", t0)
    return added, len(stale)


def _upsert_changed(store, changed: list[Paper], run: _Run) -> tuple[int, set[str], dict[str, str]]:
    """Chunk, embed and upsert the changed papers a group at a time (memory stays bounded by the
    group, not the corpus): (chunks written, chunk ids of the changed papers, chunk hashes before)."""
    from .chunk import chunk_papers

    t0 = time.perf_counter()
    existing = store.chunk_hashes()
    run.timer("store", t0)
    keep: set[str] = set()
    added = to_embed = 0
    for start in range(0, len(changed), _CHUNK_GROUP):
        t0 = time.perf_counter()
        chunks = chunk_papers(changed[start:start + _CHUNK_GROUP], run.settings)
        run.timer("chunk", t0)
        keep.update(c.chunk_id for c in chunks)
        todo = [c for c in chunks if existing.get(c.chunk_id) != c.content_hash]
        to_embed += sum(run.settings.embeds(c.field, c.lang) for c in todo)
        seen = min(start + _CHUNK_GROUP, len(changed))
        run.embed_total = max(run.embedded, to_embed + round(to_embed / seen * (len(changed) - seen)))
        if run.embedded == 0 and run.embed_total:
            run.tick(0, run.embed_total, run.stage)  # the bar starts before the first embedder call
        _embed_and_upsert(store, todo, run)
        added += len(todo)
    if run.embedded:
        run.tick(run.embedded, run.embedded, run.stage)  # exact total at the end
    return added, keep, existing


def _commits(chunks: list[Chunk], s: Settings):
    """Consecutive runs of chunks, each with at most _EMBED_COMMIT passages to embed and
    _COMMIT_MAX_CHUNKS chunks in all."""
    part: list[Chunk] = []
    dense = 0
    for c in chunks:
        embeds = s.embeds(c.field, c.lang)
        if part and ((embeds and dense >= _EMBED_COMMIT) or len(part) >= _COMMIT_MAX_CHUNKS):
            yield part
            part, dense = [], 0
        part.append(c)
        dense += embeds
    if part:
        yield part


def _embed_and_upsert(store, chunks: list[Chunk], run: _Run) -> None:
    """Embed (only the passages Settings.embeds says) and upsert, a commit at a time (_commits)."""
    from .retrieve import chunk_tokens_texts

    s = run.settings
    for part in _commits(chunks, s):
        t0 = time.perf_counter()
        vectors = _vectors(part, s)
        t0 = run.timer("embed", t0)
        tokens = chunk_tokens_texts(part, s.bm25_tokenizer)
        t0 = run.timer("bm25", t0)
        store.upsert_chunks(part, vectors, tokens)
        run.timer("store", t0)
        dense = sum(v is not None for v in vectors)
        if dense:
            run.embedded += dense
            run.tick(run.embedded, max(run.embed_total, run.embedded), run.stage)


def _vectors(chunks: list[Chunk], s: Settings) -> list:
    """One vector (a list of floats) per chunk, or None for BM25-only passages."""
    from .embed import get_embedder

    want = [i for i, c in enumerate(chunks) if s.embeds(c.field, c.lang)]
    out: list = [None] * len(chunks)
    if want:
        mat = get_embedder(s).embed([chunks[i].embed_text for i in want])
        for i, row in zip(want, mat.tolist()):
            out[i] = row
    return out


def _finish(report: IngestReport, run: _Run, n_files: int, t_start: float) -> IngestReport:
    return IngestReport(files=n_files, files_skipped=run.skipped, papers_new=report.papers_new,
                        papers_updated=report.papers_updated, papers_unchanged=report.papers_unchanged,
                        chunks_added=report.chunks_added, chunks_removed=report.chunks_removed,
                        passages_embedded=run.embedded_before + run.embedded, failures=tuple(run.failures),
                        notes=tuple(run.notes),
                        seconds=time.perf_counter() - t_start,
                        timings={k: round(v, 3) for k, v in run.timings.items()})


def _forget(settings: Settings) -> None:
    from .retrieve import forget_store

    forget_store(settings)


# ---------------------------------------------------------------- removal

@dataclass(frozen=True)
class RemoveReport:
    """What ``digestqa remove`` did: the digests forgotten and what became of their papers."""
    files: tuple[str, ...] = ()
    papers_removed: int = 0
    papers_kept: tuple[str, ...] = ()  # paper ids also in other digests: re-merged from those alone
    chunks_added: int = 0
    chunks_removed: int = 0
    passages_embedded: int = 0
    sample_index: str | None = None  # the bundled sample's own index, deleted
    seconds: float = 0.0


_SAMPLE_DIR = ("rag", "data", "sample")


def is_sample_file(path: str) -> bool:
    """A bundled sample digest, wherever digestqa is installed (…/rag/data/sample/<seed>.txt)."""
    from .api import sample_paths

    p = Path(path)
    return p.parts[-4:-1] == _SAMPLE_DIR and p.name in {s.name for s in sample_paths()}


def match_sources(indexed: list[str], paths: list[str | Path] = (), names: list[str] = (),
                  sample: bool = False) -> tuple[list[str], list[str]]:
    """(indexed files selected, selectors that matched nothing). A PATH matches the file itself, every
    file under a folder, or a glob (the file need not exist any more); a source NAME matches a file's
    full path, its name, or its trailing path parts (e.g. ``15-May-2025/README.md``); ``sample`` the
    bundled sample's digests."""
    import fnmatch

    chosen: dict[str, None] = {}
    unmatched: list[str] = []
    for raw in paths:
        full = str(Path(str(raw)).expanduser().resolve())
        glob_ = any(ch in str(raw) for ch in "*?[")
        hits = [f for f in indexed if (fnmatch.fnmatchcase(f, full) if glob_ else
                                       f == full or f.startswith(full.rstrip(os.sep) + os.sep))]
        chosen.update(dict.fromkeys(hits)) if hits else unmatched.append(str(raw))
    for name in names:
        tail = "/" + name.strip("/")
        hits = [f for f in indexed if f == name or f.replace(os.sep, "/").endswith(tail)]
        chosen.update(dict.fromkeys(hits)) if hits else unmatched.append(name)
    if sample:
        chosen.update(dict.fromkeys(f for f in indexed if is_sample_file(f)))
    return list(chosen), unmatched


def remove_files(files: list[str], settings: Settings, progress: Progress | None = None) -> RemoveReport:
    """Forget these indexed files: papers only they contained leave the catalogue, Chroma and BM25;
    papers also in other digests are re-merged from those (keeping the other sources' fields), and
    their changed passages re-embedded."""
    from .store import open_store

    t_start = time.perf_counter()
    run = _Run(settings, progress)
    store = open_store(settings)
    try:
        store.delete_pending_vectors()  # what an interrupted removal left
        report = _unindex(store, set(files), run) if files else RemoveReport()
    finally:
        store.close()
        _forget(settings)
    return replace(report, seconds=time.perf_counter() - t_start)


def _unindex(store, gone_files: set[str], run: _Run) -> RemoveReport:
    from .merge import merge_papers, paper_hash
    from .retrieve import rebuild_bm25

    old_hashes = store.paper_hashes()
    before = set(old_hashes)
    from_gone = {p.paper_id for p in store.all_records() if p.sources and p.sources[0].file in gone_files}
    merged = merge_papers(store.records_except(gone_files))
    hashes = {p.paper_id: paper_hash(p) for p in merged}
    changed = [p for p in merged if old_hashes.get(p.paper_id) != hashes[p.paper_id]]
    added, keep, existing = _upsert_changed(store, changed, run)
    changed_ids = {p.paper_id for p in changed}
    gone_papers = before - set(hashes)
    stale = [cid for cid in existing if cid not in keep and
             (cid.rsplit(":", 2)[0] in changed_ids or cid.rsplit(":", 2)[0] in gone_papers)]
    store.remove_files(sorted(gone_files), merged, hashes, stale)
    store.delete_pending_vectors()
    rebuild_bm25(store)
    kept = tuple(sorted(pid for pid in from_gone if pid in hashes))
    return RemoveReport(files=tuple(sorted(gone_files)), papers_removed=len(gone_papers), papers_kept=kept,
                        chunks_added=added, chunks_removed=len(stale), passages_embedded=run.embedded)
