"""Issue 14 (1M papers): what a fresh `ask` reads must not grow with the index, and the growth fixture of
`python -m bench.scale` (bench.grow.grow_papers) gives replicas everything an ingest reads."""
from __future__ import annotations

import sqlite3

from rag import api
from rag.retrieve import forget_store
from rag.store import COUNTS_SQL, open_store


def _plan(db, sql: str) -> str:
    return " ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql))


def test_chunk_counts_read_a_small_index_not_the_chunk_table(tmp_settings, seeds_dir):
    api.ingest(api.sample_paths(), tmp_settings)
    st = open_store(tmp_settings)
    try:
        # the table holds every chunk's text and term ids: a scan of it grew with the index (every fresh ask)
        assert "COVERING INDEX chunks_embedded" in _plan(st.db, COUNTS_SQL)
        assert "COVERING INDEX chunks_embedded" in _plan(st.db, "SELECT COUNT(*) FROM chunks WHERE embedded=1")
        scanned = st.db.execute("SELECT COUNT(*), SUM(embedded) FROM chunks NOT INDEXED").fetchone()
        assert (st.chunk_count(), st.embedded_count()) == tuple(scanned) and scanned[1] > 0
        assert api.stats(tmp_settings)["vectors"] == scanned[1]
    finally:
        st.close()


def test_catalogue_without_the_counts_index_gets_it_on_open(tmp_settings):
    api.ingest(api.sample_paths(), tmp_settings)
    before = [h.paper_id for h in api.retrieve("RQ-VAE semantic IDs", tmp_settings)]
    st = open_store(tmp_settings)
    path = st.db_path
    st.close()
    forget_store(tmp_settings)
    db = sqlite3.connect(path)
    db.execute("DROP INDEX chunks_embedded")  # a catalogue written before it
    db.commit()
    assert "chunks_embedded" not in _plan(db, COUNTS_SQL)
    db.close()
    assert [h.paper_id for h in api.retrieve("RQ-VAE semantic IDs", tmp_settings)] == before and before
    db = sqlite3.connect(path)
    assert "COVERING INDEX chunks_embedded" in _plan(db, COUNTS_SQL)
    db.close()


def test_grow_papers_gives_replicas_what_a_day_reads(tmp_settings, seeds_dir):
    """Replicas get records, chunks, link index rows and vectors; a day added afterwards is merged
    incrementally (not a full merge of everything) and the index stays consistent."""
    from bench.grow import grow_papers
    from rag.retrieve import rebuild_bm25

    files = sorted(api.sample_paths())
    api.ingest(files[:-1], tmp_settings)
    st = open_store(tmp_settings)
    n = {t: st.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
         for t in ("papers", "records", "chunks", "link_groups", "link_clauses")}
    vectors = st.vector_count()
    st.close()
    forget_store(tmp_settings)
    out = grow_papers(tmp_settings, 2 * n["papers"] + 3)
    assert out["papers_after"] == 2 * n["papers"] + 3 and out["replica_rounds"] == 2
    st = open_store(tmp_settings)
    try:
        got = {t: st.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in n}
        assert got["papers"] == got["link_groups"] == 2 * n["papers"] + 3
        for t in ("records", "chunks", "link_clauses"):
            assert 2 * n[t] < got[t] < 3 * n[t], t
        assert st.vector_count() == st.embedded_count() > 2 * vectors
        pid = st.db.execute("SELECT paper_id FROM papers WHERE paper_id LIKE '%~r1' LIMIT 1").fetchone()[0]
        orig = pid[:-3]
        assert st.get_papers([pid])[pid].title == st.get_papers([orig])[orig].title
        assert st.records_of([pid])[pid] and st.link_rows([pid])[pid][0] == st.link_rows([orig])[orig][0]
        rebuild_bm25(st)
    finally:
        st.close()
    forget_store(tmp_settings)
    import rag.delta as delta

    calls = []
    real = delta.full_plan
    delta.full_plan = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        rep = api.ingest(files, tmp_settings)
    finally:
        delta.full_plan = real
    assert rep.ok and rep.papers_new > 0 and not calls  # incremental: the replicas were not all re-merged
    from rag.merge import merge_papers

    st = open_store(tmp_settings)
    try:  # the same papers as merging every record at once (ID-less papers may link into the new ones)
        assert {p.paper_id for p in st.all_papers()} == {p.paper_id for p in merge_papers(st.all_records())}
        assert st.chunk_count() > got["chunks"] and st.vector_count() == st.embedded_count()
    finally:
        st.close()
    # (`doctor` calls the replicas "out of date": their merged records keep the originals' source files)


def test_fit_size_leaves_the_free_disk_asked():
    from bench.scale import fit_size

    gb = 2**30
    assert fit_size(1_000_000, 200_000, 40_000, 60 * gb, 10 * gb) == 1_000_000  # 32 GB * 1.1 < 50 GB
    n = fit_size(1_000_000, 200_000, 40_000, 30 * gb, 10 * gb)
    assert n % 100_000 == 0 and 200_000 < n < 1_000_000
    assert (n - 200_000) * 40_000 * 1.1 <= 20 * gb
    assert fit_size(1_000_000, 200_000, 40_000, 10 * gb, 10 * gb) == 0


def test_fit_memory_keeps_the_bm25_rebuild_under_a_share_of_memory():
    from bench.scale import fit_memory

    assert fit_memory(500_000, 200_000, 4000, 22_000) == 500_000  # 10 GB <= 0.6 * 22 GB
    n = fit_memory(1_000_000, 200_000, 4000, 22_000)
    assert n % 100_000 == 0 and 200_000 < n < 1_000_000 and n * 4000 / 200_000 <= 0.6 * 22_000
    assert fit_memory(1_000_000, 200_000, 4000, 1_000) == 0


def test_scale_table_ratios_and_1m_extrapolation():
    from bench.scale import table, targets

    def size(papers, day_s, p95, cold, rss):
        return {"papers_before_day": papers, "day": {"overhead_s": day_s}, "latency": {"hybrid": {"p95_ms": p95}},
                "cold": {"median_s": cold, "max_rss_mb": rss}}

    result = {"sizes": {"1000": size(1000, 1.0, 40, 1.5, 300), "20000": size(19_500, 1.5, 40, 3.0, 600),
                        "200000": size(200_000, 2.0, 60, 8.0, 1400), "500000": size(500_000, 3.5, 90, 20.0, 2600)}}
    rows = {r[0]: r for r in table(result)}
    assert rows["metric"][5] == "1000000 EXTRAPOLATED"
    assert rows["day: s besides the embedder (warm)"][5] == "6.0"  # 3.5 + (3.5 - 2.0) * 500k / 300k
    assert rows["day: s besides the embedder (warm)"][8] == "3.50x" and rows["hybrid p95 ms"][9] == "3.50x"
    t = targets(result)
    assert t["day_besides_embedder_20k_s"]["met"] and not t["day_besides_embedder_largest_vs_1k"]["met"]
    assert t["hybrid_p95_ms"]["met"] and not t["hybrid_p95_ms"]["met_extrapolated_1M"]  # 90 ms; 140 ms at 1M
    assert t["ask_peak_rss_mb"]["extrapolated_1M"] == 4600
