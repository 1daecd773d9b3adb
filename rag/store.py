"""All disk and Chroma I/O: the paper catalogue (SQLite), the vectors (Chroma) and the BM25 files.

Layout of the index dir (one set per collection name, so a changed embedder or chunking never
reuses stale vectors):

    <index>/catalogue-<collection>.sqlite   files, raw records per file, merged papers, chunks
    <index>/chroma/                          Chroma PersistentClient (unless --chroma-url is given):
                                             vectors with paper_id, date_int, field, lang
    <index>/bm25-<collection>/               bm25s index + chunk ids, stamped with a generation
    <index>/uploads/                         files uploaded through the UI

An index built by an older SCHEMA_VERSION (another collection name) is still opened and read by
open_store until the next ingest has re-indexed its records into the current collection (see
rag.ingest); only then is the old collection dropped.

Crash safety: SQLite runs in WAL mode and every step commits in one transaction; chunk rows are
written only after their vectors are in Chroma, and file rows only after all their chunks, so an
interrupted ingest leaves an index that opens and answers, and a re-run finishes the job.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
from array import array
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlparse

from . import config
from .config import Settings
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
    PRIMARY KEY (file, idx));
CREATE TABLE IF NOT EXISTS papers (paper_id TEXT PRIMARY KEY, hash TEXT NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, paper_id TEXT NOT NULL, field TEXT, lang TEXT, text TEXT,
    hash TEXT NOT NULL, tokens TEXT, date_int INTEGER, categories TEXT, authors TEXT, title TEXT,
    arxiv_id TEXT, embedded INTEGER NOT NULL DEFAULT 1, tok_ids BLOB);
CREATE INDEX IF NOT EXISTS chunks_paper ON chunks(paper_id);
CREATE TABLE IF NOT EXISTS terms (term TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
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

    def __init__(self, settings: Settings, collection: str | None = None, schema: int | None = None):
        """The store of ``settings`` (or of an older ``collection`` name, built by ``schema``)."""
        self.settings = settings
        self.root = Path(settings.index_dir).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.collection_name = collection or settings.collection_name
        self.schema = schema or config.SCHEMA_VERSION
        self.db_path = _catalogue_path(self.root, self.collection_name)
        self.bm25_dir = self.root / f"bm25-{self.collection_name}"
        self.db = sqlite3.connect(self.db_path, timeout=30, check_same_thread=False)
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
        self._collection = None
        self._terms: dict[str, int] | None = None
        self._count_cache: tuple[int, int, int] | None = None

    # ------------------------------------------------------------ Chroma

    @property
    def collection(self):
        if self._collection is None:
            self._collection = _chroma_collection(self.settings.chroma_url, str(self.root / "chroma"),
                                                  self.collection_name)
        return self._collection

    def upsert_chunks(self, chunks: list[Chunk], vectors: list, tokens: list[str]) -> None:
        """Vectors into Chroma first, then the chunk rows (one transaction). ``vectors[i]`` is None
        for a passage that is BM25-only (see Settings.dense); ``tokens[i]`` its space-joined BM25
        tokens, stored as int32 term ids (the text column is only read from older catalogues)."""
        if not chunks:
            return
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
                    "INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [_chunk_row(c, v is not None, b) for c, v, b in zip(chunks, vectors, ids)])
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
                     hashes: dict[str, str]) -> None:
        """Record ingested files, their raw records and the new merged catalogue, atomically.
        Only catalogue rows that differ are written (a day added to a big index stays cheap); rows
        are serialised one at a time and compared inside SQLite, so memory does not grow with the
        catalogue (holding it all cost ~400 MB at 20k papers)."""
        import time

        live = {p.paper_id for p in papers}
        gone = [(pid,) for (pid,) in self.db.execute("SELECT paper_id FROM papers") if pid not in live]
        with self.db:
            for f in files:
                self.db.execute("DELETE FROM records WHERE file=?", (f["path"],))
                self.db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)",
                                (f["path"], f["sha"], f["size"], f["mtime"], f["format"],
                                 f["papers"], f["errors"], time.time()))
            self.db.executemany("INSERT INTO records VALUES (?,?,?)",
                                ((file, i, paper_to_json(p)) for file, recs in records.items()
                                 for i, p in enumerate(recs)))
            self.db.executemany("DELETE FROM papers WHERE paper_id=?", gone)
            self.db.executemany("INSERT OR REPLACE INTO papers SELECT ?1, ?2, ?3 WHERE NOT EXISTS "
                                "(SELECT 1 FROM papers WHERE paper_id=?1 AND json=?3)",
                                ((p.paper_id, hashes[p.paper_id], paper_to_json(p)) for p in papers))

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
                     stale_chunks: list[str]) -> None:
        """Forget these files in one transaction: their rows and records, the stale chunk rows, and the
        merged catalogue rebuilt without them. The stale vectors are deleted from Chroma afterwards
        (:meth:`delete_pending_vectors`); until then they are listed in ``meta`` (a vector without a
        chunk row is never returned by a search), so an interrupted removal leaves an index that answers,
        and the next removal finishes the job."""
        live = {p.paper_id for p in papers}
        gone = [(pid,) for (pid,) in self.db.execute("SELECT paper_id FROM papers") if pid not in live]
        pending = sorted(set(self._pending_vectors()) | set(stale_chunks))
        with self.db:
            self.db.executemany("DELETE FROM chunks WHERE chunk_id=?", [(c,) for c in stale_chunks])
            self.db.executemany("DELETE FROM records WHERE file=?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM files WHERE path=?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM papers WHERE paper_id=?", gone)
            self.db.executemany("INSERT OR REPLACE INTO papers SELECT ?1, ?2, ?3 WHERE NOT EXISTS "
                                "(SELECT 1 FROM papers WHERE paper_id=?1 AND json=?3)",
                                ((p.paper_id, hashes[p.paper_id], paper_to_json(p)) for p in papers))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('pending_vector_deletes', ?)", (json.dumps(pending),))
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
            c, e = self.db.execute("SELECT COUNT(*), COALESCE(SUM(embedded), 0) FROM chunks").fetchone()
            self._count_cache = (gen, c, e)
        return self._count_cache[1], self._count_cache[2]

    # ------------------------------------------------------------ BM25 term ids

    def terms(self) -> dict[str, int]:
        """The persistent BM25 vocabulary: term -> id (ids are never reused or renumbered)."""
        if self._terms is None:
            self._terms = _Terms(self.db.execute("SELECT term, id FROM terms"))
        return self._terms

    def _term_ids(self, tokens: list[str | None]) -> list[bytes]:
        """Each space-joined token string as int32 term ids (new terms inserted; call holding the
        write lock: another process may have added terms since they were cached)."""
        last = self.db.execute("SELECT MAX(id) FROM terms").fetchone()[0]
        if self._terms is not None and len(self._terms) != (last + 1 if last is not None else 0):
            self._terms = None
        terms = self.terms()
        # (a missing term gets the next id and is queued in terms.new)
        out = [array("i", map(terms.__getitem__, text.split())).tobytes() if text else b"" for text in tokens]
        if terms.new:
            self.db.executemany("INSERT INTO terms VALUES (?,?)", terms.new)
            terms.new = []
        return out

    def chunk_token_ids(self) -> tuple[list[str], bytearray, array]:
        """Chunk ids (sorted), every chunk's int32 term ids back to back in one buffer, and how
        many belong to each chunk; rows written before term ids were stored get theirs first (one
        transaction)."""
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
        for cid, blob in self.db.execute("SELECT chunk_id, tok_ids FROM chunks ORDER BY chunk_id"):
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

    def save_bm25(self, model, chunk_ids: list[str], generation: int) -> None:
        """Write to a temp dir, then swap it in, so a reader never sees half a BM25 index."""
        tmp = Path(tempfile.mkdtemp(prefix=".bm25-", dir=self.root))
        if model is not None:
            model.save(str(tmp), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps({"generation": generation, "ids": chunk_ids}))
        old = self.bm25_dir.with_name(self.bm25_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.bm25_dir.exists():
            os.replace(self.bm25_dir, old)
        os.replace(tmp, self.bm25_dir)
        shutil.rmtree(old, ignore_errors=True)
        _load_bm25_cached.cache_clear()

    def load_bm25(self):
        """(bm25s model or None, chunk ids, generation) or None when missing or unreadable."""
        meta = self.bm25_dir / "ids.json"
        if not meta.exists():
            return None
        return _load_bm25_cached(str(self.bm25_dir), meta.stat().st_mtime_ns)

    # ------------------------------------------------------------ uploads and stats

    def uploads_dir(self) -> Path:
        d = self.root / "uploads"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def stats(self) -> dict[str, Any]:
        one = lambda q: self.db.execute(q).fetchone()[0]  # noqa: E731
        return {
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

    def close(self) -> None:
        self.db.close()

    def drop(self) -> None:
        """Delete this collection for good: its vectors, catalogue and BM25 files (a stale index,
        once an upgrade has re-indexed its records)."""
        from chromadb.errors import NotFoundError

        try:
            _chroma_client(self.settings.chroma_url, str(self.root / "chroma")).delete_collection(
                self.collection_name)
        except NotFoundError:  # never created (no passage had a vector) or already dropped
            pass
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        for d in (self.bm25_dir, self.bm25_dir.with_name(self.bm25_dir.name + ".old")):
            shutil.rmtree(d, ignore_errors=True)
        _load_bm25_cached.cache_clear()


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


class _Terms(dict):
    """term -> id; a lookup of an unknown term assigns the next id and queues (term, id) in .new."""

    def __init__(self, rows=()):
        super().__init__(rows)
        self.new: list[tuple[str, int]] = []

    def __missing__(self, term: str) -> int:
        i = self[term] = len(self)
        self.new.append((term, i))
        return i


_CHROMA_KEYS = ("paper_id", "date_int", "field", "lang")


def _chroma_metadata(c: Chunk) -> dict:
    """What Chroma keeps beside a vector: the fields dense queries filter on (date_int) and say
    what the vector is. Texts, titles and authors live in the catalogue only: with documents and
    every metadata field, Chroma's upserts took 4.7x as long (2,048 vectors: 4.1 s vs 0.87 s;
    its full-text index of documents was most of it)."""
    return {k: c.metadata[k] for k in _CHROMA_KEYS if k in c.metadata}


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
    import bm25s

    meta = json.loads((Path(path) / "ids.json").read_text())
    ids = meta["ids"]
    model = bm25s.BM25.load(path, mmap=True, load_corpus=False, show_progress=False) if ids else None
    return model, ids, int(meta["generation"])


@lru_cache(maxsize=8)
def _chroma_client(url: str | None, path: str):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    cs = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if url:
        u = urlparse(url if "://" in url else f"http://{url}")
        return chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                   ssl=u.scheme == "https", settings=cs)
    return chromadb.PersistentClient(path=path, settings=cs)


def _chroma_collection(url: str | None, path: str, name: str):
    client = _chroma_client(url, path)
    return client.get_or_create_collection(name=name, embedding_function=None,
                                           metadata={"hnsw:space": "cosine"})


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


def workflow_path(settings: Settings, name: str) -> Path:
    """``<index>/workflows/<name>.json`` (the folder is created)."""
    d = Path(settings.index_dir).expanduser() / "workflows"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{safe_name(name)}.json"


def read_state(settings: Settings, name: str, default: Any = None) -> Any:
    """The JSON state file ``name`` (default when it does not exist yet)."""
    p = workflow_path(settings, name)
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
