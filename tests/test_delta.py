"""Incremental ingest (rag.delta): a day added touches only its own papers, and the catalogue, chunks and
retrieval equal those of merging every record at once; an index built before the link index still opens,
answers, and is upgraded (with a note) by its next ingest."""
from __future__ import annotations

import json
import random
import shutil
import sqlite3

import numpy as np

import pytest

from rag import api, delta, retrieve
from rag.config import Settings
from rag.merge import merge_papers
from rag.parse import parse_file
from rag.store import Store, open_store
from rag.text import title_keys
from tests.paths import SEEDS, need_shared

QUESTIONS = ["which papers use RQ-VAE semantic IDs?", "哪篇论文在抖音搜索部署了？", "MOON multimodal representation",
             "generative recommendation with semantic IDs", "large language model agents for search"]


def _digests(n_table: int = 6, n_daily: int = 2) -> list[str]:
    """Seeds, some table-report days and some daily-arXiv days (.md and .jsonl of the same day)."""
    files = sorted(str(p) for p in SEEDS.glob("*.txt"))
    table = need_shared("corpora", "arxiv_daily_report_table")
    files += sorted(str(p) for p in table.glob("*/README.md"))[:n_table]
    daily = need_shared("corpora", "daily_arxiv_ai_enhanced", "data")
    days = sorted(p for p in daily.iterdir() if p.suffix in (".md", ".jsonl"))
    return files + [str(p) for p in days[:2 * n_daily]]


def _commit(store: Store, replaced: set[str], new: dict[str, list]) -> None:
    d = delta.plan(store, replaced, new)
    rows = [{"path": f, "sha": f, "size": 0, "mtime": 0.0, "format": "", "papers": len(r), "errors": 0}
            for f, r in new.items()]
    if new:
        store.commit_files(rows, new, d.papers, d.hashes, [], d)
    else:
        store.remove_files(sorted(replaced), d.papers, d.hashes, [], d)


def _catalogue(store: Store) -> list[dict]:
    assert _title_keys(store) == sorted((k, kind, p.paper_id) for p in store.all_papers()
                                        for k, kind in title_keys(p.paper_id, p.arxiv_id, p.title))
    return [p.to_json() for p in store.all_papers()]


def _title_keys(store: Store) -> list[tuple]:
    return sorted(store.db.execute("SELECT key, kind, paper_id FROM title_keys"))


def test_plan_equals_merging_everything_in_any_order_with_removals(tmp_path, monkeypatch):
    """Catalogue rows only (no chunks): files added one at a time in a random order, some removed and
    some re-ingested, always equal merge_papers over the records left; the plans stay small."""
    monkeypatch.setattr(delta, "_FULL_SHARE", float("inf"))  # never fall back to merging everything
    records = {f: list(parse_file(f).papers) for f in _digests(n_table=12, n_daily=3)}
    rng = random.Random(7)
    order = list(records)
    rng.shuffle(order)
    store = Store(Settings(index_dir=str(tmp_path / "ix")), readonly=False, writer=True)
    try:
        live: dict[str, list] = {}
        for i, f in enumerate(order):
            _commit(store, {f}, {f: records[f]})
            live[f] = records[f]
            if i % 4 == 3:  # forget an earlier file, then ingest it again
                gone = rng.choice(sorted(live))
                _commit(store, {gone}, {})
                del live[gone]
                assert _catalogue(store) == [p.to_json() for p in merge_papers(
                    [p for recs in live.values() for p in recs])]
                _commit(store, {gone}, {gone: records[gone]})
                live[gone] = records[gone]
            assert _catalogue(store) == [p.to_json() for p in merge_papers(
                [p for recs in live.values() for p in recs])], f"after {i + 1} files"
        linked = [p for p in store.all_papers() if any(x.startswith("t-") for x in p.linked_ids)]
        assert linked, "the digests should hold ID-less papers linked into ID'd ones"
        last = order[-1]
        d = delta.plan(store, {last}, {last: records[last]})
        assert len(d.papers) <= len({p.paper_id for p in records[last]}) + 10  # the day's papers, not all
    finally:
        store.close()


def _snapshot(s: Settings) -> dict:
    store = open_store(s)
    try:
        return {"papers": [p.to_json() for p in api.papers(s)], "chunks": store.chunk_hashes(),
                "vectors": store.vector_count()}
    finally:
        store.close()


