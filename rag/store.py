"""All disk and Chroma I/O: the paper catalogue (SQLite), the vectors (Chroma) and the BM25 files.

Layout of the index dir (one set per collection name, so a changed embedder or chunking never
reuses stale vectors):

    <index>/catalogue-<collection>.sqlite   files, raw records per file, merged papers, chunks, the link
                                             index of incremental merges (rag.delta)
    <index>/chroma/                          Chroma PersistentClient (unless --chroma-url is given):
                                             vectors with paper_id, date_int, field, lang
    <index>/bm25-<collection>/               BM25 segments (term frequencies + sorted chunk ids) and a
                                             manifest naming them, stamped with a generation (rag.retrieve)
    <index>/uploads/                         files uploaded through the UI

An index built by an older SCHEMA_VERSION (another collection name) is still opened and read by
open_store until the next ingest has re-indexed its records into the current collection (see
rag.ingest); only then is the old collection dropped.

Crash safety: SQLite runs in WAL mode and every step commits in one transaction. An ingest writes
its chunk rows to ``chunks_pending`` (each commit after its vectors are in Chroma); one transaction
then records the files, the merged papers, moves the pending rows into ``chunks`` and drops the
stale ones, so an ingest either finishes its files or leaves no visible trace of them (a vector
without a chunk row is never returned). An interrupted ingest's pending rows and vectors are reused
by the next one, which finishes the job without embedding them again.

One writer per index dir: ingests hold ``<index>/write.lock`` (:func:`writer_lock`); a second one
waits and says so. A damaged catalogue raises :class:`IndexDamaged`, naming the file and the
command that fixes it; a read-only index dir is opened read-only.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tempfile
from array import array
from contextlib import contextmanager
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlparse

from . import config
from .config import Settings
from .text import TITLE_KEY as TITLE_KEY_KIND
from .types import Chunk, Paper, Source

try:  # orjson ships with chromadb (a core dependency): ~3x faster to decode the catalogue
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover
    _fast_loads = json.loads


def _loads(s: str) -> Any:
    try:
        return _fast_loads(s)
    except ValueError:  # what orjson refuses (e.g. a lone surrogate) json may still read
        return json.loads(s)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, sha TEXT NOT NULL, size INTEGER, mtime REAL, format TEXT,
    papers INTEGER, errors INTEGER, ingested_at REAL);
CREATE TABLE IF NOT EXISTS records (file TEXT NOT NULL, idx INTEGER NOT NULL, json TEXT NOT NULL,
    paper_id TEXT, PRIMARY KEY (file, idx));
CREATE TABLE IF NOT EXISTS papers (paper_id TEXT PRIMARY KEY, hash TEXT NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, paper_id TEXT NOT NULL, field TEXT, lang TEXT, text TEXT,
    hash TEXT NOT NULL, tokens TEXT, date_int INTEGER, categories TEXT, authors TEXT, title TEXT,
    arxiv_id TEXT, embedded INTEGER NOT NULL DEFAULT 1, tok_ids BLOB);
CREATE INDEX IF NOT EXISTS chunks_paper ON chunks(paper_id);
CREATE TABLE IF NOT EXISTS chunks_pending (
    chunk_id TEXT PRIMARY KEY, paper_id TEXT NOT NULL, field TEXT, lang TEXT, text TEXT,
    hash TEXT NOT NULL, tokens TEXT, date_int INTEGER, categories TEXT, authors TEXT, title TEXT,
    arxiv_id TEXT, embedded INTEGER NOT NULL DEFAULT 1, tok_ids BLOB);
CREATE TABLE IF NOT EXISTS terms (term TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS link_groups (paper_id TEXT PRIMARY KEY, ided INTEGER NOT NULL, title_key TEXT,
    link TEXT);
CREATE INDEX IF NOT EXISTS link_groups_key ON link_groups(title_key) WHERE title_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS link_groups_link ON link_groups(link) WHERE link IS NOT NULL;
CREATE TABLE IF NOT EXISTS link_clauses (paper_id TEXT NOT NULL, clause INTEGER NOT NULL, ided INTEGER NOT NULL,
    PRIMARY KEY (paper_id, clause)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS link_clauses_clause ON link_clauses(clause, ided);
CREATE TABLE IF NOT EXISTS title_keys (key TEXT NOT NULL, kind INTEGER NOT NULL, paper_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS title_keys_key ON title_keys(key);
CREATE INDEX IF NOT EXISTS title_keys_paper ON title_keys(paper_id);
"""


# ---------------------------------------------------------------- Paper <-> JSON

_PAPER_FIELDS = tuple(f.name for f in fields(Paper))


def paper_to_json(p: Paper) -> str:
    """The record as compact JSON, byte for byte ``json.dumps(asdict(p))`` (same keys in the same
    order; tuples become arrays), built without asdict's recursive deep copy (~10x slower: every
    ingest serialises the whole catalogue to find the rows that changed)."""
    d = {k: getattr(p, k) for k in _PAPER_FIELDS}
    d["sources"] = [vars(x) for x in p.sources]
    d["provenance"] = [(f, vars(x)) for f, x in p.provenance]
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=1 << 16)
def _source(file: str, date: str | None, format: str, line: int | None) -> Source:
    """One shared Source per distinct value (a record's ~10 provenance entries repeat its sources)."""
    return Source(file, date, format, line)


def _source_of(x: dict) -> Source:
    return _source(x["file"], x.get("date"), x.get("format", ""), x.get("line"))


def paper_from_json(s: str) -> Paper:
    d = _loads(s)
    d["sources"] = tuple(map(_source_of, d.get("sources", ())))
    d["provenance"] = tuple((f, _source_of(x)) for f, x in d.get("provenance", ()))
    for k in ("authors", "categories", "linked_ids"):
        d[k] = tuple(d.get(k) or ())
    d["extra"] = tuple(tuple(x) for x in d.get("extra", ()))
    return Paper(**d)


# ---------------------------------------------------------------- the store

