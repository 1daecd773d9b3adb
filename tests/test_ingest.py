"""Ingest: idempotency, changed content, bad input, interruption (simulated and a real SIGKILL)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import api
from rag.store import open_store

SAMPLE_PAPERS = 36  # 39 records in the five seeds; MOON Embedding, Q-BERT4Rec and MMQ each merge two


def _consistent(settings) -> tuple[int, int]:
    """(chunks that should have a vector, vectors in Chroma): equal when the index is consistent."""
    st = open_store(settings)
    try:
        return st.embedded_count(), st.vector_count()
    finally:
        st.close()


def _chunk_tokens(st) -> dict[str, list[str]]:
    """Each stored chunk's BM25 tokens, recomputed from its title and text (embed_text)."""
    from rag.retrieve import tokenize

    rows = st.db.execute("SELECT chunk_id, title, text FROM chunks").fetchall()
    return {cid: tokenize(f"{title}\n{text}" if title else text) for cid, title, text in rows}


def _term_ids_match_tokens(settings) -> int:
    """Every chunk's stored term ids spell its BM25 tokens; returns the number of terms."""
    from array import array

    st = open_store(settings)
    try:
        terms = st.terms()
        by_id = {i: t for t, i in terms.items()}
        assert len(by_id) == len(terms) and sorted(by_id) == list(range(len(terms)))  # dense, unique
        tokens = _chunk_tokens(st)
        rows = st.db.execute("SELECT chunk_id, tok_ids FROM chunks").fetchall()
        assert rows and len(rows) == len(tokens)
        for cid, blob in rows:
            assert blob is not None, cid
            assert [by_id[i] for i in array("i", blob)] == tokens[cid], cid
        return len(terms)
    finally:
        st.close()


def test_sample_ingest_counts_and_idempotent(sample_settings):
    st = api.stats(sample_settings)
    assert st["papers"] == SAMPLE_PAPERS
    assert st["sources"] == 5
    chunks, vectors = _consistent(sample_settings)
    assert chunks == vectors == st["vectors"] > SAMPLE_PAPERS // 2
    assert st["chunks"] > st["vectors"]  # zh and metadata passages are BM25-only with the English MiniLM
    again = api.ingest(api.sample_paths(), sample_settings)
    assert again.files == 5 and again.files_skipped == 5
    assert again.chunks_added == 0 and again.papers_new == 0
    assert _consistent(sample_settings) == (chunks, vectors)


def test_merged_records_in_papers_json(sample_settings):
    papers = {p.paper_id: p for p in api.papers(sample_settings)}
    moon = papers["2511.11305"]
    assert len(moon.sources) == 2 and moon.tldr_zh and moon.abstract
    assert "2508.11999" in papers and papers["2508.11999"].title.startswith("MOON: Generative")
    mmq = papers["2508.15281"]
    assert mmq.title.startswith("MMQ") and not mmq.title_derived and mmq.linked_ids
    row = moon.to_json()
    for key in ("paper_id", "arxiv_id", "title", "title_derived", "authors", "abstract", "tldr_en", "tldr_zh",
                "categories", "comment", "doi", "sources", "linked_ids"):
        assert key in row
    assert {s["date"] for s in row["sources"]} >= {"2025-11-20"}


def test_changed_file_replaces_its_chunks(tmp_settings, tmp_path, seeds_dir):
    f = tmp_path / "digest.md"
    text = (seeds_dir / "000_a9870319f13a72d6.txt").read_text(encoding="utf-8")
    f.write_text(text, encoding="utf-8")
    first = api.ingest([f], tmp_settings)
    assert first.papers_new == 4 and first.ok
    chunks_before = _consistent(tmp_settings)
    f.write_text(text.replace("Real-world deployments further validate its effectiveness.",
                              "A zebracorn deployment in Lisbon validates it."), encoding="utf-8")
    os.utime(f, (time.time() + 5, time.time() + 5))
    second = api.ingest([f], tmp_settings)
    assert (second.papers_new, second.papers_updated, second.papers_unchanged) == (0, 1, 3)
    assert second.chunks_added >= 1
    assert _consistent(tmp_settings) == chunks_before
    hits = api.retrieve("zebracorn deployment in Lisbon", tmp_settings)
    assert hits[0].arxiv_id == "2512.02502"
    st = open_store(tmp_settings)
    texts = [r[0] for r in st.db.execute("SELECT text FROM chunks WHERE paper_id='2512.02502'")]
    st.close()
    assert not any("Real-world deployments further" in t for t in texts)


