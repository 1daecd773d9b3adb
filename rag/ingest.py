"""Ingest: expand paths, parse changed files, merge, chunk, embed, upsert, rebuild BM25.

Idempotent: files are skipped by (size, mtime) and content hash; papers by content hash; chunks by
content hash. Interrupting it leaves a usable index; re-running finishes the job without duplicates.

Schema upgrades: when the index of these settings is empty and an older SCHEMA_VERSION built one
(see rag.store.open_store, which keeps answering from it meanwhile), an ingest first re-indexes that
index's stored records into the current collection (the parsers' current clean-up, e.g. unwrapping,
re-applied: no source file is needed), then drops the old collection.
"""
from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .config import Settings
from .embed import file_sha256
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
    """Files, folders (recursive, digest suffixes only) and globs; missing paths become errors, and so
    do unreadable entries and file names that are not valid UTF-8 (the rest goes on). Symlinked
    folders are not followed, so a symlink loop ends the walk instead of hanging it."""
    files, errors = [], []
    for raw in paths:
        p = Path(str(raw)).expanduser()
        if any(ch in str(raw) for ch in "*?["):
            matches = sorted(_glob(str(p), errors))
            files.extend(matches) if matches else errors.append(
                FileError(_shown(raw), "no file matches this pattern; check the glob"))
        elif _is(p, Path.is_dir, errors):
            files.extend(sorted(_walk(p, errors)))
        elif _is(p, Path.is_file, errors):
            files.append(p)
        elif not errors or errors[-1].file != _shown(p):
            errors.append(FileError(_shown(raw), "no such file or directory; check the path"))
    out = []
    for f in files:
        try:
            f = f.resolve()
        except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
            errors.append(FileError(_shown(f), f"cannot resolve this path ({_reason(e)})"))
            continue
        if not _utf8_name(f):
            errors.append(FileError(_shown(f), "the file name is not valid UTF-8; rename the file"))
            continue
        out.append(f)
    return list(dict.fromkeys(out)), errors