class Store:
    """The index dir of one collection: catalogue, vectors and BM25 files."""

    def __init__(self, settings: Settings, collection: str | None = None, schema: int | None = None,
                 readonly: bool | None = None, writer: bool = False):
        """The store of ``settings`` (or of an older ``collection`` name, built by ``schema``).
        ``readonly``: open without writing anything (default: when the index dir is not writable);
        ``writer``: opened by ingest or repair (holding the write lock), which may create the Chroma store."""
        self.settings = settings
        self.writer = writer
        self._vectors_checked: int | None = None
        self.root = Path(settings.index_dir).expanduser()
        self.collection_name = collection or settings.collection_name
        self.schema = schema or config.SCHEMA_VERSION
        self.db_path = _catalogue_path(self.root, self.collection_name)
        self.bm25_dir = self.root / f"bm25-{self.collection_name}"
        unwritable = _read_only(self.root, self.db_path)
        if unwritable and readonly is False:
            raise IndexReadOnly(f"cannot write to the index {self.root} (read-only): ingest and repair need a "
                                "writable index (ask, papers, stats and doctor work read-only)")
        self.readonly = unwritable if readonly is None else readonly
        self._collection = None
        self._terms: dict[str, int] | None = None
        self._count_cache: tuple[int, int, int] | None = None
        self.bm25_error: str | None = None  # why the BM25 files could not be read (see load_bm25)
        self.bm25_old_format = False  # the BM25 files are an older digestqa's (rebuilt, see load_bm25)
        if self.readonly:
            self.db = _connect_read_only(self.db_path)
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise IndexReadOnly(f"cannot create the index dir {self.root} ({e.strerror}); pass a writable "
                                "--index DIR") from None
        try:
            self.db = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False)
            _retry_locked(lambda: self._setup())
        except sqlite3.DatabaseError as e:
            if "readonly" in str(e):
                raise IndexReadOnly(f"cannot write to the index catalogue {self.db_path} ({e})") from None
            raise damaged(self.db_path, e, settings) from None

    def _setup(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint the WAL every ~40 MB instead of every 4 MB: a 20k-paper ingest writes ~200 MB of
        # rows, and each checkpoint is an fsync (measured: store stage 15.4 s -> 11.8 s on this disk).
        self.db.execute("PRAGMA wal_autocheckpoint=10000")
        self.db.executescript(_SCHEMA)
        if "tok_ids" not in {r[1] for r in self.db.execute("PRAGMA table_info(chunks)")}:
            self.db.execute("ALTER TABLE chunks ADD COLUMN tok_ids BLOB")  # catalogues from before it
        # rows still lacking term ids (only after that migration): found without scanning the table
        self.db.execute("CREATE INDEX IF NOT EXISTS chunks_no_ids ON chunks(chunk_id) WHERE tok_ids IS NULL")
        if "paper_id" not in {r[1] for r in self.db.execute("PRAGMA table_info(records)")}:
            # catalogues from before incremental ingest: records found by paper id (rag.delta)
            with self.db:
                self.db.execute("ALTER TABLE records ADD COLUMN paper_id TEXT")
                self.db.execute("UPDATE records SET paper_id = json_extract(json, '$.paper_id')")
                self.db.execute("DELETE FROM meta WHERE key='link_index'")
        self.db.execute("CREATE INDEX IF NOT EXISTS records_paper ON records(paper_id)")
        # chunk counts (every ask's first query, stats) read this small index instead of the table: the
        # table holds each chunk's text and term ids (~8.6 KB per paper), a scan of it grows with the index
        self.db.execute("CREATE INDEX IF NOT EXISTS chunks_embedded ON chunks(embedded)")
        if not self.title_keys_ready():
            self._build_title_keys()

    # ------------------------------------------------------------ Chroma

    @property
    def collection(self):
        """The Chroma collection. A reader whose catalogue has vectors but finds no Chroma store (a
        deleted ``chroma/`` dir) or no collection gets IndexDamaged instead of an empty new one."""
        if self._collection is None:
            path = self.chroma_path
            if not self.writer and (self.readonly or self.embedded_count()):
                if self.settings.chroma_url is None and not (path / "chroma.sqlite3").exists():
                    raise damaged(path, f"the Chroma store is missing: {self.embedded_count()} vectors "
                                        "of this index are gone", self.settings)
                self._collection = self._open_collection(create=False)
            else:
                self._collection = self._open_collection(create=True)
        return self._collection

    @property
    def chroma_path(self) -> Path:
        return self.root / "chroma"

    def chroma_name(self, create: bool = False) -> str:
        """The collection's name in Chroma. Embedded: the collection name. On a server, which several
        index dirs may share, it also carries an id of this index (meta ``chroma_collection``, given by
        the first writer): two index dirs with the same settings would otherwise share one collection,
        and a repair of one deletes the other's vectors as "belonging to no chunk". Copies of an index dir
        keep its id (they share its vectors); a server index from before keeps the name it has."""
        if self.settings.chroma_url is None:
            return self.collection_name
        row = self._read("SELECT value FROM meta WHERE key='chroma_collection'", default=())
        if row:
            return row[0][0]
        if not create or self.readonly:
            return self.collection_name
        built_before = self.embedded_count() or self.pending_count()  # its vectors are under the shared name
        import uuid

        name = self.collection_name if built_before else f"{self.collection_name}-{uuid.uuid4().hex[:8]}"
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('chroma_collection', ?)", (name,))
        return self._read("SELECT value FROM meta WHERE key='chroma_collection'", default=())[0][0]

    def _open_collection(self, create: bool):
        path = str(self.chroma_path)
        if self.readonly and self.settings.chroma_url is None:
            # Chroma writes to its store on every open: a read-only index is read from a private copy
            path = _private_copy(path, (self.chroma_path / "chroma.sqlite3").stat().st_mtime_ns)
        try:
            return _chroma_collection(self.settings.chroma_url, path, self.chroma_name(create), create=create,
                                      timeout=self.settings.chroma_timeout, tune=not self.readonly)
        except Exception as e:  # noqa: BLE001 - chromadb raises many kinds for a damaged store
            if isinstance(e, ChromaUnavailable):
                raise
            where = self.settings.chroma_url or self.chroma_path
            if type(e).__name__ in ("NotFoundError", "InvalidCollectionException") or "does not exist" in str(e):
                raise damaged(where, f"Chroma has no collection {self.chroma_name()} for the "
                                     f"{self.embedded_count()} vectors of this index", self.settings) from None
            raise damaged(where, e, self.settings) from None

    def check_vectors(self) -> None:
        """IndexDamaged when Chroma holds fewer vectors than the catalogue's chunks have (a damaged or
        replaced Chroma store: answers would silently come from BM25 alone). Checked once per generation."""
        gen = self.generation()
        if self._vectors_checked == gen:
            return
        want, have = self.embedded_count(), self.vector_count() if self.embedded_count() else 0
        if have < want:
            raise damaged(self.chroma_path if self.settings.chroma_url is None else self.settings.chroma_url,
                          f"Chroma holds {have} of the {want} vectors of this index", self.settings)
        self._vectors_checked = gen

    def vector_ids(self) -> set[str]:
        """Every id in the Chroma collection (paged)."""
        col, out, step = self.collection, set(), 5000
        total = col.count()
        for offset in range(0, total, step):
            out.update(col.get(include=[], limit=step, offset=offset)["ids"])
        return out

    def upsert_chunks(self, chunks: list[Chunk], vectors: list, tokens: list[str], pending: bool = False) -> None:
        """Vectors into Chroma first, then the chunk rows (one transaction). ``vectors[i]`` is None
        for a passage that is BM25-only (see Settings.dense); ``tokens[i]`` its space-joined BM25
        tokens, stored as int32 term ids (the text column is only read from older catalogues).
        ``pending``: the rows go to ``chunks_pending`` (invisible until :meth:`commit_files`)."""
        if not chunks:
            return
        table = "chunks_pending" if pending else "chunks"
        dense = [(c, v) for c, v in zip(chunks, vectors) if v is not None]
        col = self.collection if dense else None
        step = _max_batch(col) if dense else 1
        for i in range(0, len(dense), step):
            part = dense[i:i + step]
            col.upsert(ids=[c.chunk_id for c, _ in part], embeddings=[v for _, v in part],
                       metadatas=[_chroma_metadata(c) for c, _ in part])
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")  # the write lock before term ids are handed out
                ids = self._term_ids(tokens)
                self.db.executemany(
                    f"INSERT OR REPLACE INTO {table} ({_CHUNK_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [_chunk_row(c, v is not None, b) for c, v, b in zip(chunks, vectors, ids)])
                if not pending:
                    self._bump_generation()
        except BaseException:
            self._terms = None  # new terms were rolled back with the rows: reload from disk
            raise

    def delete_chunks(self, chunk_ids: list[str]) -> None:
        if not chunk_ids:
            return
        col = self.collection
        step = _max_batch(col)
        for i in range(0, len(chunk_ids), step):
            col.delete(ids=chunk_ids[i:i + step])
        with self.db:
            self.db.executemany("DELETE FROM chunks WHERE chunk_id=?", [(c,) for c in chunk_ids])
            self._bump_generation()

    def dense_query(self, vector, n: int, where: dict | None = None) -> list[tuple[str, float]]:
        """(chunk_id, cosine similarity) best first."""
        total = self.embedded_count()
        if total == 0:
            return []
        self.check_vectors()
        res = self.collection.query(query_embeddings=[list(map(float, vector))], n_results=min(n, total),
                                    where=where or None, include=["distances"])
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0])]

    def vector_count(self) -> int:
        return self.collection.count()

    # ------------------------------------------------------------ catalogue: files and records

    def file_sha(self, path: str) -> str | None:
        row = self.db.execute("SELECT sha FROM files WHERE path=?", (path,)).fetchone()
        return row[0] if row else None

    def file_stat(self, path: str) -> tuple[str, int, float] | None:
        row = self.db.execute("SELECT sha, size, mtime FROM files WHERE path=?", (path,)).fetchone()
        return tuple(row) if row else None

    def has_files(self) -> bool:
        """Whether any file was committed (an upgrade or first ingest finished)."""
        return self.db.execute("SELECT 1 FROM files LIMIT 1").fetchone() is not None

    def file_rows(self) -> list[dict[str, Any]]:
        """Every ingested file's row, as commit_files takes them."""
        cols = ("path", "sha", "size", "mtime", "format", "papers", "errors")
        return [dict(zip(cols, r)) for r in self.db.execute(f"SELECT {','.join(cols)} FROM files ORDER BY path")]

    def records_by_file(self) -> dict[str, list[Paper]]:
        """The raw records of every ingested file, in file order."""
        out: dict[str, list[Paper]] = {}
        for file, js in self.db.execute("SELECT file, json FROM records ORDER BY file, idx"):
            out.setdefault(file, []).append(paper_from_json(js))
        return out

    def all_records(self) -> list[Paper]:
        return [paper_from_json(r[0]) for r in self.db.execute("SELECT json FROM records ORDER BY file, idx")]

    def commit_files(self, files: list[dict], records: dict[str, list[Paper]], papers: list[Paper],
                     hashes: dict[str, str], stale_chunks: Iterable[str] = (), delta=None) -> None:
        """Record ingested files, their raw records and the new merged catalogue, atomically, with
        the pending chunk rows made live and ``stale_chunks`` dropped (their vectors are listed for
        :meth:`delete_pending_vectors`). Only catalogue rows that differ are written (a day added to a
        big index stays cheap); rows are serialised one at a time and compared inside SQLite, so
        memory does not grow with the catalogue (holding it all cost ~400 MB at 20k papers).

        ``delta`` (a rag.delta.Delta): ``papers`` are only the papers it recomputed, ``delta.removed`` the
        ones gone, and its link index rows are written too; without it ``papers`` is the whole catalogue
        (the link index is then dropped: the next ingest rebuilds it)."""
        import time

        gone = self._gone(papers, delta)
        stale = list(stale_chunks)
        pending_vectors = sorted(set(self._pending_vectors()) | set(stale))
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for f in files:
                self.db.execute("DELETE FROM records WHERE file=?", (f["path"],))
                self.db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)",
                                (f["path"], f["sha"], f["size"], f["mtime"], f["format"],
                                 f["papers"], f["errors"], time.time()))
            self.db.executemany("INSERT INTO records (file, idx, json, paper_id) VALUES (?,?,?,?)",
                                ((file, i, paper_to_json(p), p.paper_id) for file, recs in records.items()
                                 for i, p in enumerate(recs)))
            self.db.executemany("DELETE FROM papers WHERE paper_id=?", gone)
            self.db.executemany("INSERT OR REPLACE INTO papers SELECT ?1, ?2, ?3 WHERE NOT EXISTS "
                                "(SELECT 1 FROM papers WHERE paper_id=?1 AND json=?3)",
                                ((p.paper_id, hashes[p.paper_id], paper_to_json(p)) for p in papers))
            self._write_title_keys(papers, gone)
            self.db.executemany("DELETE FROM chunks WHERE chunk_id=?", [(c,) for c in stale])
            self.db.execute(f"INSERT OR REPLACE INTO chunks ({_CHUNK_COLS}) SELECT {_CHUNK_COLS} FROM chunks_pending")
            self.db.execute("DELETE FROM chunks_pending")
            if pending_vectors:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('pending_vector_deletes', ?)",
                                (json.dumps(pending_vectors),))
            self._write_links(delta)
            self._bump_generation()

    def _gone(self, papers: list[Paper], delta) -> list[tuple[str]]:
        if delta is not None:
            return [(pid,) for pid in delta.removed]
        live = {p.paper_id for p in papers}
        return [(pid,) for (pid,) in self.db.execute("SELECT paper_id FROM papers") if pid not in live]

    # ------------------------------------------------------------ title keys (rag.retrieve.pinned_papers)

    def title_keys_ready(self) -> bool:
        """Does the catalogue hold the title keys of every paper? (Catalogues from before them do not:
        a writable open builds them, a read-only one is looked up by a scan of every title.)"""
        try:
            return self.db.execute("SELECT 1 FROM meta WHERE key='title_keys'").fetchone() is not None
        except sqlite3.OperationalError:
            return False

    def _build_title_keys(self) -> None:
        """Every paper's title keys, once (a catalogue from before them), in one transaction."""
        from .text import title_keys

        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.title_keys_ready():  # another process built them meanwhile
                return
            n = self.db.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
            if n:
                print(f"digestqa: indexing the titles of {n:,} papers for name lookups (once, after an upgrade)",
                      file=sys.stderr)
            self.db.execute("DELETE FROM title_keys")
            rows = ((k, kind, pid) for pid, a, t in self.title_rows() for k, kind in title_keys(pid, a, t))
            self.db.executemany("INSERT INTO title_keys VALUES (?,?,?)", rows)
            self._update_title_words(self.db.execute(f"SELECT key FROM title_keys WHERE kind={TITLE_KEY_KIND}"))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('title_keys', '1')")

    def _write_title_keys(self, papers: list[Paper], gone: list[tuple[str]]) -> None:
        """Replace the title keys of these papers and drop those of ``gone`` (inside the caller's transaction)."""
        from .text import title_keys

        self.db.executemany("DELETE FROM title_keys WHERE paper_id=?", [(p.paper_id,) for p in papers] + gone)
        rows = [(k, kind, p.paper_id) for p in papers for k, kind in title_keys(p.paper_id, p.arxiv_id, p.title)]
        self.db.executemany("INSERT INTO title_keys VALUES (?,?,?)", rows)
        self._update_title_words((k,) for k, kind, _ in rows if kind == TITLE_KEY_KIND)

    def _update_title_words(self, keys: Iterable[tuple[str]]) -> None:
        """Raise the stored word count of the longest title key (lookups try question n-grams up to it)."""
        longest = max((len(k.split()) for (k,) in keys), default=0)
        if longest > self.title_words():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('title_words', ?)", (str(longest),))

    def title_words(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='title_words'").fetchone()
        return int(row[0]) if row else 0

    def title_matches(self, keys: Iterable[str]) -> list[tuple[str, int, int, str]]:
        """(key, kind, catalogue position, paper id) of every title key among ``keys``; the position
        orders papers as a scan of the catalogue would."""
        return list(self._in("SELECT k.key, k.kind, p.rowid, k.paper_id FROM title_keys k JOIN papers p "
                             "ON p.paper_id = k.paper_id WHERE k.key IN ({})", keys))

    def arxiv_ids_to_papers(self, ids: Iterable[str]) -> dict[str, str]:
        """Lowercased arXiv id -> paper id, for these ids (any case)."""
        want = {i.lower() for i in ids}
        if not self.title_keys_ready():
            return {a.lower(): pid for pid, a, _ in self.title_rows() if a and a.lower() in want}
        found = self.title_matches({k for i in ids for k in (i, i.lower())})
        return {k.lower(): pid for k, kind, _, pid in sorted(found, key=lambda m: m[2]) if kind != TITLE_KEY_KIND}

    # ------------------------------------------------------------ link index (rag.delta)

    def _write_links(self, delta) -> None:
        """Write a Delta's link index rows (inside the caller's transaction)."""
        if delta is None or delta.full:
            self.db.execute("DELETE FROM link_groups")
            self.db.execute("DELETE FROM link_clauses")
            self.db.execute("DELETE FROM meta WHERE key='link_index'")
            if delta is None:
                return
        gone = [(pid,) for pid in delta.groups_gone]
        self.db.executemany("DELETE FROM link_groups WHERE paper_id=?", gone)
        self.db.executemany("DELETE FROM link_clauses WHERE paper_id=?", gone + [(pid,) for pid in delta.clauses])
        self.db.executemany("INSERT OR REPLACE INTO link_groups VALUES (?,?,?,?)", delta.groups)
        self.db.executemany("UPDATE link_groups SET link=? WHERE paper_id=?",
                            [(link, pid) for pid, link in delta.links.items()])
        self.db.executemany("INSERT INTO link_clauses VALUES (?,?,?)",
                            ((pid, h, ided) for pid, (ided, hs) in delta.clauses.items() for h in hs))
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('link_index', '1')")

    def link_index_ready(self) -> bool:
        """Is the link index (rag.delta) up to date? (An empty catalogue needs none.)"""
        row = self.db.execute("SELECT value FROM meta WHERE key='link_index'").fetchone()
        return bool(row) or self.db.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None

    def _in(self, sql: str, keys: Iterable, *args) -> Iterator[tuple]:
        """Rows of ``sql`` (with one ``{}`` for an IN list) over ``keys``, 500 at a time."""
        keys = list(dict.fromkeys(keys))
        for part in _batches(keys, 500):
            yield from self.db.execute(sql.format(",".join("?" * len(part))), (*part, *args))

    def record_paper_ids(self, files: Iterable[str]) -> set[str]:
        """Paper ids of the stored records of these files."""
        return {pid for (pid,) in self._in("SELECT DISTINCT paper_id FROM records WHERE file IN ({})", files)}

    def records_of(self, paper_ids: Iterable[str], except_files: set[str] = frozenset()) -> dict[str, list[Paper]]:
        """The stored raw records of these paper ids (files in ``except_files`` left out), in file order."""
        rows = [r for r in self._in("SELECT file, idx, json, paper_id FROM records WHERE paper_id IN ({})", paper_ids)
                if r[0] not in except_files]
        out: dict[str, list[Paper]] = {}
        for _, _, js, pid in sorted(rows, key=lambda r: (r[0], r[1])):
            out.setdefault(pid, []).append(paper_from_json(js))
        return out

    def link_rows(self, paper_ids: Iterable[str]) -> dict[str, tuple[bool, str | None, str | None]]:
        """paper_id -> (has an arXiv id, title key, linked into) of these paper_id groups."""
        return {r[0]: (bool(r[1]), r[2], r[3]) for r in
                self._in("SELECT paper_id, ided, title_key, link FROM link_groups WHERE paper_id IN ({})", paper_ids)}

    def link_rows_with_keys(self, keys: Iterable[str]) -> dict[str, tuple[bool, str | None, str | None]]:
        return {r[0]: (bool(r[1]), r[2], r[3]) for r in
                self._in("SELECT paper_id, ided, title_key, link FROM link_groups WHERE title_key IN ({})", keys)}

    def linked_into(self, targets: Iterable[str]) -> dict[str, str]:
        """ID-less paper_id -> the paper it is linked into, for these targets."""
        return dict(self._in("SELECT paper_id, link FROM link_groups WHERE link IN ({})", targets))

    def link_clauses_of(self, paper_ids: Iterable[str]) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for pid, h in self._in("SELECT paper_id, clause FROM link_clauses WHERE paper_id IN ({})", paper_ids):
            out.setdefault(pid, set()).add(h)
        return out

    def clause_owners(self, clauses: Iterable[int], ided: bool) -> set[str]:
        """Paper ids (ID'd abstracts or ID-less summaries) holding any of these clause hashes."""
        return {pid for (pid,) in self._in("SELECT DISTINCT paper_id FROM link_clauses WHERE clause IN ({}) "
                                           "AND ided=?", clauses, int(ided))}

    def paper_hashes_of(self, paper_ids: Iterable[str]) -> dict[str, str]:
        return dict(self._in("SELECT paper_id, hash FROM papers WHERE paper_id IN ({})", paper_ids))

    def chunk_hashes_of(self, paper_ids: Iterable[str]) -> dict[str, str]:
        return dict(self._in("SELECT chunk_id, hash FROM chunks WHERE paper_id IN ({})", paper_ids))

    # ------------------------------------------------------------ pending work of an unfinished ingest

    def pending_hashes(self) -> dict[str, str]:
        """chunk_id -> content hash of the rows an unfinished ingest wrote (vectors already in Chroma)."""
        return dict(self._read("SELECT chunk_id, hash FROM chunks_pending", default=()))

    def pending_count(self) -> int:
        return self._read("SELECT COUNT(*) FROM chunks_pending", default=[(0,)])[0][0]

    def discard_pending(self, keep: set[str]) -> list[str]:
        """Drop the pending rows this ingest does not produce (left by an interrupted ingest of other
        content) and the vectors only they had; returns the ids whose live row's vector was replaced
        by such a row's (they need their own vector again: see rag.ingest)."""
        drop = [cid for cid in self.pending_hashes() if cid not in keep]
        if not drop:
            return []
        live = self.chunk_rows(drop)
        with self.db:
            self.db.executemany("DELETE FROM chunks_pending WHERE chunk_id=?", [(c,) for c in drop])
        orphans = [c for c in drop if c not in live]
        if orphans:
            self._delete_vectors(orphans)
        return [c for c in drop if c in live]

    def _pending_vectors(self) -> list[str]:
        row = self._read("SELECT value FROM meta WHERE key='pending_vector_deletes'", default=())
        return json.loads(row[0][0]) if row else []

    def delete_pending_vectors(self) -> int:
        """Delete from Chroma the vectors whose chunk rows a commit dropped; returns how many."""
        ids = self._pending_vectors()
        if not ids:
            return 0
        live = set(self.chunk_rows(ids))  # (a chunk made live again since keeps its vector)
        ids = [c for c in ids if c not in live]
        if ids:
            self._delete_vectors(ids)
        with self.db:
            self.db.execute("DELETE FROM meta WHERE key='pending_vector_deletes'")
        return len(ids)

    def forget_chunks_without_vectors(self, vector_ids: set[str]) -> int:
        """Drop the chunk rows (live and pending) that claim a vector Chroma does not have, so that the
        next sync re-embeds them; returns how many live rows were dropped."""
        gone = {}
        for table in ("chunks", "chunks_pending"):
            rows = self.db.execute(f"SELECT chunk_id FROM {table} WHERE embedded=1").fetchall()
            gone[table] = [(cid,) for (cid,) in rows if cid not in vector_ids]
        with self.db:
            for table, ids in gone.items():
                self.db.executemany(f"DELETE FROM {table} WHERE chunk_id=?", ids)
            if gone["chunks"]:
                self._bump_generation()
        return len(gone["chunks"])

    def delete_vectors(self, ids: list[str]) -> None:
        self._delete_vectors(ids)

    def _delete_vectors(self, ids: list[str]) -> None:
        col = self.collection
        step = _max_batch(col)
        for i in range(0, len(ids), step):
            col.delete(ids=ids[i:i + step])

    def _read(self, sql: str, default):
        """Rows of a query on a table an older catalogue may lack (opened read-only: not created)."""
        try:
            return self.db.execute(sql).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return list(default)
            raise

    def touch_file(self, path: str, size: int, mtime: float) -> None:
        """Same content, new mtime: remember it so the next run skips hashing."""
        with self.db:
            self.db.execute("UPDATE files SET size=?, mtime=? WHERE path=?", (size, mtime, path))

    def file_paths(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM files ORDER BY path")]

    def records_except(self, paths: set[str]) -> list[Paper]:
        """Raw records of every file but these (what the catalogue is re-merged from on removal)."""
        return [paper_from_json(js) for file, js in
                self.db.execute("SELECT file, json FROM records ORDER BY file, idx") if file not in paths]

    def remove_files(self, paths: list[str], papers: list[Paper], hashes: dict[str, str],
                     stale_chunks: list[str], delta=None) -> None:
        """Forget these files in one transaction: their rows and records, the stale chunk rows, and the
        merged catalogue rebuilt without them; the pending chunk rows (re-merged papers) are made live. The stale vectors are deleted from Chroma afterwards
        (:meth:`delete_pending_vectors`); until then they are listed in ``meta`` (a vector without a
        chunk row is never returned by a search), so an interrupted removal leaves an index that answers,
        and the next removal finishes the job."""
        gone = self._gone(papers, delta)
        pending = sorted(set(self._pending_vectors()) | set(stale_chunks))
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM chunks WHERE chunk_id=?", [(c,) for c in stale_chunks])
            self.db.execute(f"INSERT OR REPLACE INTO chunks ({_CHUNK_COLS}) SELECT {_CHUNK_COLS} FROM chunks_pending")
            self.db.execute("DELETE FROM chunks_pending")
            self.db.executemany("DELETE FROM records WHERE file=?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM files WHERE path=?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM papers WHERE paper_id=?", gone)
            self.db.executemany("INSERT OR REPLACE INTO papers SELECT ?1, ?2, ?3 WHERE NOT EXISTS "
                                "(SELECT 1 FROM papers WHERE paper_id=?1 AND json=?3)",
                                ((p.paper_id, hashes[p.paper_id], paper_to_json(p)) for p in papers))
            self._write_title_keys(papers, gone)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('pending_vector_deletes', ?)", (json.dumps(pending),))
            self._write_links(delta)
            self._bump_generation()

    def _pending_vectors(self) -> list[str]:
        row = self.db.execute("SELECT value FROM meta WHERE key='pending_vector_deletes'").fetchone()
        return json.loads(row[0]) if row else []

    def delete_pending_vectors(self) -> int:
        """Delete from Chroma the vectors whose chunk rows a removal dropped; returns how many."""
        ids = self._pending_vectors()
        if ids:  # (a chunk re-ingested since keeps its vector)
            live = set(self.chunk_rows(ids))
            ids = [c for c in ids if c not in live]
        if ids:
            col = self.collection
            step = _max_batch(col)
            for i in range(0, len(ids), step):
                col.delete(ids=ids[i:i + step])
        with self.db:
            self.db.execute("DELETE FROM meta WHERE key='pending_vector_deletes'")
        return len(ids)

    # ------------------------------------------------------------ catalogue: papers and chunks

    def all_papers(self) -> list[Paper]:
        return [paper_from_json(r[0]) for r in self.db.execute("SELECT json FROM papers ORDER BY paper_id")]

    def title_rows(self) -> list[tuple[str, str, str]]:
        """(paper_id, arxiv_id, title) of every paper (read in SQLite: no JSON decoding in Python)."""
        return self.db.execute("SELECT paper_id, COALESCE(json_extract(json, '$.arxiv_id'), ''), "
                               "COALESCE(json_extract(json, '$.title'), '') FROM papers").fetchall()

    def paper_hashes(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT paper_id, hash FROM papers"))

    def get_papers(self, paper_ids: Iterable[str]) -> dict[str, Paper]:
        ids = list(dict.fromkeys(paper_ids))
        out: dict[str, Paper] = {}
        for part in _batches(ids, 500):
            q = f"SELECT paper_id, json FROM papers WHERE paper_id IN ({','.join('?' * len(part))})"
            out.update({pid: paper_from_json(js) for pid, js in self.db.execute(q, part)})
        return out

    def chunk_hashes(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT chunk_id, hash FROM chunks"))

    def meta_chunk_ids(self, label: str) -> set[str]:
        """Ids of the metadata passages that hold a field ``label`` ("Comment", "Code", "License")."""
        return {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks WHERE field='meta' AND text LIKE ?",
                                              (f"%{label}: %",))}

    def authors_by_paper(self) -> dict[str, str]:
        """Every paper's author string (as stored with its passages)."""
        return dict(self.db.execute("SELECT paper_id, MAX(authors) FROM chunks GROUP BY paper_id"))

    def chunk_rows(self, chunk_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(chunk_ids))
        cols = ("chunk_id", "paper_id", "field", "lang", "text", "date_int", "title", "arxiv_id")
        out: dict[str, dict[str, Any]] = {}
        for part in _batches(ids, 500):
            q = f"SELECT {','.join(cols)} FROM chunks WHERE chunk_id IN ({','.join('?' * len(part))})"
            out.update({r[0]: dict(zip(cols, r)) for r in self.db.execute(q, part)})
        return out

    def chunk_count(self) -> int:
        return self._counts()[0]

    def embedded_count(self) -> int:
        """Chunks that have a vector in Chroma (the others are BM25-only)."""
        return self._counts()[1]

    def _counts(self) -> tuple[int, int]:
        """(chunks, embedded chunks), recounted only when the generation moved (queries call this)."""
        gen = self.generation()
        if self._count_cache is None or self._count_cache[0] != gen:
            c, e = self.db.execute(COUNTS_SQL).fetchone()
            self._count_cache = (gen, c, e)
        return self._count_cache[1], self._count_cache[2]

    # ------------------------------------------------------------ BM25 term ids

    def term_count(self) -> int:
        """How many term ids there are (ids are 0 .. count - 1)."""
        last = self.db.execute("SELECT MAX(id) FROM terms").fetchone()[0]
        return last + 1 if last is not None else 0

    def terms(self) -> dict[str, int]:
        """The persistent BM25 vocabulary: term -> id (ids are never reused or renumbered)."""
        if self._terms is None:
            self._terms = _Terms(self.db.execute("SELECT term, id FROM terms"))
        return self._terms

    def _term_ids(self, tokens: list[str | None]) -> list[bytes]:
        """Each space-joined token string as int32 term ids (new terms inserted; call holding the
        write lock: another process may have added terms since they were cached)."""
        last = self.db.execute("SELECT MAX(id) FROM terms").fetchone()[0]
        count = last + 1 if last is not None else 0
        if self._terms is not None and len(self._terms) != count:
            self._terms = None
        if self._terms is None and count > _TERMS_LOOKUP:  # a day added to a big index: look up its terms only
            uniq = list(dict.fromkeys(t for text in tokens if text for t in text.split()))
            terms = _Terms(self._in("SELECT term, id FROM terms WHERE term IN ({})", uniq), next_id=count)
        else:
            terms = self.terms()
        # (a missing term gets the next id and is queued in terms.new)
        out = [array("i", map(terms.__getitem__, text.split())).tobytes() if text else b"" for text in tokens]
        if terms.new:
            self.db.executemany("INSERT INTO terms VALUES (?,?)", terms.new)
            terms.new = []
        return out

    def chunk_token_ids(self, paper_ids: Iterable[str] | None = None) -> tuple[list[str], bytearray, array]:
        """Chunk ids (sorted), every chunk's int32 term ids back to back in one buffer, and how
        many belong to each chunk (of every chunk, or of these papers' chunks); rows written before
        term ids were stored get theirs first (one transaction)."""
        missing = self.db.execute("SELECT chunk_id, tokens FROM chunks WHERE tok_ids IS NULL").fetchall()
        if missing:
            try:
                with self.db:
                    self.db.execute("BEGIN IMMEDIATE")
                    blobs = self._term_ids([t for _, t in missing])
                    self.db.executemany("UPDATE chunks SET tok_ids=? WHERE chunk_id=?",
                                        [(b, cid) for (cid, _), b in zip(missing, blobs)])
            except BaseException:
                self._terms = None
                raise
        ids, buf, lens = [], bytearray(), array("i")
        rows = self.db.execute("SELECT chunk_id, tok_ids FROM chunks ORDER BY chunk_id") if paper_ids is None else \
            sorted(self._in("SELECT chunk_id, tok_ids FROM chunks WHERE paper_id IN ({})", paper_ids))
        for cid, blob in rows:
            ids.append(cid)
            buf += blob or b""
            lens.append(len(blob or b"") // 4)
        return ids, buf, lens

    def filtered_chunk_ids(self, since: int | None, until: int | None, category: str | None,
                           author: str | None) -> set[str]:
        """Chunk ids whose paper passes the filters (dates as YYYYMMDD ints)."""
        sql, args = ["SELECT chunk_id FROM chunks WHERE 1=1"], []
        if since:
            sql.append("AND date_int >= ?"), args.append(since)
        if until:
            sql.append("AND date_int > 0 AND date_int <= ?"), args.append(until)
        if category:
            sql.append("AND (',' || lower(categories) || ',') LIKE ?"), args.append(f"%,{category.lower()},%")
        if author:
            sql.append("AND lower(authors) LIKE ?"), args.append(f"%{author.lower()}%")
        return {r[0] for r in self.db.execute(" ".join(sql), args)}

    # ------------------------------------------------------------ generation counter (BM25 freshness)

    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def _bump_generation(self) -> None:
        self.db.execute("INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) "
                        "DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    # ------------------------------------------------------------ BM25 files

    def save_bm25_segment(self, seg: dict, generation: int, replace: bool = False,
                          dead: list[tuple[int, int]] = (), keep: int | None = None) -> None:
        """Write one BM25 segment (rag.retrieve._segment) and a manifest naming it. ``replace``: it is the
        whole index (a rebuild: a new dir swapped in, so a reader never sees half an index); else it is
        appended after the first ``keep`` segments (default: all; the others are the ones it merges), with
        ``dead`` the (segment, position) pairs of those it replaces, and the manifest swapped last (a reader
        of the old manifest still finds every file it names: segments merged away are deleted by the next
        save)."""
        import numpy as np

        manifest = None if replace else self.bm25_manifest()
        if manifest is None:
            tmp = Path(tempfile.mkdtemp(prefix=".bm25-", dir=self.root))
            names, docs, prev_terms = [], [], 0
        else:
            tmp = self.bm25_dir
            keep = len(manifest["segments"]) if keep is None else keep
            names, docs = manifest["segments"][:keep], manifest["docs"][:keep]
            prev_terms = self._terms_before(manifest, keep)
            self._drop_unlisted_segments(manifest)
        name = f"s{len(names):05d}-{generation}"
        part = Path(tempfile.mkdtemp(prefix=".seg-", dir=tmp))
        for key in ("indptr", "docs", "tf", "lens"):
            np.save(part / f"{key}.npy", seg[key])
        np.save(part / "ids.npy", np.array([c.encode("utf-8") for c in seg["ids"]], dtype=bytes))
        inverse = {i: t for t, i in self.db.execute("SELECT term, id FROM terms WHERE id >= ?", (prev_terms,))}
        (part / "meta.json").write_text(json.dumps({"dead": [list(d) for d in dead]}))
        np.save(part / "terms.npy", np.array([inverse.get(i, "").encode("utf-8")
                                              for i in range(prev_terms, seg["n_terms"])], dtype=bytes))
        os.replace(part, tmp / name)
        n_terms = max(manifest["n_terms"] if manifest else 0, seg["n_terms"])
        _atomic_write(tmp / "manifest.json", json.dumps(
            {"format": 2, "generation": generation, "segments": [*names, name], "docs": [*docs, len(seg["ids"])],
             "n_terms": n_terms}).encode())
        if tmp != self.bm25_dir:
            old = Path(tempfile.mkdtemp(prefix=".bm25-old-", dir=self.root))
            try:
                os.replace(self.bm25_dir, old / "x")
            except FileNotFoundError:
                pass
            try:
                os.replace(tmp, self.bm25_dir)
            except OSError:  # another writer swapped its (equally fresh) files in meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.bm25_dir.with_name(self.bm25_dir.name + ".old"), ignore_errors=True)  # older layout
        _load_bm25_cached.cache_clear()

    def _terms_before(self, manifest: dict, keep: int) -> int:
        """How many term ids the first ``keep`` segments know (a segment lists the terms it added)."""
        import numpy as np

        if keep >= len(manifest["segments"]):
            return manifest["n_terms"]
        d = self.bm25_dir / manifest["segments"][keep]
        return len(np.load(d / "indptr.npy", mmap_mode="r")) - 1 - len(np.load(d / "terms.npy", mmap_mode="r"))

    def _drop_unlisted_segments(self, manifest: dict) -> None:
        """Delete segment dirs the current manifest no longer names (merged away by an earlier save)."""
        listed = set(manifest["segments"])
        for d in self.bm25_dir.iterdir():
            if d.is_dir() and d.name.startswith("s") and d.name not in listed:
                shutil.rmtree(d, ignore_errors=True)

    def bm25_segment_ids(self, manifest: dict, segments: Iterable[int]) -> list[str]:
        """The chunk ids held by these segments (dead ones included)."""
        import numpy as np

        out: list[str] = []
        for k in segments:
            ids = np.load(self.bm25_dir / manifest["segments"][k] / "ids.npy", mmap_mode="r")
            out += [c.decode("utf-8") for c in ids.tolist()]
        return out

    def bm25_dead(self, manifest: dict, segments: Iterable[int]) -> list[tuple[int, int]]:
        """The (segment, position) pairs these segments mark dead."""
        out: list[tuple[int, int]] = []
        for k in segments:
            meta = json.loads((self.bm25_dir / manifest["segments"][k] / "meta.json").read_text())
            out += [(int(a), int(b)) for a, b in meta["dead"]]
        return out

    def bm25_manifest(self) -> dict | None:
        """The BM25 files' manifest (generation, segment names and sizes), None if missing or unreadable."""
        try:
            m = json.loads((self.bm25_dir / "manifest.json").read_text())
            return m if m.get("format") == 2 else None
        except (OSError, ValueError):
            return None

    def bm25_positions(self, manifest: dict, chunk_ids: Iterable[str]) -> list[tuple[int, int]]:
        """(segment, position) of every copy of these chunk ids in the BM25 segments (each segment's ids
        are sorted: a binary search in its memory-mapped id array)."""
        import numpy as np

        keys = np.array(sorted({c.encode("utf-8") for c in chunk_ids}), dtype=bytes)
        out: list[tuple[int, int]] = []
        if not len(keys):
            return out
        for k, name in enumerate(manifest["segments"]):
            ids = np.load(self.bm25_dir / name / "ids.npy", mmap_mode="r")
            if not len(ids):
                continue
            pos = np.searchsorted(ids, keys)
            ok = pos < len(ids)
            ok[ok] = ids[pos[ok]] == keys[ok]
            out += [(k, int(p)) for p in pos[ok]]
        return out

    def load_bm25(self):
        """(rag.retrieve.SegmentedBM25 or None, chunk id of each position, generation) or None when missing,
        unreadable (a damaged file: the BM25 files are rebuilt from the catalogue, see rag.retrieve) or
        written by an older digestqa (``bm25_old_format``: rebuilt the same way)."""
        meta = self.bm25_dir / "manifest.json"
        try:
            return _load_bm25_cached(str(self.bm25_dir), meta.stat().st_mtime_ns)
        except FileNotFoundError:
            self.bm25_old_format = (self.bm25_dir / "ids.json").exists() and not meta.exists()
            return None
        except Exception as e:  # noqa: BLE001 - any damage: truncated .npy, broken JSON, wrong shapes
            self.bm25_error = f"{type(e).__name__}: {e}"
            return None

    @contextmanager
    def try_writer_lock(self):
        """Yields True holding the index's write lock when nobody else holds it, else False (no wait)."""
        if self.readonly:
            yield False
            return
        with writer_lock(self.settings, wait=False) as got:
            yield got

    # ------------------------------------------------------------ uploads and stats

    def uploads_dir(self) -> Path:
        d = self.root / "uploads"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def stats(self) -> dict[str, Any]:
        one = lambda q: self.db.execute(q).fetchone()[0]  # noqa: E731
        out = {
            "papers": one("SELECT COUNT(*) FROM papers"),
            "chunks": one("SELECT COUNT(*) FROM chunks"),
            "vectors": one("SELECT COUNT(*) FROM chunks WHERE embedded=1"),
            "sources": one("SELECT COUNT(*) FROM files"),
            "source_files": [r[0] for r in self.db.execute("SELECT path FROM files ORDER BY path")],
            "embedder": self.settings.embedder,
            "index_dir": str(self.root),
            "chroma": self.settings.chroma_url or str(self.root / "chroma"),
            "collection": self.collection_name,
            "schema": self.schema,
        }
        if self.settings.chroma_url is not None:
            out["chroma_collection"] = self.chroma_name()
        pending = self.pending_count()
        if pending:
            out["unfinished"] = (f"{pending} passages of an interrupted ingest (not searchable; the same ingest "
                                 "run again finishes it)")
        problems = self.quick_problems(out["vectors"])
        if problems:
            out["problems"] = problems
        return out

    def quick_problems(self, vectors: int) -> list[str]:
        """What a look at the files (without opening Chroma) shows is damaged; `digestqa doctor` checks all."""
        fix = f"run `digestqa{index_flag(self.settings)} repair`"
        out = []
        if vectors and self.settings.chroma_url is None and not (self.chroma_path / "chroma.sqlite3").exists():
            out.append(f"the Chroma store {self.chroma_path} is missing ({vectors} vectors gone): {fix}")
        if self.chunk_count() and self.load_bm25() is None and (self.bm25_dir.exists() or self.bm25_error) \
                and not self.bm25_old_format:
            out.append(f"the BM25 files in {self.bm25_dir} are damaged ({self.bm25_error or 'unreadable'}): "
                       f"they are rebuilt on the next ask or {fix}")
        return out

    def close(self) -> None:
        self.db.close()

    def drop(self) -> None:
        """Delete this collection for good: its vectors, catalogue and BM25 files (a stale index,
        once an upgrade has re-indexed its records)."""
        from chromadb.errors import NotFoundError

        try:
            client = _chroma_client(self.settings.chroma_url, str(self.root / "chroma"), self.settings.chroma_timeout)
            _remote_call(self.settings.chroma_url, client.delete_collection, self.chroma_name())
        except NotFoundError:  # never created (no passage had a vector) or already dropped
            pass
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        for d in (self.bm25_dir, self.bm25_dir.with_name(self.bm25_dir.name + ".old")):
            shutil.rmtree(d, ignore_errors=True)
        _load_bm25_cached.cache_clear()


# ---------------------------------------------------------------- damaged, read-only and locked indexes

class IndexDamaged(RuntimeError):
    """An index file is damaged or missing; the message names it and the command that fixes it."""


class IndexReadOnly(RuntimeError):
    """A write (ingest, repair) was asked of an index dir that cannot be written."""


def index_flag(settings: Settings) -> str:
    """``--index DIR`` as the user should type it in a fixing command ('' for the default index)."""
    default = Path(config._default_index_dir()).expanduser()
    root = Path(settings.index_dir).expanduser()
    return "" if root == default else f" --index {root}"


def damaged(path: Path | str, error: BaseException | str, settings: Settings) -> IndexDamaged:
    """The one-line error for a damaged index file: what, which file, how to fix it."""
    what = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return IndexDamaged(f"index file {path} is damaged ({what}); run `digestqa{index_flag(settings)} repair` "
                        f"(`digestqa doctor` lists every problem)")


def _read_only(root: Path, db_path: Path) -> bool:
    """An existing index dir (or catalogue) this process cannot write (permissions, read-only mount)."""
    if not root.is_dir():
        return False
    return not os.access(root, os.W_OK) or (db_path.exists() and not os.access(db_path, os.W_OK))


def _connect_read_only(db_path: Path) -> sqlite3.Connection:
    """A connection that never writes. A WAL catalogue needs its -shm file, which a read-only dir
    cannot get: when the WAL was checkpointed away (a clean close) the file is opened immutable."""
    if not db_path.exists():  # a fresh index nobody can write: an empty in-memory catalogue
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.executescript(_SCHEMA)
        return db
    uri = db_path.resolve().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30, check_same_thread=False)
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as e:
        wal = Path(f"{db_path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise IndexReadOnly(f"cannot read the catalogue {db_path} read-only ({e}): its write-ahead log "
                                f"{wal.name} holds changes SQLite must merge first; run `digestqa stats` once "
                                "with write access to the index") from None
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)


def _retry_locked(fn, tries: int = 20):
    """Run ``fn``, retrying while another connection holds a lock SQLite does not wait for (two
    processes switching a fresh catalogue to WAL at once get 'database is locked' at once)."""
    import time

    for i in range(tries):
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or i == tries - 1:
                raise
            time.sleep(0.05 * (i + 1))


def salvage_catalogue(settings: Settings) -> tuple[Path, int, list[str]]:
    """Move a damaged catalogue aside (with its WAL files) and copy what SQLite can still read of it
    into a new one: the digest files whose records are all readable, with their records (the rest
    is rebuilt from them). Returns (where the damaged file went, files recovered, files lost: to
    ingest again)."""
    import time

    path = _catalogue_path(Path(settings.index_dir).expanduser(), settings.collection_name)
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    files, records = _readable_rows(aside)
    kept = [f for f in files if len(records.get(f[0], ())) == f[5]]
    lost = sorted({f[0] for f in files} - {f[0] for f in kept})
    new = Store(settings, readonly=False, writer=True)
    try:
        with new.db:
            new.db.executemany("INSERT INTO files VALUES (?,?,?,?,?,?,?,?)", kept)
            new.db.executemany("INSERT INTO records (file, idx, json, paper_id) VALUES (?1,?2,?3,"
                               "json_extract(?3, '$.paper_id'))",
                               ((f[0], i, js) for f in kept for i, js in enumerate(records[f[0]])))
            # a generation no BM25 file of the old catalogue can carry: they are rebuilt
            new.db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(int(time.time())),))
    finally:
        new.close()
    return aside, len(kept), lost


def _readable_rows(path: Path) -> tuple[list[tuple], dict[str, list[str]]]:
    """(file rows, record JSON by file in order) as far as SQLite can read them from a damaged file."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        # a truncated file is smaller than its header says: SQLite then refuses to read any table
        # unless the schema is "writable" (it then trusts the file's size)
        db.execute("PRAGMA writable_schema=ON")
    except sqlite3.Error:
        return [], {}
    files, recs = [], {}
    try:
        files = _tolerant(db, "files", "path, sha, size, mtime, format, papers, errors, ingested_at")
        rows = sorted(_tolerant(db, "records", "file, idx, json"), key=lambda r: (r[0], r[1]))
        for file, idx, js in rows:
            recs.setdefault(file, []).append(js)
    finally:
        db.close()
    for file, rows in recs.items():  # a record that does not decode is as good as lost
        try:
            [paper_from_json(js) for js in rows]
        except Exception:  # noqa: BLE001
            recs[file] = []
    return files, recs


def _tolerant(db: sqlite3.Connection, table: str, cols: str) -> list[tuple]:
    """The rows of ``table`` SQLite can still read: rowids from the table's b-tree (as far as it goes),
    then each row on its own (a row whose text sits in a lost page is skipped)."""
    rowids: list[int] = []
    try:
        for (rid,) in db.execute(f"SELECT rowid FROM {table}"):
            rowids.append(rid)
    except sqlite3.DatabaseError:
        pass
    out: list[tuple] = []
    for rid in rowids:
        try:
            row = db.execute(f"SELECT {cols} FROM {table} WHERE rowid=?", (rid,)).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None:
            out.append(row)
    return out


def is_corruption(e: BaseException) -> bool:
    """A SQLite error that means a damaged file (not a busy or read-only one)."""
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    if not isinstance(e, sqlite3.OperationalError):
        return True
    return any(w in str(e) for w in ("malformed", "not a database", "corrupt", "disk I/O error"))


def catalogue_path(settings: Settings) -> Path:
    """The catalogue file ``open_store`` reads for these settings."""
    root = Path(settings.index_dir).expanduser()
    path = _catalogue_path(root, settings.collection_name)
    older = older_collections(settings)
    return _catalogue_path(root, older[0][1]) if older and not path.exists() else path


@contextmanager
def guard(settings: Settings):
    """Turn SQLite corruption errors raised inside into IndexDamaged naming the catalogue."""
    try:
        yield
    except sqlite3.DatabaseError as e:
        if not is_corruption(e):
            raise
        raise damaged(catalogue_path(settings), e, settings) from None


LOCK_FILE = "write.lock"


@contextmanager
def writer_lock(settings: Settings, on_wait=None, wait: bool = True):
    """Hold the index dir's write lock (``<index>/write.lock``, released by the OS when the process
    ends, however it ends); yields True. When another process (or thread) holds it, ``on_wait(message)``
    is called once ("another ingest is running (pid N); waiting"; printed to stderr by default) and this
    waits; with ``wait=False`` it yields False at once instead."""
    root = Path(settings.index_dir).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fh = os.fdopen(os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0)
    except OSError as e:
        raise IndexReadOnly(f"cannot write to the index dir {root} ({e.strerror}): ingest and repair need a "
                            "writable index (ask, papers, stats and doctor work read-only)") from None
    try:
        if not _lock(fh, block=False):
            if not wait:
                fh.close()
                yield False
                return
            pid = lock_holder(root) or "unknown"
            message = f"another ingest is running (pid {pid}); waiting"
            (on_wait or _print_wait)(message)
            _lock(fh, block=True)
        # the holder's pid, padded to a fixed width: overwritten in place (a truncate cost ~3 ms here)
        os.pwrite(fh.fileno(), f"{os.getpid():<20}\n".encode(), 0)
        yield True
    finally:
        if not fh.closed:
            _unlock(fh)
            fh.close()


def lock_holder(root: Path | str) -> int | None:
    """The pid of the process holding the index dir's write lock, or None when nobody holds it."""
    path = Path(root).expanduser() / LOCK_FILE
    try:
        fh = open(path, "r")
    except OSError:
        return None
    with fh:
        if _lock(fh, block=False, shared=True):
            _unlock(fh)
            return None
        text = fh.read().strip()
    return int(text) if text.isdigit() else -1