def _answers(s: Settings) -> dict:
    return {(q, mode): [(h.paper_id, round(h.score, 6)) for h in api.retrieve(q, s, mode=mode)]
            for q in QUESTIONS for mode in ("bm25", "dense", "hybrid")}


def test_ingest_one_file_at_a_time_equals_all_at_once(tmp_path, monkeypatch):
    files = _digests(n_table=3, n_daily=1)
    once = Settings(index_dir=str(tmp_path / "once"), answerer="extractive")
    daily = Settings(index_dir=str(tmp_path / "daily"), answerer="extractive")
    assert api.ingest(files, once).ok
    monkeypatch.setattr(delta, "_FULL_SHARE", float("inf"))  # never merge everything,
    monkeypatch.setattr(retrieve, "_BM25_MERGE_SHARE", float("inf"))  # never rebuild BM25: one segment a file
    monkeypatch.setattr(retrieve, "_BM25_MAX_SEGMENTS", 10_000)
    monkeypatch.setattr(retrieve, "_BM25_MERGE_FACTOR", 0)  # never merge segments
    for f in files:
        assert api.ingest([f], daily).ok
    assert _snapshot(daily) == _snapshot(once)
    assert _answers(daily) == _answers(once)
    store = open_store(daily)
    try:
        model = store.load_bm25()[0]
        assert model.segments == len(files) and not model.alive.all()  # appended, some chunks replaced
    finally:
        store.close()


def test_merge_from_is_a_binary_counter():
    from rag.retrieve import _merge_from

    assert _merge_from([1000, 10]) == 1  # append
    assert _merge_from([1000, 10, 10]) == 1  # the two small ones merge
    assert _merge_from([1000, 20, 10]) == 2
    assert _merge_from([1000, 20, 10, 10]) == 1  # 10+10 -> 20, then 20+20 -> 40
    assert _merge_from([100, 60]) == 0  # a day the size of the index: rebuild
    docs, rewritten = [5000], 0
    for _ in range(300):  # 300 days of 10 chunks: few segments, each chunk rewritten ~log2(days) times
        docs.append(10)
        keep = _merge_from(docs)
        rewritten += sum(docs[keep:])
        docs = docs[:keep] + [sum(docs[keep:])]
        assert len(docs) <= 11
    assert rewritten <= 300 * 10 * 10


def test_merged_segments_rank_like_one_ingest(tmp_path, monkeypatch):
    """Days added one at a time with segment merging: the same answers as one ingest of everything, few
    segments, and the dirs of merged-away segments are deleted."""
    files = _digests(n_table=5, n_daily=1)
    once = Settings(index_dir=str(tmp_path / "once"), answerer="extractive")
    daily = Settings(index_dir=str(tmp_path / "daily"), answerer="extractive")
    assert api.ingest(files, once).ok
    monkeypatch.setattr(delta, "_FULL_SHARE", float("inf"))
    monkeypatch.setattr(retrieve, "_BM25_MERGE_SHARE", float("inf"))
    monkeypatch.setattr(retrieve, "_BM25_MERGE_FACTOR", 4.0)  # merge often: a small test corpus
    merged, n_prev = 0, None
    for f in files:
        assert api.ingest([f], daily).ok
        store = open_store(daily)
        m = store.bm25_manifest()
        merged += n_prev is not None and len(m["segments"]) <= n_prev  # this day's segment merged others
        n_prev = len(m["segments"])
        on_disk = {d.name for d in store.bm25_dir.iterdir() if d.is_dir() and d.name.startswith("s")}
        assert set(m["segments"]) <= on_disk and len(on_disk) <= 2 * len(m["segments"]) + 2
        store.close()
    assert merged, "no merge happened: the test tests nothing"
    assert n_prev < len(files)
    assert _snapshot(daily) == _snapshot(once)
    assert _answers(daily) == _answers(once)


