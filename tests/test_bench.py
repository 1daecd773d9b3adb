"""`python -m bench` runs from a checkout: a tiny incremental run prints the tables and writes JSON."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_incremental_smoke(tmp_path, shared_dir):
    scale = shared_dir / "corpora" / "scale"
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "bench", "--sizes", "12,30", "--incremental", "--day", "6", "--grow", "400",
           "--queries", "4", "--raw-max", "20", "--no-baseline", "--no-embed-full", "--no-cold",
           "--corpus", str(scale), "--out", str(out), "--work", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    for heading in ("Ingest (seconds per stage)", "Latency (warm", "One more day: +6 papers", "Targets"):
        assert heading in proc.stdout, heading
    res = json.loads(next(out.glob("*.json")).read_text())
    first, second = res["sizes"]
    assert first["ingest"]["papers"] == 12 and second["ingest"]["papers"] == 18
    assert second["ingest"]["papers_total"] == 30 and second["ingest"]["reingest"]["chunks_added"] == 0
    assert second["ratios"]["pipeline_vs_raw_throughput"] > 0
    assert second["day"]["papers_added"] == 6 and second["day"]["papers_in_index"] == 30
    assert second["grow"]["chunks_after"] >= 400 > second["grow"]["chunks_before"]
    assert second["grow"]["latency"]["hybrid"]["n"] == 4


def test_noembed_stages_on_two_days(shared_dir):
    from bench.noembed import run

    res = run(shared_dir / "corpora" / "scale", max_files=2)
    assert res["papers"] > 100 and res["chunks"] > 5 * res["papers"]
    assert set(res["timings"]) == {"parse", "merge", "chunk", "tokens", "store", "bm25"}
    assert res["raw_tiktoken"]["texts"] >= res["papers"]


def test_grown_subset_rewrites_only_the_days_that_gained_papers(tmp_path, shared_dir):
    """A bigger subset leaves days that did not change byte-for-byte alone (same mtime), as a
    user's old digests stay put; so the bench's day step measures a day, not a re-read corpus."""
    from bench.corpus import write_subset

    scale = shared_dir / "corpora" / "scale"
    out = tmp_path / "data"
    write_subset(scale, 300, out)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    write_subset(scale, 300, out)
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before
    write_subset(scale, 700, out)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    changed = [n for n in before if after[n] != before[n]]
    assert len(after) > len(before) and len(changed) <= 1  # only the last day can gain papers
    assert all(after[n] == before[n] for n in before if n not in changed)


@pytest.mark.slow
def test_bench_server_smoke(tmp_path, shared_dir):
    """`python -m bench.server` starts its own `chroma run`, builds both modes from the same papers, adds a
    day and compares latency and answers; at 30 papers (exact vector search) the answers are the same."""
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "bench.server", "--papers", "30", "--day", "6", "--queries", "4", "--rounds", "2",
           "--builds", "1", "--corpus", str(shared_dir / "corpora" / "scale"), "--work", str(tmp_path / "work"),
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| first ingest, papers/s |" in proc.stdout and "server / embedded" in proc.stdout
    res = json.loads(next(out.glob("server-*.json")).read_text())
    assert res["build"]["embedded"]["papers_new"] == res["build"]["server"]["papers_new"] == 30
    assert res["day"]["server"]["papers_new"] == 6 and res["day"]["server"]["chunks_added"] > 0
    assert res["build"]["server"]["server_cpu_s"] > 0 == res["build"]["embedded"]["server_cpu_s"]
    for same in res["same_answers"]:
        assert same["dense"]["same_papers"] == same["hybrid"]["same_papers"] == 4, same
        assert same["ask"]["same_text"] == 4, same


def test_hashed_words_stand_in_has_neighbourhoods():
    import numpy as np

    from bench.server import HashedWords

    e = HashedWords()
    a, b, c = e.embed(["semantic IDs for generative retrieval", "generative retrieval with semantic IDs",
                       "protein folding under heat stress"])
    assert abs(float(np.linalg.norm(a)) - 1) < 1e-5
    assert float(a @ b) > 0.6 > 0.3 > float(a @ c)
    assert np.allclose(e.embed_query("semantic IDs for generative retrieval"), a)
    zh = e.embed(["哪篇论文在抖音搜索部署了", "抖音搜索"])
    assert float(zh[0] @ zh[1]) > 0.3


def test_dayfile_adds_one_digest_and_reports_the_rest_of_the_ingest(tmp_path, seeds_dir):
    """`python -m bench.dayfile INDEX FILE`: a digest file added with the stand-in embedder; a second run adds
    nothing (the file is unchanged)."""
    seed = sorted(Path(seeds_dir).glob("*.txt"))[0]
    cmd = [sys.executable, "-m", "bench.dayfile", str(tmp_path / "ix"), str(seed)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first, again = (json.loads(subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
                                              check=True).stdout.splitlines()[-1]) for _ in range(2))
    assert first["ok"] and first["papers_new"] > 0 and first["chunks"] > 0 and first["overhead_s"] > 0
    assert again["papers_new"] == 0 and again["chunks"] == 0