def test_bad_inputs_reported_and_rest_ingested(tmp_settings, tmp_path, seeds_dir):
    good = seeds_dir / "001_855b5c13d526e93a.txt"
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "binary.jsonl").write_bytes(b"\x00\x01\x02PK\x03\x04" * 50)
    (tmp_path / "latin1.md").write_bytes("# arXiv Daily Report - 04-Dec-2025\n\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "prose.txt").write_text("Just some notes about my week.\nNothing to see here.\n")
    bad_json = tmp_path / "trunc.jsonl"
    rec = {"id": "2601.00001", "title": "A Good Record", "summary": "An abstract.", "authors": ["A"],
           "categories": ["cs.IR"], "AI": {"tldr": "很好"}}
    bad_json.write_text(json.dumps(rec) + "\n" + json.dumps(rec)[:40] + "\n")
    report = api.ingest([good, tmp_path / "empty.md", tmp_path / "binary.jsonl", tmp_path / "latin1.md",
                         tmp_path / "prose.txt", bad_json, tmp_path / "missing.md"], tmp_settings)
    failed = {Path(f.file).name: f for f in report.failures}
    assert set(failed) == {"empty.md", "binary.jsonl", "latin1.md", "prose.txt", "trunc.jsonl", "missing.md"}
    assert failed["trunc.jsonl"].line == 2
    assert failed["latin1.md"].line == 3
    assert all("\n" not in str(f) for f in report.failures)
    ids = {p.arxiv_id for p in api.papers(tmp_settings)}
    assert "2511.14182" in ids and "2601.00001" in ids  # the good file and the good line still went in


def chunk_papers_of_sample(settings):
    from rag.chunk import chunk_papers
    from rag.merge import merge_papers
    from rag.parse import parse_file

    return chunk_papers(merge_papers([p for f in api.sample_paths() for p in parse_file(str(f)).papers]), settings)


def test_commits_hold_a_bounded_number_of_vectors_and_chunks(tmp_settings, monkeypatch):
    import rag.ingest as ingest_mod

    chunks = chunk_papers_of_sample(tmp_settings)
    monkeypatch.setattr(ingest_mod, "_EMBED_COMMIT", 10)
    monkeypatch.setattr(ingest_mod, "_COMMIT_MAX_CHUNKS", 30)
    parts = list(ingest_mod._commits(chunks, tmp_settings))
    assert [c for p in parts for c in p] == chunks  # every chunk once, in order
    dense = [sum(tmp_settings.embeds(c.field, c.lang) for c in p) for p in parts]
    assert max(dense) == 10 and max(map(len, parts)) <= 30 and len(parts) > 4


def test_interrupted_ingest_leaves_no_trace_and_rerun_completes(tmp_settings, monkeypatch):
    """Issue 12 item 2: an interrupted first ingest used to leave chunks that ``ask`` cites but ``papers``
    never lists. Now its rows stay pending (invisible) until the ingest commits its files; the re-run
    reuses their vectors instead of embedding them again."""
    import rag.embed as embed

    real = embed.get_embedder(tmp_settings)
    calls = {"n": 0, "texts": 0}

    class Flaky:
        name, dim = real.name, real.dim

        def embed(self, texts):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            calls["texts"] += len(texts)
            return real.embed(texts)

        def embed_query(self, text):
            return real.embed_query(text)

    monkeypatch.setattr(embed, "get_embedder", lambda s: Flaky())
    import rag.ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "_EMBED_COMMIT", 40)
    with pytest.raises(KeyboardInterrupt):
        api.ingest(api.sample_paths(), tmp_settings)
    st = api.stats(tmp_settings)
    assert st["papers"] == st["chunks"] == st["sources"] == 0 and api.papers(tmp_settings) == []
    assert api.retrieve("semantic IDs", tmp_settings) == []  # nothing to cite that papers does not list
    store = open_store(tmp_settings)
    try:
        first = next(ingest_mod._commits(chunk_papers_of_sample(tmp_settings), tmp_settings))
        assert store.pending_count() == len(first) > 40 and store.vector_count() == 40
    finally:
        store.close()
    calls["texts"] = 0
    report = api.ingest(api.sample_paths(), tmp_settings)
    assert report.ok and report.papers_new == SAMPLE_PAPERS
    full = _consistent(tmp_settings)
    assert full[0] == full[1] and api.stats(tmp_settings)["papers"] == SAMPLE_PAPERS
    assert calls["texts"] == full[0] - 40  # the 40 pending vectors were reused, not embedded again
    again = api.ingest(api.sample_paths(), tmp_settings)
    assert again.chunks_added == 0 and _consistent(tmp_settings) == full
    _term_ids_match_tokens(tmp_settings)