def _shown(path) -> str:
    """A path as printable text (bytes of a non-UTF-8 name as \\x escapes)."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _utf8_name(path: Path) -> bool:
    try:
        str(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _is(p: Path, test, errors: list[FileError]) -> bool:
    """``test(p)`` (is_dir / is_file), an unreadable path becoming an error instead of a traceback."""
    try:
        return test(p)
    except OSError as e:
        errors.append(FileError(_shown(p), f"cannot read ({_reason(e)}); check permissions"))
        return False


def _walk(root: Path, errors: list[FileError]):
    """Digest files under ``root`` (symlinked folders not followed); unreadable folders are summed up
    in one error."""
    denied: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: denied.append(_shown(e.filename))):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            f = Path(dirpath) / name
            if _is_digest_name(f) and _is(f, Path.is_file, errors):
                yield f
    if denied:
        more = f" and {len(denied) - 1} more" if len(denied) > 1 else ""
        errors.append(FileError(denied[0], f"cannot read this folder{more} (permission denied); their files were "
                                           "skipped"))


def _glob(pattern: str, errors: list[FileError]) -> list[Path]:
    """Files matching a glob. ``**`` patterns are matched while walking (symlinked folders not followed:
    glob.glob follows them and loops); others use glob.glob (one level per part: no loops)."""
    if "**" not in pattern:
        return [Path(m) for m in glob.glob(pattern) if _is(Path(m), Path.is_file, errors)]
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    root = Path(*parts[:fixed]) if fixed else Path(".")
    rest = parts[fixed:]
    if not _is(root, Path.is_dir, errors):
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).parts
        for name in filenames:
            if _glob_match(rest, (*rel, name)) and _is(Path(dirpath) / name, Path.is_file, errors):
                out.append(Path(dirpath) / name)
    return out


def _glob_match(pat: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """glob.glob's matching of path parts: ``**`` is zero or more folders, ``*`` does not match a
    leading dot."""
    if not pat:
        return not parts
    if pat[0] == "**":
        return any(_glob_match(pat[1:], parts[i:]) for i in range(len(parts) + 1)
                   if not any(x.startswith(".") for x in parts[:i]))
    if not parts or (parts[0].startswith(".") and not pat[0].startswith(".")):
        return False
    return fnmatch.fnmatchcase(parts[0], pat[0]) and _glob_match(pat[1:], parts[1:])


def _is_digest_name(p: Path) -> bool:
    return p.suffix.lower() in DIGEST_SUFFIXES and not p.name.startswith(".") and p.name != "SOURCES.md"


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
            sha = file_sha256(f)
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
    max_bytes = int(run.settings.max_file_mb * 2**20)
    paths = [str(f) for f, _, _ in todo]
    # Measured: on 2 cores a process pool is slower than serial (pickling records back costs more
    # than parsing saves: 119 files / 23k records 5.5-6.5 s vs 3.6-5.7 s), so only use it on bigger boxes.
    if len(paths) >= 50 and (os.cpu_count() or 1) >= 4:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            return list(pool.map(parse_isolated, paths, [max_bytes] * len(paths), chunksize=4))
    results = []
    for i, p in enumerate(paths):
        results.append(parse_isolated(p, max_bytes))
        run.tick(i + 1, len(paths), "parse")
    return results


def parse_isolated(path: str, max_bytes: int) -> ParseResult:
    """parse_file, with anything it raises (a parser bug, RecursionError, MemoryError) turned into a
    FileError for this file: one bad file never stops the others."""
    from .parse import parse_file

    try:
        return parse_file(path, max_bytes=max_bytes)
    except (Exception, RecursionError, MemoryError) as e:  # noqa: BLE001
        return ParseResult(file=path, format="", papers=(), errors=(FileError(
            path, f"could not be parsed ({type(e).__name__}: {str(e)[:120]}); please report this file"),))


# ---------------------------------------------------------------- main entry points

def check_paths(paths: list[str | Path], settings: Settings) -> list[FileError]:
    """Every problem ingesting these paths would report, without touching the index."""
    files, errors = expand_paths(paths)
    max_bytes = int(settings.max_file_mb * 2**20)
    for f in files:
        res = parse_isolated(str(f), max_bytes)
        errors.extend(res.errors)
        if not res.papers and not res.errors:
            errors.append(FileError(str(f), "no papers found in this file"))
    return errors


def ingest_paths(paths: list[str | Path], settings: Settings, progress: Progress | None = None,
                 on_wait: Callable[[str], None] | None = None) -> IngestReport:
    """Ingest files/folders/globs; one writer per index at a time (another ingest waits for this one:
    ``on_wait`` gets the "another ingest is running (pid N); waiting" line, see store.writer_lock)."""
    from .store import writer_lock

    t_start = time.perf_counter()
    run = _Run(settings, progress)
    files, errors = expand_paths(paths)
    run.failures.extend(errors)
    with writer_lock(settings, on_wait):
        return _ingest_locked(files, settings, run, t_start)


def _ingest_locked(files: list[Path], settings: Settings, run: _Run, t_start: float) -> IngestReport:
    store = _open_for_writing(settings, run)
    try:
        t0 = time.perf_counter()
        todo = _changed_files(store, files, run)
        results = _parse_all(todo, run)
        run.timer("parse", t0)
        file_rows, new_records = _collect(todo, results, run)
        report = _index(store, file_rows, new_records, run)
        _heal_bm25(store, run)
    finally:
        store.close()
        _forget(settings)
    return _finish(report, run, len(files), t_start)


def _heal_bm25(store, run: _Run) -> None:
    """Rebuild BM25 files that are missing, damaged or stale (an ingest with nothing new still fixes them)."""
    from .retrieve import rebuild_bm25

    loaded = store.load_bm25()
    if (loaded is None or loaded[2] != store.generation()) and (store.chunk_count() or loaded is None):
        if store.bm25_error:
            run.notes.append(f"the BM25 files were damaged ({store.bm25_error}): rebuilt from the catalogue")
        rebuild_bm25(store)


def ingest_records(records: list[Paper], name: str, settings: Settings,
                   progress: Progress | None = None) -> IngestReport:
    """Index ready-made records as the contents of one virtual file ``name`` (their text unwrapped,
    as the parsers do)."""
    from .store import writer_lock

    with writer_lock(settings):
        return _ingest_records_locked(records, name, settings, progress)


def _ingest_records_locked(records: list[Paper], name: str, settings: Settings,
                           progress: Progress | None) -> IngestReport:
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

    store = Store(settings, readonly=False, writer=True)
    vectors = store.embedded_count()
    if vectors and settings.chroma_url is None and not (store.chroma_path / "chroma.sqlite3").exists():
        store.close()  # re-ingesting would skip every unchanged file and leave the vectors missing
        from .store import damaged

        raise damaged(store.chroma_path, f"the Chroma store is missing: {vectors} vectors of this index are gone",
                      settings)
    store.delete_pending_vectors()  # what an interrupted commit left to do
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
        records[str(f)] = [_trim(p, run) for p in res.papers]
    return rows, records


# ---------------------------------------------------------------- the per-paper chunk cap

_CHARS_PER_TOKEN = 4  # generous for English (~4.5 chars per cl100k token); Chinese needs fewer chars


def _trim(paper: Paper, run: _Run) -> Paper:
    """A record whose text could make more than ``max_chunks_per_paper`` chunks (e.g. a 50 MB abstract)
    has each long field cut to what that many chunks hold, with a warning (before any chunking work:
    the exact count is capped after chunking, see _capped)."""
    from .types import PAPER_TEXT_FIELDS

    s = run.settings
    limit = s.max_chunks_per_paper * s.chunk_tokens * _CHARS_PER_TOKEN
    long = {f: len(getattr(paper, f)) for f in PAPER_TEXT_FIELDS if len(getattr(paper, f) or "") > limit}
    if not long:
        return paper
    where = f"{paper.sources[0].file}:{paper.sources[0].line}" if paper.sources and paper.sources[0].line \
        else (paper.sources[0].file if paper.sources else "")
    sizes = ", ".join(f"{f} {n / 2**20:.1f} MB" if n >= 2**20 else f"{f} {n:,} chars" for f, n in long.items())
    run.notes.append(f"warning: {where}: paper {paper.title[:60]!r} has very long text ({sizes}): indexed the "
                     f"first {limit:,} characters of each such field, at most {s.max_chunks_per_paper} chunks "
                     f"(max_chunks_per_paper)")
    return replace(paper, **{f: _cut(getattr(paper, f), limit) for f in long})


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, at the last sentence end or space before it when near."""
    head = text[:limit]
    for sep in (". ", "。", " "):
        at = head.rfind(sep)
        if at > limit * 0.9:
            return head[:at + len(sep)].rstrip()
    return head