def _print_wait(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def _lock(fh, block: bool, shared: bool = False) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        while True:
            try:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not block:
                    return False
                import time

                time.sleep(0.2)
    flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if block else fcntl.LOCK_NB)
    try:
        fcntl.flock(fh.fileno(), flags)
        return True
    except BlockingIOError:
        return False


def _unlock(fh) -> None:
    try:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
    except OSError:
        pass


# ---------------------------------------------------------------- helpers

def open_store(settings: Settings) -> Store:
    """The store of ``settings``; while it holds no files and an index built by an older schema
    exists, that one instead (its chunks keep the older text until the next ingest upgrades it)."""
    store = Store(settings)
    older = older_collections(settings)
    if not older or store.has_files():
        return store
    store.close()
    version, name = older[0]
    return Store(settings, collection=name, schema=version)


def older_collections(settings: Settings) -> list[tuple[int, str]]:
    """(schema version, collection name) of the indexes an older schema built with these settings
    in this index dir, newest first."""
    root = Path(settings.index_dir).expanduser()
    names = ((v, settings.collection_name_at(v)) for v in range(config.SCHEMA_VERSION - 1, 0, -1))
    return [(v, name) for v, name in names if _catalogue_path(root, name).exists()]


def _catalogue_path(root: Path, collection: str) -> Path:
    return root / f"catalogue-{collection}.sqlite"