def test_interrupted_second_ingest_changes_nothing_visible(tmp_settings, tmp_path, monkeypatch):
    """An index with papers, then an ingest of more files killed mid-way: the index answers exactly as
    before (same papers, chunks, BM25 generation), and a re-run adds the new papers."""
    import rag.embed as embed
    import rag.ingest as ingest_mod

    paths = api.sample_paths()
    assert api.ingest(paths[:2], tmp_settings).ok
    before = api.stats(tmp_settings)
    store = open_store(tmp_settings)
    gen = store.generation()
    store.close()
    real = embed.get_embedder(tmp_settings)

    class Dies:  # the first commit's vectors go in, the second call is interrupted
        name, dim, calls = real.name, real.dim, 0

        def embed(self, texts):
            Dies.calls += 1
            if Dies.calls == 2:
                raise KeyboardInterrupt
            return real.embed(texts)

    monkeypatch.setattr(ingest_mod, "_EMBED_COMMIT", 8)
    monkeypatch.setattr(embed, "get_embedder", lambda s: Dies())
    with pytest.raises(KeyboardInterrupt):
        api.ingest(paths, tmp_settings)
    monkeypatch.setattr(embed, "get_embedder", lambda s: real)
    after = api.stats(tmp_settings)
    assert "interrupted ingest" in after.pop("unfinished") and after == before
    store = open_store(tmp_settings)
    assert store.generation() == gen
    store.close()
    assert api.ingest(paths, tmp_settings).ok and api.stats(tmp_settings)["papers"] == SAMPLE_PAPERS


def test_chunks_store_term_ids_not_token_strings(sample_settings):
    """BM25 tokens are kept once, as int32 term ids (the token-string column is only read from
    catalogues written by older versions)."""
    st = open_store(sample_settings)
    try:
        assert st.db.execute("SELECT COUNT(*) FROM chunks WHERE tokens IS NOT NULL").fetchone()[0] == 0
        assert st.db.execute("SELECT COUNT(*) FROM chunks WHERE length(tok_ids) > 0").fetchone()[0] > 100
    finally:
        st.close()
    _term_ids_match_tokens(sample_settings)


def test_chroma_keeps_vectors_and_filter_fields_only(sample_settings):
    """Texts live in the catalogue; Chroma gets the vector, paper_id, date_int, field and lang."""
    st = open_store(sample_settings)
    try:
        got = st.collection.get(limit=20, include=["metadatas", "documents"])
        assert len(got["ids"]) == 20 and not any(got["documents"] or [])
        assert all(set(m) == {"paper_id", "date_int", "field", "lang"} for m in got["metadatas"])
        assert all(m["paper_id"] == cid.rsplit(":", 2)[0] for cid, m in zip(got["ids"], got["metadatas"]))
    finally:
        st.close()
    from rag.types import Filters

    dated = api.retrieve("semantic IDs", sample_settings, Filters(since="2025-11-20", until="2025-11-20"), mode="dense")
    assert dated and all(h.date == "2025-11-20" for h in dated)  # the dense date filter still works


def test_interrupted_commit_rolls_back_new_terms(tmp_settings, monkeypatch):
    """A commit that fails after inserting new BM25 terms leaves no orphan ids and no stale cache."""
    import rag.store as store_mod

    api.ingest(api.sample_paths()[:1], tmp_settings)
    n_terms = _term_ids_match_tokens(tmp_settings)
    real_row = store_mod._chunk_row

    def boom(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_mod, "_chunk_row", boom)
    with pytest.raises(KeyboardInterrupt):
        api.ingest(api.sample_paths(), tmp_settings)
    assert _term_ids_match_tokens(tmp_settings) == n_terms  # the new terms went with the rows
    monkeypatch.setattr(store_mod, "_chunk_row", real_row)
    assert api.ingest(api.sample_paths(), tmp_settings).ok
    assert _term_ids_match_tokens(tmp_settings) > n_terms
    assert api.retrieve("RQ-VAE semantic IDs", tmp_settings)