def _capped(chunks: list[Chunk], run: _Run) -> list[Chunk]:
    """At most ``max_chunks_per_paper`` chunks per paper: each field keeps its first windows, taken
    field by field in turn (a huge abstract does not crowd out the TL;DRs)."""
    cap = run.settings.max_chunks_per_paper
    by_paper: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_paper.setdefault(c.paper_id, []).append(c)
    if all(len(cs) <= cap for cs in by_paper.values()):
        return chunks
    keep: set[str] = set()
    for pid, cs in by_paper.items():
        if len(cs) <= cap:
            keep.update(c.chunk_id for c in cs)
            continue
        fields: dict[str, list[Chunk]] = {}
        for c in cs:
            fields.setdefault(c.field, []).append(c)
        picked: list[Chunk] = []
        for i in range(max(map(len, fields.values()))):
            picked += [f[i] for f in fields.values() if i < len(f)][: cap - len(picked)]
        keep.update(c.chunk_id for c in picked)
        run.notes.append(f"warning: paper {pid} makes {len(cs)} chunks: indexed {cap} of them "
                         "(max_chunks_per_paper)")
    return [c for c in chunks if c.chunk_id in keep]


def _index(store, file_rows: list[dict], new_records: dict[str, list[Paper]], run: _Run) -> IngestReport:
    if not file_rows:
        return IngestReport()
    t0 = time.perf_counter()
    delta = _plan(store, set(new_records), new_records, run)
    t0 = run.timer("merge", t0)
    counts = _counts(new_records, delta.papers, delta.hashes, delta.old_hashes)
    changed = [p for p in delta.papers if delta.old_hashes.get(p.paper_id) != delta.hashes[p.paper_id]]
    added, stale = _sync_chunks(store, changed, delta.removed, run)
    t0 = time.perf_counter()
    generation = store.generation()
    store.commit_files(file_rows, new_records, delta.papers, delta.hashes, stale, delta)
    store.delete_pending_vectors()
    t0 = run.timer("store", t0)
    from .retrieve import update_bm25

    update_bm25(store, {p.paper_id for p in changed} | set(delta.removed), generation, stale)
    run.timer("bm25", t0)
    return IngestReport(papers_new=counts[0], papers_updated=counts[1], papers_unchanged=counts[2],
                        chunks_added=added, chunks_removed=len(stale))


def _plan(store, replaced: set[str], new_records: dict[str, list[Paper]], run: _Run):
    """The catalogue change (rag.delta), saying so when an older catalogue's link index is built first."""
    from .delta import plan

    if not store.link_index_ready():
        run.notes.append("upgrading the index for incremental ingest: merging its papers once to index their links")
    return plan(store, replaced, new_records)


def _counts(new_records, merged, hashes, old_hashes) -> tuple[int, int, int]:
    """new / updated / unchanged among the merged papers these files contribute to."""
    files = set(new_records)
    touched = [p.paper_id for p in merged if any(s.file in files for s in p.sources)]
    new = sum(pid not in old_hashes for pid in touched)
    updated = sum(pid in old_hashes and old_hashes[pid] != hashes[pid] for pid in touched)
    return new, updated, len(touched) - new - updated