_TERMS_LOOKUP = 50_000  # above this many terms, an ingest looks up its own terms instead of loading all


class _Terms(dict):
    """term -> id; a lookup of an unknown term assigns the next id and queues (term, id) in .new."""

    def __init__(self, rows=(), next_id: int | None = None):
        super().__init__(rows)
        self.new: list[tuple[str, int]] = []
        self.next = len(self) if next_id is None else next_id  # (a partial table: rows of some terms)

    def __missing__(self, term: str) -> int:
        i = self[term] = self.next
        self.next += 1
        self.new.append((term, i))
        return i


COUNTS_SQL = "SELECT COUNT(*), COALESCE(SUM(embedded), 0) FROM chunks"  # covered by index chunks_embedded

_CHROMA_KEYS = ("paper_id", "date_int", "field", "lang")


def _chroma_metadata(c: Chunk) -> dict:
    """What Chroma keeps beside a vector: the fields dense queries filter on (date_int) and say
    what the vector is. Texts, titles and authors live in the catalogue only: with documents and
    every metadata field, Chroma's upserts took 4.7x as long (2,048 vectors: 4.1 s vs 0.87 s;
    its full-text index of documents was most of it)."""
    return {k: c.metadata[k] for k in _CHROMA_KEYS if k in c.metadata}