def test_term_ids_stable_across_ingests_and_bm25_equals_build_from_tokens(tmp_settings):
    """BM25 built from stored term ids scores like one built from the token strings, and a term
    keeps its id when later ingests add terms (ids are positions in the saved model)."""
    import numpy as np

    from rag.retrieve import _bm25, build_bm25, tokenize

    paths = api.sample_paths()
    api.ingest(paths[:2], tmp_settings)
    st = open_store(tmp_settings)
    first = dict(st.terms())
    st.close()
    api.ingest(paths, tmp_settings)
    st = open_store(tmp_settings)
    try:
        terms = st.terms()
        assert len(terms) > len(first) and all(terms[t] == i for t, i in first.items())
        model, ids, _ = _bm25(st)
        tokens = _chunk_tokens(st)
        live = np.flatnonzero(model.alive)  # (positions of replaced or removed chunks are dead)
        ref = build_bm25([tokens[ids[i]] for i in live])
        for q in ("RQ-VAE semantic IDs", "抖音 搜索", "knowledge distillation relevance", "MOON"):
            toks = tokenize(q)
            a = model.get_scores([t for t in toks if t in model.vocab_dict])[live]
            b = ref.get_scores([t for t in toks if t in ref.vocab_dict])
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            assert a.max() > 0, q
    finally:
        st.close()


def test_catalogue_from_before_term_ids_is_migrated(tmp_settings):
    """An index whose catalogue has no tok_ids column / terms table (written by an older version)
    gets them on open and on the next BM25 build, and answers the same."""
    import sqlite3

    api.ingest(api.sample_paths(), tmp_settings)
    before = [h.paper_id for h in api.retrieve("哪篇论文在抖音搜索部署了", tmp_settings, mode="bm25")]
    st = open_store(tmp_settings)
    db_path = st.db_path
    st.close()
    db = sqlite3.connect(db_path)
    from rag.retrieve import tokens_text

    rows = db.execute("SELECT chunk_id, title, text FROM chunks").fetchall()
    db.executemany("UPDATE chunks SET tokens=? WHERE chunk_id=?",  # older versions stored token strings
                   [(tokens_text(f"{t}\n{x}" if t else x, "bigram"), cid) for cid, t, x in rows])
    db.execute("DROP INDEX chunks_no_ids")
    db.execute("ALTER TABLE chunks DROP COLUMN tok_ids")
    db.execute("DROP TABLE terms")
    db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")  # BM25 stale
    db.commit()
    db.close()
    from rag.retrieve import forget_store

    forget_store(tmp_settings)
    after = [h.paper_id for h in api.retrieve("哪篇论文在抖音搜索部署了", tmp_settings, mode="bm25")]
    assert after == before and after
    _term_ids_match_tokens(tmp_settings)


