"""`digestqa remove`: a digest's papers leave the catalogue, Chroma and BM25; a paper also in another digest
stays with that digest's fields; the bundled sample lives in its own index."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import api
from rag.config import Settings
from rag.store import open_store
from tests.paths import REPO, seed

SHARED_PAPER = "2512.02474"  # in seed 000 (table report) and seed 003 (paper page)


def snapshot(s: Settings) -> dict:
    """Everything an index holds, comparable across two index dirs."""
    store = open_store(s)
    try:
        bm25 = store.load_bm25()
        return {"papers": [p.to_json() for p in store.all_papers()], "chunks": store.chunk_hashes(),
                "vectors": store.vector_count(), "embedded": store.embedded_count(),
                "files": store.file_paths(), "bm25_ids": sorted(bm25[0].live_ids()) if bm25 and bm25[0] else None}
    finally:
        store.close()


def test_remove_a_digest_equals_never_having_ingested_it(tmp_path):
    both = Settings(index_dir=str(tmp_path / "both"), answerer="extractive")
    only = Settings(index_dir=str(tmp_path / "only"), answerer="extractive")
    assert api.ingest([seed("000"), seed("003")], both).ok
    assert api.ingest([seed("000")], only).ok
    before = {p.paper_id: p for p in api.papers(both)}
    assert {s.file for s in before[SHARED_PAPER].sources} == {str(seed("000")), str(seed("003"))}

    r = api.remove([seed("003")], settings=both)
    assert r.files == (str(seed("003")),) and r.papers_kept == (SHARED_PAPER,)
    assert r.papers_removed == len(before) - len(api.papers(only)) > 0
    assert r.chunks_removed > 0
    after, expected = snapshot(both), snapshot(only)
    assert after["papers"] == expected["papers"]  # the shared paper keeps seed 000's fields, nothing of 003's
    assert after["chunks"] == expected["chunks"]
    assert after["vectors"] == after["embedded"] == expected["vectors"]  # Chroma lost the removed vectors
    assert after["bm25_ids"] == expected["bm25_ids"] and after["files"] == expected["files"]
    hits = api.retrieve("LLM4CD cognitive diagnosis", both)  # a seed-003-only paper is gone from answers
    assert all("003_" not in s.file for h in hits for p in api.papers(both) if p.paper_id == h.paper_id
               for s in p.sources)


def test_remove_by_source_name_and_missing_file(tmp_path):
    s = Settings(index_dir=str(tmp_path / "idx"), answerer="extractive")
    copy = tmp_path / "digests" / "day.txt"
    copy.parent.mkdir()
    copy.write_bytes(seed("001").read_bytes())
    assert api.ingest([copy, seed("002")], s).ok
    copy.unlink()  # a digest deleted from disk can still be removed by its path
    r = api.remove([copy], settings=s)
    assert r.files == (str(copy),) and "2511.11305" in r.papers_kept
    with pytest.raises(ValueError, match=r"no indexed digest matches 'nope\.md'.*nothing was removed"):
        api.remove(names=["nope.md"], settings=s)
    r = api.remove(names=[seed("002").name], settings=s)
    assert r.files == (str(seed("002")),) and r.papers_kept == ()
    assert snapshot(s)["papers"] == [] and snapshot(s)["vectors"] == 0


def test_interrupted_removal_is_finished_by_the_next(tmp_path, monkeypatch):
    s = Settings(index_dir=str(tmp_path / "idx"), answerer="extractive")
    assert api.ingest([seed("000"), seed("003")], s).ok
    vectors = snapshot(s)["vectors"]
    from rag.store import Store

    monkeypatch.setattr(Store, "delete_pending_vectors", lambda self: 0)  # "killed" before Chroma deletes
    api.remove([seed("003")], settings=s)
    mid = snapshot(s)
    assert mid["vectors"] == vectors > mid["embedded"]  # orphan vectors: no chunk rows, never returned
    assert api.ask("which papers use RQ-VAE semantic IDs", s).sources  # the index answers
    monkeypatch.undo()
    api.remove([seed("000")], settings=s)  # the next removal deletes the leftovers too
    assert snapshot(s)["vectors"] == 0 == snapshot(s)["embedded"]


def cli(args, index: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "DIGESTQA_INDEX": str(index), "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=full,
                          timeout=600)


def test_sample_lives_in_its_own_index_and_remove_sample_deletes_it(tmp_path):
    idx = tmp_path / "idx"
    r = cli(["ask", "--json", "which papers use RQ-VAE semantic IDs"], idx)
    assert r.returncode == 0, r.stderr
    assert f"into its own index {idx / 'sample'}" in r.stderr
    assert json.loads(r.stdout)["sources"]
    user = Settings(index_dir=str(idx))
    assert api.stats(user)["papers"] == 0  # the user's index stays empty
    assert api.stats(api.sample_settings(user))["papers"] == 36

    mine = tmp_path / "day.txt"  # (a copy: the bundled files themselves count as the sample)
    mine.write_bytes(seed("002").read_bytes())
    r = cli(["ingest", "--quiet", str(mine)], idx)
    assert r.returncode == 0 and "note:" not in r.stderr, r.stderr
    r = cli(["ask", "--json", "which papers use RQ-VAE semantic IDs"], idx)
    own = {p.paper_id for p in api.papers(user)}
    assert {s["paper_id"] for s in json.loads(r.stdout)["sources"]} <= own  # nothing from the sample

    st = cli(["stats", "--sources"], idx).stdout
    assert "sample: 36 papers in" in st and str(mine) in st
    r = cli(["remove", "--sample"], idx)
    assert r.returncode == 0 and f"removed the bundled sample's index {idx / 'sample'}" in r.stdout, r.stdout
    assert not (idx / "sample").exists() and api.stats(user)["papers"] == len(own)


def test_sample_mixed_in_by_an_older_version_is_noted_and_removed(tmp_path):
    idx = tmp_path / "idx"
    s = Settings(index_dir=str(idx))
    api.ingest(api.sample_paths(), s)  # what `ask` did before the sample had its own index
    other = tmp_path / "mine.txt"
    other.write_bytes(seed("001").read_bytes())
    r = cli(["ingest", "--quiet", str(other)], idx)
    assert "note: this index also holds the bundled sample (5 digests" in r.stderr
    assert "digestqa remove --sample" in r.stderr
    r = cli(["remove", "--sample"], idx)
    assert r.returncode == 0 and "removed 5 digests:" in r.stdout, r.stdout + r.stderr
    assert "kept 2511.11305" in r.stdout  # seed 001's copy is in mine.txt too
    assert api.sources(s) == [str(other)]
    r = cli(["remove"], idx)
    assert r.returncode == 2 and "PATH, --source NAME or --sample" in r.stderr
    r = cli(["remove", "--source", "nope.md"], idx)
    assert r.returncode == 2 and "no indexed digest matches 'nope.md'" in r.stderr and "Traceback" not in r.stderr