_CHUNK_COLS = ("chunk_id, paper_id, field, lang, text, hash, tokens, date_int, categories, authors, title, "
               "arxiv_id, embedded, tok_ids")


def _chunk_row(c: Chunk, embedded: bool, tok_ids: bytes) -> tuple:
    m = c.metadata
    return (c.chunk_id, c.paper_id, c.field, c.lang, c.text, c.content_hash, None,
            int(m.get("date_int") or 0), m.get("categories", ""), m.get("authors", ""),
            m.get("title", ""), m.get("arxiv_id", ""), int(embedded), tok_ids)


def _batches(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _max_batch(collection) -> int:
    try:
        return max(1, min(5000, collection._client.get_max_batch_size()))
    except Exception:  # older/newer clients without the helper
        return 1000


@lru_cache(maxsize=4)
def _load_bm25_cached(path: str, _mtime: int):
    import numpy as np

    from .retrieve import SegmentedBM25

    manifest = json.loads((Path(path) / "manifest.json").read_text())
    if manifest.get("format") != 2:
        raise ValueError("manifest.json is not a BM25 manifest")
    segs = []
    for name in manifest["segments"]:
        d = Path(path) / name
        meta = json.loads((d / "meta.json").read_text())
        seg = {k: np.load(d / f"{k}.npy", mmap_mode="r") for k in ("indptr", "docs", "tf", "lens", "ids", "terms")}
        seg["dead"] = [tuple(x) for x in meta["dead"]]
        _check_segment(seg, len(segs))
        segs.append(seg)
    if not any(len(s["ids"]) for s in segs):
        return None, [], int(manifest["generation"])
    lookup = _TermLookup.of(Path(path), segs, int(manifest["n_terms"]))
    model = SegmentedBM25(segs, lambda: _vocab(segs), lookup=lookup)
    return model, model.ids, int(manifest["generation"])


class _TermLookup:
    """BM25 term ids looked up in the catalogue's term table (the ids the segment files were written
    with; ids never change), so a query does not load the whole vocabulary: a dict of every term costs
    time and memory that grow with the index. Holds its own read-only connection (shared by threads)."""

    def __init__(self, db: sqlite3.Connection, n_terms: int):
        import threading

        self.db, self.n_terms, self.lock = db, n_terms, threading.Lock()

    @classmethod
    def of(cls, bm25_dir: Path, segs: list[dict], n_terms: int) -> "_TermLookup | None":
        """The lookup for these segment files, or None when the catalogue's terms disagree with theirs (a
        replaced catalogue: the segments' own vocabulary is used instead)."""
        db_path = bm25_dir.with_name("catalogue-" + bm25_dir.name.removeprefix("bm25-") + ".sqlite")
        if not db_path.exists():
            return None
        try:
            lookup = cls(_connect_read_only(db_path), n_terms)
            return lookup if lookup._agrees(segs) else None
        except sqlite3.Error:
            return None

    def _agrees(self, segs: list[dict]) -> bool:
        """Does the term table give the first and last term of every segment its id?"""
        for seg in segs:
            terms, start = seg["terms"], len(seg["indptr"]) - 1 - len(seg["terms"])
            for i in {0, len(terms) - 1} if len(terms) else ():
                t = terms[i].decode("utf-8")
                if t and self.ids([t]).get(t) != start + i:
                    return False
        return True

    def ids(self, terms: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        with self.lock:
            for part in _batches(list(terms), 500):
                q = f"SELECT term, id FROM terms WHERE term IN ({','.join('?' * len(part))}) AND id < ?"
                out.update(self.db.execute(q, (*part, self.n_terms)))
        return out

    def between(self, lo: str, hi: str, limit: int) -> list[str]:
        with self.lock:
            rows = self.db.execute("SELECT term FROM terms WHERE term >= ? AND term < ? AND id < ? AND term != '' "
                                   "ORDER BY term LIMIT ?", (lo, hi, self.n_terms, limit)).fetchall()
        return [r[0] for r in rows]


def _vocab(segs: list[dict]) -> dict[str, int]:
    """term -> id from the terms each segment added (built when a query first needs it)."""
    vocab: dict[str, int] = {}
    for seg in segs:
        start = len(seg["indptr"]) - 1 - len(seg["terms"])
        vocab.update((t.decode("utf-8"), start + i) for i, t in enumerate(seg["terms"].tolist()) if t)
    return vocab


def _check_segment(seg: dict, number: int) -> None:
    """Shapes a sound BM25 segment has (a truncated or swapped .npy breaks them)."""
    indptr, docs, tf = seg["indptr"], seg["docs"], seg["tf"]
    if len(seg["lens"]) != len(seg["ids"]):
        raise ValueError(f"BM25 segment {number} has {len(seg['lens'])} lengths for {len(seg['ids'])} chunks")
    if len(docs) != len(tf) or len(indptr) < 1 or int(indptr[-1]) != len(docs) or int(indptr[0]) != 0:
        raise ValueError("BM25 arrays disagree in length")
    if any(not (0 <= k <= number and p >= 0) for k, p in seg["dead"]):
        raise ValueError(f"BM25 segment {number} names positions of a later segment dead")


@lru_cache(maxsize=4)
def _private_copy(path: str, _mtime: int) -> str:
    """A temporary copy of a Chroma store this process cannot write (removed at exit)."""
    import atexit

    tmp = tempfile.mkdtemp(prefix="digestqa-chroma-")
    atexit.register(shutil.rmtree, tmp, True)
    shutil.copytree(path, tmp, dirs_exist_ok=True)
    return tmp


@lru_cache(maxsize=8)
def _chroma_client(url: str | None, path: str, timeout: float = 60.0):
    """The embedded PersistentClient at ``path``, or an HttpClient of the server at ``url`` whose requests
    time out after ``timeout`` seconds (chromadb's own client waits for ever: a stalled server would hang
    every ask). A server that does not answer raises :class:`ChromaUnavailable`."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    cs = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if not url:
        return chromadb.PersistentClient(path=path, settings=cs)
    u = urlparse(url if "://" in url else f"http://{url}")
    _heartbeat(url, u, min(timeout, _CONNECT_TIMEOUT))  # the client's constructor asks without a timeout
    client = _remote_call(url, chromadb.HttpClient, host=u.hostname or "127.0.0.1", port=u.port or 8000,
                          ssl=u.scheme == "https", settings=cs)
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is not None:
        import httpx

        session.timeout = httpx.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT))
    return client


# HNSW candidates kept per query. Chroma's default (100) let a dense query miss a chunk that belongs in its top
# 40 in some processes and not in others: vectors not yet in the persisted graph are re-inserted on load, in
# varying order, so the graph differs per process. 200 makes the top-40 stable (a corpora-dev list question's
# sources changed in 4 of 8 fresh processes at 100, in 0 of 8 at 200).
SEARCH_EF = 200


def _chroma_collection(url: str | None, path: str, name: str, create: bool = True, tune: bool = True,
                       timeout: float = 60.0):
    """The collection (created if ``create``); with ``tune``, one made with a smaller search list (an index
    built before SEARCH_EF) is given SEARCH_EF, once. On a server, its requests go through _remote_call."""
    client = _chroma_client(url, path, timeout)
    if not create:
        col = _remote_call(url, client.get_collection, name=name, embedding_function=None)
    else:
        col = _remote_call(url, client.get_or_create_collection, name=name, embedding_function=None,
                           metadata={"hnsw:space": "cosine"})
    if url:
        col = _RemoteCollection(col, url)
    if tune and ((col.configuration or {}).get("hnsw") or {}).get("ef_search", 0) < SEARCH_EF:
        col.modify(configuration={"hnsw": {"ef_search": SEARCH_EF}})
    return col


# ---------------------------------------------------------------- Chroma server mode: timeouts, retries

class ChromaUnavailable(RuntimeError):
    """The Chroma server of ``--chroma-url`` does not answer (down, unreachable or stalled)."""


_CONNECT_TIMEOUT = 10.0
_RETRY_PAUSES = (0.5, 1.5)  # seconds before the 2nd and 3rd try of a request the server never got


def chroma_unavailable(url: str, error: BaseException | str) -> ChromaUnavailable:
    what = error if isinstance(error, str) else f"{type(error).__name__}: {error}".rstrip(": ")
    return ChromaUnavailable(
        f"the Chroma server {url} does not answer ({what}); start it (`chroma run --path DIR --host 127.0.0.1 "
        f"--port PORT`) or give the right --chroma-url / DIGESTQA_CHROMA_URL. The catalogue and BM25 files "
        f"in the index dir are unchanged; an interrupted ingest finishes when run again")


def _heartbeat(url: str, u, timeout: float) -> None:
    """Raise ChromaUnavailable unless the server answers its heartbeat within ``timeout`` seconds."""
    import urllib.error
    import urllib.request

    base = f"{u.scheme or 'http'}://{u.netloc}" if "://" in url else f"http://{url}"
    try:
        with urllib.request.urlopen(f"{base.rstrip('/')}/api/v2/heartbeat", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # it answers (e.g. auth required): the client says what is wrong
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise chroma_unavailable(url, f"{type(reason).__name__}: {reason}") from None


def _remote_call(url: str | None, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; against a server, a request the connection lost (refused, reset: a server
    restarting) is tried again twice, then, like a timeout, raised as ChromaUnavailable. Every call this
    store makes is idempotent (upsert, delete by id, get, query, count), so a retry never doubles anything."""
    if not url:
        return fn(*args, **kwargs)
    import httpx

    for pause in (*_RETRY_PAUSES, None):
        try:
            return fn(*args, **kwargs)
        except httpx.TimeoutException as e:  # a stalled server: waiting again would only double the wait
            raise chroma_unavailable(url, f"no answer within the timeout ({type(e).__name__})") from None
        except (httpx.TransportError, ValueError) as e:
            if isinstance(e, ValueError) and "could not connect" not in str(e).lower():
                raise  # chromadb's own errors (bad arguments, missing collection) are not the connection's
            if pause is None:
                raise chroma_unavailable(url, e) from None
            import time

            time.sleep(pause)


class _RemoteCollection:
    """A server collection whose requests go through :func:`_remote_call` (timeouts, retries, one clear
    error); everything else is the chromadb Collection's."""

    _CALLS = frozenset({"upsert", "add", "delete", "get", "query", "count", "peek", "modify"})

    def __init__(self, collection, url: str):
        self._collection, self._url = collection, url

    def __getattr__(self, name: str):
        attr = getattr(self._collection, name)
        if name not in self._CALLS:
            return attr
        return lambda *a, **k: _remote_call(self._url, attr, *a, **k)


# ---------------------------------------------------------------- workflow data: sync sources, watches, downloads
#
#   <index>/workflows/<name>.json        small state files (sync sources, watches), replaced atomically
#   <index>/workflows/.<name>.lock       flock held while a state file is read-modified-written
#   <index>/downloads/<source>/<file>    digests fetched by `digestqa sync`, ingested from there

import re as _re  # noqa: E402  (kept with the section that uses it)

_SAFE_NAME = _re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, limit: int = 120) -> str:
    """A file/folder name that stays inside its parent: no separators, no leading dots, bounded length."""
    out = _SAFE_NAME.sub("_", name).strip("._")[:limit]
    return out or "unnamed"


def workflow_path(settings: Settings, name: str, create: bool = True) -> Path:
    """``<index>/workflows/<name>.json`` (the folder is created unless ``create`` is False: a read must
    work on a read-only index)."""
    d = Path(settings.index_dir).expanduser() / "workflows"
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d / f"{safe_name(name)}.json"


def read_state(settings: Settings, name: str, default: Any = None) -> Any:
    """The JSON state file ``name`` (default when it does not exist yet)."""
    p = workflow_path(settings, name, create=False)
    if not p.exists():
        return default
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{p}: not valid JSON ({e}); fix or delete the file") from None


def write_state(settings: Settings, name: str, value: Any) -> None:
    """Replace the JSON state file ``name`` atomically (a reader sees the old or the new file, never half)."""
    _atomic_write(workflow_path(settings, name), json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8"))


class state_lock:
    """``with state_lock(settings, name):`` one read-modify-write of a state file at a time (flock)."""

    def __init__(self, settings: Settings, name: str):
        self.path = workflow_path(settings, name).with_name(f".{safe_name(name)}.lock")

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def downloads_dir(settings: Settings, source: str) -> Path:
    """``<index>/downloads/<source>/`` (created), where a sync source's files are kept."""
    d = Path(settings.index_dir).expanduser() / "downloads" / safe_name(source)
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_download(settings: Settings, source: str, name: str, data: bytes) -> Path:
    """Write a fetched file under :func:`downloads_dir` atomically; returns its path."""
    path = downloads_dir(settings, source) / safe_name(name)
    _atomic_write(path, data)
    return path


def remove_download(path: str | Path) -> None:
    """Delete a downloaded file that could not be ingested (only inside a downloads dir)."""
    p = Path(path)
    if p.parent.parent.name == "downloads":
        p.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # readable like the digests it holds (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- what watches read: ids, dates, terms, vectors

def paper_ids(settings: Settings) -> set[str]:
    """Every paper id in the index (cheap: no record is decoded)."""
    store = open_store(settings)
    try:
        return {r[0] for r in store.db.execute("SELECT paper_id FROM papers")}
    finally:
        store.close()


def paper_dates(store: Store) -> dict[str, int]:
    """paper_id -> its date as YYYYMMDD (0 when unknown), from the chunk rows."""
    return dict(store.db.execute("SELECT paper_id, MAX(date_int) FROM chunks GROUP BY paper_id"))


def paper_term_ids(store: Store, paper_ids: Iterable[str]) -> dict[str, "array"]:
    """paper_id -> the BM25 term ids of all its passages (title included), as one int32 array."""
    out: dict[str, array] = {}
    for part in _batches(list(dict.fromkeys(paper_ids)), 500):
        q = f"SELECT paper_id, tok_ids FROM chunks WHERE paper_id IN ({','.join('?' * len(part))})"
        for pid, blob in store.db.execute(q, part):
            a = out.setdefault(pid, array("i"))
            if blob:
                a.frombytes(blob)
    return out


def term_id_map(store: Store, terms: Iterable[str]) -> dict[str, int]:
    """The ids of those terms that are in the BM25 vocabulary (unknown terms are left out)."""
    terms = list(dict.fromkeys(terms))
    out: dict[str, int] = {}
    for part in _batches(terms, 500):
        q = f"SELECT term, id FROM terms WHERE term IN ({','.join('?' * len(part))})"
        out.update(dict(store.db.execute(q, part)))
    return out


def term_doc_counts(store: Store, ids: Iterable[int]) -> tuple[dict[int, int], int]:
    """(term id -> papers holding it, papers in all) from the stored term ids; used as IDF by watches."""
    want = set(ids)
    counts = dict.fromkeys(want, 0)
    papers = 0
    if not want:
        return counts, 0
    import numpy as np

    probe = np.fromiter(want, dtype=np.int32)
    for _pid, blob in _paper_blobs(store):
        papers += 1
        if blob:
            present = np.isin(probe, np.frombuffer(blob, dtype=np.int32))
            for t in probe[present].tolist():
                counts[t] += 1
    return counts, papers


def _paper_blobs(store: Store) -> Iterator[tuple[str, bytes]]:
    """(paper_id, all term ids of its passages) per paper, streamed in paper order."""
    pid, parts = None, []
    for p, blob in store.db.execute("SELECT paper_id, tok_ids FROM chunks ORDER BY paper_id"):
        if p != pid and pid is not None:
            yield pid, b"".join(parts)
            parts = []
        pid = p
        parts.append(blob or b"")
    if pid is not None:
        yield pid, b"".join(parts)


def paper_vectors(store: Store, paper_ids: Iterable[str] | None = None) -> tuple[list[str], Any]:
    """(paper_id of each row, matrix of the stored passage vectors) of these papers (all when None)."""
    import numpy as np

    if store.embedded_count() == 0:
        return [], np.zeros((0, 0), dtype=np.float32)
    col = store.collection
    owners: list[str] = []
    rows: list = []
    batches = [None] if paper_ids is None else list(_batches(list(dict.fromkeys(paper_ids)), 500))
    for part in batches:
        if part is not None and not part:
            continue
        where = None if part is None else {"paper_id": {"$in": part}}
        offset, step = 0, _max_batch(col)
        while True:
            got = col.get(where=where, include=["embeddings", "metadatas"], limit=step, offset=offset)
            if not len(got["ids"]):
                break
            owners += [m["paper_id"] for m in got["metadatas"]]
            rows.append(np.asarray(got["embeddings"], dtype=np.float32))
            offset += len(got["ids"])
    mat = np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
    return owners, mat


def terms_with_prefix(store: Store, prefix: str, limit: int = 6) -> list[str]:
    """Up to ``limit`` BM25 vocabulary terms starting with ``prefix`` (sorted; used to turn glossary prefixes
    into index words)."""
    if not prefix:
        return []
    hi = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    rows = store.db.execute("SELECT term FROM terms WHERE term >= ? AND term < ? ORDER BY term LIMIT ?",
                            (prefix, hi, limit))
    return [r[0] for r in rows]
