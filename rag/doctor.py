"""`digestqa doctor` (check an index) and `digestqa repair` (fix it).

The catalogue's raw records are the source of truth; everything else is derived from them and can be
rebuilt: the merged papers (merge), the chunk rows (chunk), the vectors (embedder), the BM25 files.

doctor compares catalogue vs Chroma vs BM25 (counts and ids) and reports one line per finding.
repair, holding the index's write lock: a catalogue SQLite cannot read is moved aside and what can
still be read of it is copied into a new one (files whose records are incomplete are dropped and
listed: ingest them again); then papers are re-merged, chunk rows re-made from them, passages
whose vector is missing are re-embedded, vectors no chunk has are deleted, and BM25 is rebuilt.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings


@dataclass(frozen=True)
class Finding:
    """One line of a doctor report: ``ok`` False is a problem that ``digestqa repair`` fixes."""
    ok: bool
    part: str  # catalogue | papers | chunks | chroma | bm25 | lock | schema
    message: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.part}: {self.message}"


@dataclass
class RepairReport:
    actions: list[str] = field(default_factory=list)
    lost_files: list[str] = field(default_factory=list)  # digests to ingest again
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- doctor

def check(settings: Settings) -> list[Finding]:
    """Every finding about the index of ``settings`` (read-only: works on a read-only index)."""
    from .store import Store, catalogue_path, is_corruption, lock_holder, older_collections

    out: list[Finding] = []
    root = Path(settings.index_dir).expanduser()
    pid = lock_holder(root)
    if pid:
        out.append(Finding(True, "lock", f"an ingest or repair is running (pid {pid}); counts may change"))
    path = catalogue_path(settings)
    if not path.exists():
        return out + [Finding(True, "catalogue", f"no index at {root} yet (nothing ingested)")]
    older = older_collections(settings)
    if older and path.name.endswith(f"{older[0][1]}.sqlite"):
        out.append(Finding(True, "schema", f"built by index schema {older[0][0]}: the next ingest upgrades it"))
    try:
        store = Store(settings, collection=path.name[len("catalogue-"):-len(".sqlite")], readonly=True)
    except Exception as e:  # noqa: BLE001
        return out + [Finding(False, "catalogue", f"{path} cannot be opened ({_why(e)})")]
    try:
        return out + _check_store(store)
    except Exception as e:  # noqa: BLE001
        if is_corruption(e) or type(e).__name__ == "IndexDamaged":
            return out + [Finding(False, "catalogue", f"{path} is damaged ({_why(e)})")]
        raise
    finally:
        store.close()


def _why(e: BaseException) -> str:
    text = str(e).split(" is damaged (", 1)[-1].split("); run `", 1)[0]
    return f"{type(e).__name__}: {text}" if type(e).__name__ not in text else text


def _check_store(store) -> list[Finding]:
    out = [_integrity(store)]
    if not out[0].ok:
        return out
    records = store.records_by_file()
    out += _files(store, records)
    papers, hashes, expected = _expected(store, records)
    out += _papers(store, hashes)
    out += _chunks(store, expected)
    out += _chroma(store)
    out += _bm25(store)
    return out


def _integrity(store) -> Finding:
    row = store.db.execute("PRAGMA quick_check").fetchone()
    if not row or row[0] != "ok":
        return Finding(False, "catalogue", f"{store.db_path} fails SQLite's integrity check ({row[0] if row else '?'})")
    n = store.db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    return Finding(True, "catalogue", f"{store.db_path.name}: {n} digest files")


def _files(store, records) -> list[Finding]:
    bad = [f"{r['path']} ({len(records.get(r['path'], ()))} of {r['papers']} records)"
           for r in store.file_rows() if len(records.get(r["path"], ())) != r["papers"]]
    if bad:
        return [Finding(False, "catalogue", f"{len(bad)} files miss records: {', '.join(bad[:3])}")]
    return []


def _expected(store, records):
    """The merged papers, their hashes and the chunks (id -> hash) the records make."""
    from .chunk import chunk_papers
    from .ingest import _Run, _capped
    from .merge import merge_papers, paper_hash

    merged = merge_papers([p for recs in records.values() for p in recs])
    hashes = {p.paper_id: paper_hash(p) for p in merged}
    run = _Run(store.settings, None)
    chunks = _capped(chunk_papers(merged, store.settings), run)
    return merged, hashes, {c.chunk_id: c.content_hash for c in chunks}


def _papers(store, hashes) -> list[Finding]:
    have = store.paper_hashes()
    missing = [p for p in hashes if p not in have]
    extra = [p for p in have if p not in hashes]
    stale = [p for p in hashes if p in have and have[p] != hashes[p]]
    if missing or extra or stale:
        return [Finding(False, "papers", f"{len(have)} papers, the records make {len(hashes)}: {len(missing)} "
                                         f"missing, {len(extra)} extra, {len(stale)} out of date")]
    return [Finding(True, "papers", f"{len(have)} papers, as the records make them")]


def _chunks(store, expected) -> list[Finding]:
    have = store.chunk_hashes()
    missing = [c for c in expected if c not in have]
    extra = [c for c in have if c not in expected]
    stale = [c for c in expected if c in have and have[c] != expected[c]]
    out = []
    if missing or extra or stale:
        out.append(Finding(False, "chunks", f"{len(have)} chunks, the papers make {len(expected)}: {len(missing)} "
                                            f"missing, {len(extra)} extra, {len(stale)} out of date"))
    else:
        out.append(Finding(True, "chunks", f"{len(have)} chunks, as the papers make them"))
    pending = store.pending_count()
    if pending:
        out.append(Finding(True, "chunks", f"{pending} passages of an interrupted ingest wait unseen (the same "
                                           "ingest run again uses them; repair drops those it does not need)"))
    return out


def _chroma(store) -> list[Finding]:
    embedded = {cid for (cid,) in store.db.execute("SELECT chunk_id FROM chunks WHERE embedded=1")}
    where = store.settings.chroma_url or str(store.chroma_path)
    if not embedded:
        return [Finding(True, "chroma", "no passage of this index has a vector")]
    try:
        ids = store.vector_ids()
    except Exception as e:  # noqa: BLE001
        return [Finding(False, "chroma", f"{where}: {_why(e)} ({len(embedded)} vectors expected)")]
    missing = embedded - ids
    orphans = ids - embedded - set(store.pending_hashes())
    out = []
    if missing:
        out.append(Finding(False, "chroma", f"{where} holds {len(embedded) - len(missing)} of the {len(embedded)} "
                                            f"vectors the chunks need ({len(missing)} missing)"))
    else:
        out.append(Finding(True, "chroma", f"{len(embedded)} vectors, one per embedded chunk"))
    if orphans:
        out.append(Finding(False, "chroma", f"{len(orphans)} vectors belong to no chunk (never returned; repair "
                                            "deletes them)"))
    return out


def _bm25(store) -> list[Finding]:
    loaded = store.load_bm25()
    n = store.chunk_count()
    if loaded is None:
        if not n:
            return []
        what = f"damaged ({store.bm25_error})" if store.bm25_error else \
            "in an older format (an ask or repair rebuilds it)" if store.bm25_old_format else "missing"
        return [Finding(False, "bm25", f"{store.bm25_dir} is {what}")]
    model, ids, gen = loaded
    if gen != store.generation():
        return [Finding(False, "bm25", f"{store.bm25_dir} is out of date (generation {gen}, catalogue "
                                       f"{store.generation()}; an ask or repair rebuilds it)")]
    live = sorted(store.chunk_hashes())
    ids = sorted(model.live_ids()) if model is not None else list(ids)
    if ids != live:
        return [Finding(False, "bm25", f"{store.bm25_dir} indexes {len(ids)} chunks, the catalogue has {n}")]
    return [Finding(True, "bm25", f"{len(ids)} chunks indexed")]


# ---------------------------------------------------------------------------------------------- repair

def repair(settings: Settings, progress=None, on_wait=None) -> RepairReport:
    """Fix what :func:`check` finds (see the module doc); holds the index's write lock."""
    from .store import writer_lock

    t0 = time.perf_counter()
    report = RepairReport()
    with writer_lock(settings, on_wait):
        store = _open_or_salvage(settings, report)
        try:
            _rebuild(store, report, progress)
        finally:
            store.close()
            from .retrieve import forget_store

            forget_store(settings)
    report.seconds = time.perf_counter() - t0
    return report