def test_index_from_before_the_link_index_answers_and_is_upgraded(tmp_path):
    s = Settings(index_dir=str(tmp_path / "ix"), answerer="extractive")
    files = sorted(str(p) for p in SEEDS.glob("*.txt"))
    assert api.ingest(files[:3], s).ok
    papers_before = api.papers(s)
    hits_before = [h.paper_id for h in api.retrieve(QUESTIONS[0], s, mode="bm25")]
    # make it what an older digestqa left: records without paper ids, no link index, bm25s files
    store = open_store(s)
    gen = store.generation()
    ids, buf, lens = store.chunk_token_ids()
    old = retrieve.build_bm25_ids(np.frombuffer(buf, dtype=np.int32),
                                  np.frombuffer(lens, dtype=np.int32).astype(np.int64), store.terms())
    shutil.rmtree(store.bm25_dir)
    old.save(str(store.bm25_dir), show_progress=False)
    (store.bm25_dir / "ids.json").write_text(json.dumps({"generation": gen, "ids": ids}))
    store.close()
    db = sqlite3.connect(open_store(s).db_path)
    with db:
        db.execute("DROP TABLE link_groups")
        db.execute("DROP TABLE link_clauses")
        db.execute("DELETE FROM meta WHERE key='link_index'")
        db.execute("DROP INDEX records_paper")
        db.execute("ALTER TABLE records DROP COLUMN paper_id")
    db.close()
    assert api.papers(s) == papers_before
    assert "problems" not in api.stats(s)  # older BM25 files are not damage
    assert [h.paper_id for h in api.retrieve(QUESTIONS[0], s, mode="bm25")] == hits_before
    store = open_store(s)
    assert store.load_bm25() is not None and (store.bm25_dir / "manifest.json").exists()  # rebuilt by the ask
    store.close()
    rep = api.ingest(files[3:], s)
    assert rep.ok
    assert any("upgrading the index for incremental ingest" in n for n in rep.notes), rep.notes
    full = Settings(index_dir=str(tmp_path / "full"), answerer="extractive")
    assert api.ingest(files, full).ok
    assert [p.to_json() for p in api.papers(s)] == [p.to_json() for p in api.papers(full)]
    store = open_store(s)
    try:
        assert store.link_index_ready()
    finally:
        store.close()
    again = api.ingest([files[0]], s)  # nothing new: no upgrade note any more
    assert not any("upgrading" in n for n in again.notes)


def _src(name: str, line: int = 1):
    from rag.types import Source

    return Source(file=f"/d/{name}", date=None, format="table", line=line)


def _crafted() -> dict[str, list]:
    """Files whose order decides links: an ID-less paper linked by title to the one ID'd paper of that title
    (a second one unlinks it), another linked by its summary's clauses (an ID'd abstract sharing them
    unlinks it)."""
    from rag.types import Paper

    title = "Semantic Identifiers for Generative Retrieval at Scale"
    abstract = ("We propose a tokenizer, which maps every item to a short sequence of discrete codes. "
                "Our model learns the codebooks jointly, with the ranking objective on industrial logs. "
                "Online experiments on a large video platform show significant gains in watch time.")
    summary = ("A new tokenizer, which maps every item to a short sequence of discrete codes. "
               "It learns the codebooks jointly, with the ranking objective on industrial logs.")

    def ided(pid, name, t, abs_=""):
        return Paper(paper_id=pid, arxiv_id=pid, title=t, abstract=abs_, sources=(_src(name),))

    return {
        "a": [Paper(paper_id="t-sid", title=title, tldr_en="A related paper.", sources=(_src("a", 3),))],
        "b": [ided("2501.00001", "b", title, "A different abstract about retrieval with identifiers only.")],
        "c": [ided("2501.00002", "c", title + ".")],
        "d": [Paper(paper_id="t-tok", title="Code Tokenizer", tldr_en=summary, sources=(_src("d", 2),))],
        "e": [ided("2501.00003", "e", "Discrete Codes for Items", abstract)],
        "f": [ided("2501.00004", "f", "Another Paper on Codes", abstract)],
    }


def test_plan_links_and_unlinks_like_merging_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(delta, "_FULL_SHARE", float("inf"))
    files = _crafted()
    assert {p.paper_id: p.linked_ids for p in merge_papers(files["a"] + files["b"] + files["d"] + files["e"])} \
        == {"2501.00001": ("t-sid",), "2501.00003": ("t-tok",)}  # the fixture links as intended
    rng = random.Random(3)
    for run in range(12):
        order = list(files)
        rng.shuffle(order)
        store = Store(Settings(index_dir=str(tmp_path / f"ix{run}")), readonly=False, writer=True)
        try:
            live: dict[str, list] = {}
            steps = [(f, True) for f in order] + [(f, False) for f in rng.sample(order, 3)] + \
                    [(f, True) for f in order[:2]]
            for f, add in steps:
                _commit(store, {f}, {f: files[f]} if add else {})
                live.pop(f, None)
                if add:
                    live[f] = files[f]
                want = [p.to_json() for p in merge_papers([p for recs in live.values() for p in recs])]
                assert _catalogue(store) == want, (order, f, add)
        finally:
            store.close()