@pytest.mark.slow
def test_sigkill_during_ingest_then_rerun(tmp_path, shared_dir):
    """A real SIGKILL once some passages are written: nothing of the unfinished ingest is visible (no
    chunk `ask` could cite that `papers` does not list), `ask` says to run the ingest again instead of
    loading the sample, and the re-run finishes it consistently."""
    corpus = shared_dir / "corpora" / "daily_arxiv_ai_enhanced" / "data"
    files = sorted(corpus.glob("*.jsonl"))[:3]
    env = {**os.environ, "DIGESTQA_INDEX": str(tmp_path / "idx"), "PYTHONPATH": str(Path(__file__).parents[1])}
    cmd = [sys.executable, "-m", "rag.cli", "ingest", "--quiet", *map(str, files)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # kill once some chunks are written
        dbs = list((tmp_path / "idx").glob("catalogue-*.sqlite"))
        if dbs and _rows(dbs[0]) > 100:
            db = dbs[0]
            break
        time.sleep(0.2)
    assert proc.poll() is None, "ingest finished before it could be killed; use more files"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from rag.config import Settings

    s = Settings(index_dir=str(tmp_path / "idx"))
    st = api.stats(s)
    assert st["papers"] == st["chunks"] == 0 and api.retrieve("vision language model", s) == []
    ask = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--json", "vision language model"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ask.returncode == 2 and "run that ingest again" in ask.stderr, ask.stderr
    assert api.stats(s)["papers"] == 0, "the bundled sample must not be loaded into the user's index"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    chunks, vectors = _consistent(s)
    assert chunks == vectors and db is not None and api.stats(s)["papers"] > 0
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert "+0 " in again.stdout and _consistent(s) == (chunks, vectors)
    doctor = subprocess.run([sys.executable, "-m", "rag.cli", "doctor"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert doctor.returncode == 0, doctor.stdout


def _rows(db: Path) -> int:
    """Chunk rows written so far, pending ones included."""
    import sqlite3

    try:
        con = sqlite3.connect(db, timeout=1)
        n = sum(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("chunks", "chunks_pending"))
        con.close()
        return n
    except sqlite3.Error:
        return 0


def test_glob_and_folder_expansion(tmp_path, seeds_dir):
    from rag.ingest import expand_paths

    d = tmp_path / "digests" / "nested"
    d.mkdir(parents=True)
    for f in seeds_dir.glob("00[01]*.txt"):
        shutil.copy(f, d / f.name)
    (d / "notes.png").write_bytes(b"\x89PNG")
    files, errors = expand_paths([tmp_path / "digests", str(d / "000_*.txt"), tmp_path / "nope"])
    assert sorted(f.name for f in files) == ["000_a9870319f13a72d6.txt", "001_855b5c13d526e93a.txt"]
    assert len(errors) == 1 and "nope" in errors[0].file


def test_file_by_file_ingest_gives_the_same_catalogue_as_one_ingest(tmp_path, sample_settings):
    """Only changed catalogue rows are rewritten per ingest; the result must not depend on it
    (e.g. MOON Embedding gains its second source when the second digest arrives)."""
    from rag.config import Settings

    s = Settings(index_dir=str(tmp_path / "one-by-one"), answerer="extractive")
    for path in api.sample_paths():
        assert api.ingest([path], s).ok
    one_by_one = {p.paper_id: p.to_json() for p in api.papers(s)}
    together = {p.paper_id: p.to_json() for p in api.papers(sample_settings)}
    assert one_by_one == together
    assert len(one_by_one["2511.11305"]["sources"]) == 2


def test_papers_are_chunked_and_embedded_a_group_at_a_time(tmp_settings, sample_settings, monkeypatch):
    """Memory is bounded by the group: chunk_papers never sees more than _CHUNK_GROUP papers, and
    the index is the same as one built in a single group."""
    import rag.chunk as chunk_mod
    import rag.ingest as ingest_mod

    seen, real = [], chunk_mod.chunk_papers

    def spy(papers, settings):
        papers = list(papers)
        seen.append(len(papers))
        return real(papers, settings)

    monkeypatch.setattr(ingest_mod, "_CHUNK_GROUP", 5)
    monkeypatch.setattr(chunk_mod, "chunk_papers", spy)
    ticks = []
    report = api.ingest(api.sample_paths(), tmp_settings, lambda d, t, m: ticks.append((d, t, m)))
    assert report.ok
    assert max(seen) == 5 and sum(seen) == SAMPLE_PAPERS
    n = report.passages_embedded  # progress counts passages embedded, ending exact
    assert ("embed" in {m for _, _, m in ticks}) and ticks[-1] == (n, n, "embed") and n > 0

    def rows(s):
        st = open_store(s)
        try:
            return sorted(st.db.execute("SELECT chunk_id, hash, embedded FROM chunks"))
        finally:
            st.close()

    assert rows(tmp_settings) == rows(sample_settings)
    assert _consistent(tmp_settings) == _consistent(sample_settings)


def test_two_processes_adding_terms_to_one_index_stay_consistent(tmp_settings):
    """Each Store caches the term table; one that is behind (another process added terms since)
    must reload it instead of handing out ids that are taken."""
    from rag.chunk import chunk_papers
    from rag.parse import parse_file
    from rag.retrieve import chunk_tokens_texts, rebuild_bm25

    paths = api.sample_paths()
    a, b = open_store(tmp_settings), open_store(tmp_settings)
    try:
        for st, path in ((a, paths[0]), (b, paths[1]), (a, paths[2])):  # a's cache is stale at the third
            chunks = chunk_papers(parse_file(str(path)).papers, tmp_settings)
            st.upsert_chunks(chunks, [None] * len(chunks), chunk_tokens_texts(chunks, "bigram"))
        rebuild_bm25(a)
    finally:
        a.close(), b.close()
    assert _term_ids_match_tokens(tmp_settings) > 0


def test_paper_json_is_asdict_json_and_round_trips(shared_dir):
    """The fast catalogue serialiser writes exactly json.dumps(asdict(p)) (rows written by older
    versions compare equal, so unchanged papers are not rewritten) and reads back the same Paper."""
    import json
    from dataclasses import asdict

    from rag.merge import merge_papers
    from rag.parse import parse_file
    from rag.store import paper_from_json, paper_to_json

    files = [*api.sample_paths(), *sorted((shared_dir / "corpora" / "scale").glob("*.jsonl.gz"))[:1]]
    records = [p for f in files for p in parse_file(str(f)).papers]
    papers = records + merge_papers(records)
    assert any(p.provenance for p in papers) and any(p.extra for p in papers) and any(p.linked_ids for p in papers)
    for p in papers:
        js = paper_to_json(p)
        assert js == json.dumps(asdict(p), ensure_ascii=False, separators=(",", ":")), p.paper_id
        assert paper_from_json(js) == p