def _open_or_salvage(settings: Settings, report: RepairReport):
    from .store import Store, is_corruption, salvage_catalogue

    try:
        store = Store(settings, readonly=False, writer=True)
        row = store.db.execute("PRAGMA quick_check").fetchone()
        if row and row[0] == "ok":
            return store
        store.close()
        problem = f"integrity check: {row[0] if row else '?'}"
    except Exception as e:  # noqa: BLE001
        if not (is_corruption(e) or type(e).__name__ == "IndexDamaged"):
            raise
        problem = _why(e)
    aside, kept, lost = salvage_catalogue(settings)
    report.actions.append(f"catalogue was damaged ({problem}): moved to {aside}; {kept} digest files recovered "
                          f"from it" + ("" if kept or lost else ": nothing could be read back, ingest your "
                                                               "digests again"))
    report.lost_files.extend(lost)
    return Store(settings, readonly=False, writer=True)


def _rebuild(store, report: RepairReport, progress) -> None:
    from .delta import full_plan
    from .ingest import _Run, _sync_chunks
    from .retrieve import rebuild_bm25

    run = _Run(store.settings, progress)
    store.delete_pending_vectors()
    store.collection  # noqa: B018 - created afresh when its dir is gone
    ids = store.vector_ids()
    forgot = store.forget_chunks_without_vectors(ids)
    if forgot:
        report.actions.append(f"{forgot} passages had no vector in Chroma: re-embedding them")
    delta = full_plan(store, set(), [], set())  # every record merged again; the link index rebuilt
    merged, hashes, before = delta.papers, delta.hashes, delta.old_hashes
    if set(before) != set(hashes) or any(before[p] != h for p, h in hashes.items() if p in before):
        report.actions.append(f"papers re-merged from the records ({len(before)} -> {len(hashes)})")
    added, stale = _sync_chunks(store, merged, delta.removed, run)
    store.commit_files([], {}, merged, hashes, stale, delta)
    store.delete_pending_vectors()
    if added or stale:
        report.actions.append(f"chunks: {added} written, {len(stale)} dropped")
    orphans = ids - set(store.chunk_hashes())
    if orphans:
        store.delete_vectors(sorted(orphans))
        report.actions.append(f"{len(orphans)} vectors that belonged to no chunk deleted")
    rebuild_bm25(store)
    report.actions.append(f"BM25 rebuilt ({store.chunk_count()} chunks)")