def _sync_chunks(store, changed: list[Paper], gone_papers: list[str], run: _Run) -> tuple[int, list[str]]:
    """Chunk, embed and upsert (as pending rows) the changed papers; returns (chunks written, stale chunk
    ids: those of the changed papers no longer produced and those of papers that are gone, dropped at the
    commit)."""
    added, keep, existing = _upsert_changed(store, changed, run, gone_papers)
    _restore_vectors(store, store.discard_pending(keep), run)
    return added, [cid for cid in existing if cid not in keep]


def _restore_vectors(store, chunk_ids: list[str], run: _Run) -> None:
    """Re-embed live chunks whose vector an interrupted ingest replaced (with that of content it never
    committed): their papers are re-chunked from the catalogue and those chunks upserted again."""
    from .chunk import chunk_papers

    if not chunk_ids:
        return
    want = set(chunk_ids)
    papers = store.get_papers({cid.rsplit(":", 2)[0] for cid in chunk_ids}).values()
    chunks = [c for c in chunk_papers(list(papers), run.settings) if c.chunk_id in want]
    _embed_and_upsert(store, chunks, run, pending=False)


def _upsert_changed(store, changed: list[Paper], run: _Run,
                    gone_papers=()) -> tuple[int, set[str], dict[str, str]]:
    """Chunk, embed and upsert (as pending rows) the changed papers a group at a time (memory stays
    bounded by the group, not the corpus): (chunks written, chunk ids of the changed papers, chunk hashes
    before of the changed and ``gone_papers``). Pending rows an interrupted ingest left are reused when they
    match (their vectors are in Chroma)."""
    from .chunk import chunk_papers

    t0 = time.perf_counter()
    existing = store.chunk_hashes_of([p.paper_id for p in changed] + list(gone_papers))
    pending = store.pending_hashes()
    run.timer("store", t0)
    keep: set[str] = set()
    added = to_embed = 0
    for start in range(0, len(changed), _CHUNK_GROUP):
        t0 = time.perf_counter()
        chunks = _capped(chunk_papers(changed[start:start + _CHUNK_GROUP], run.settings), run)
        run.timer("chunk", t0)
        keep.update(c.chunk_id for c in chunks)
        todo = [c for c in chunks if existing.get(c.chunk_id) != c.content_hash]
        added += len(todo)
        todo = [c for c in todo if pending.get(c.chunk_id) != c.content_hash]
        to_embed += sum(run.settings.embeds(c.field, c.lang) for c in todo)
        seen = min(start + _CHUNK_GROUP, len(changed))
        run.embed_total = max(run.embedded, to_embed + round(to_embed / seen * (len(changed) - seen)))
        if run.embedded == 0 and run.embed_total:
            run.tick(0, run.embed_total, run.stage)  # the bar starts before the first embedder call
        _embed_and_upsert(store, todo, run)
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


def _embed_and_upsert(store, chunks: list[Chunk], run: _Run, pending: bool = True) -> None:
    """Embed (only the passages Settings.embeds says) and upsert, a commit at a time (_commits), as
    pending rows (made live by the ingest's final commit) unless ``pending`` is False."""
    from .retrieve import chunk_tokens_texts

    s = run.settings
    for part in _commits(chunks, s):
        t0 = time.perf_counter()
        vectors = _vectors(part, s)
        t0 = run.timer("embed", t0)
        tokens = chunk_tokens_texts(part, s.bm25_tokenizer)
        t0 = run.timer("bm25", t0)
        store.upsert_chunks(part, vectors, tokens, pending=pending)
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
    from .store import open_store, writer_lock

    t_start = time.perf_counter()
    run = _Run(settings, progress)
    with writer_lock(settings):
        store = open_store(settings)
        try:
            store.delete_pending_vectors()  # what an interrupted removal left
            report = _unindex(store, set(files), run) if files else RemoveReport()
        finally:
            store.close()
            _forget(settings)
    return replace(report, seconds=time.perf_counter() - t_start)


def _unindex(store, gone_files: set[str], run: _Run) -> RemoveReport:
    from .retrieve import update_bm25

    delta = _plan(store, gone_files, {}, run)
    changed = [p for p in delta.papers if delta.old_hashes.get(p.paper_id) != delta.hashes[p.paper_id]]
    added, stale = _sync_chunks(store, changed, delta.removed, run)
    generation = store.generation()
    store.remove_files(sorted(gone_files), delta.papers, delta.hashes, stale, delta)
    store.delete_pending_vectors()
    update_bm25(store, {p.paper_id for p in changed} | set(delta.removed), generation, stale)
    kept = tuple(sorted(pid for pid in delta.touched if pid in delta.hashes))
    gone_papers = delta.removed
    return RemoveReport(files=tuple(sorted(gone_files)), papers_removed=len(gone_papers), papers_kept=kept,
                        chunks_added=added, chunks_removed=len(stale), passages_embedded=run.embedded)
