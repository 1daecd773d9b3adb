"""bench.embedders (issue 11): the cross-lingual query builder and a tiny MiniLM-only run with its report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.embedders import strip_latin, xling_items

ROOT = Path(__file__).resolve().parents[1]


def test_strip_latin_leaves_no_name_to_match():
    q = strip_latin("DiffTetVR是一种基于四面体网格的可微分体渲染方法，比 NeRF-2 和 3D-GS 快，代码已在GitHub开源")
    assert q == "是一种基于四面体网格的可微分体渲染方法,比 和 快,代码已在 开源"  # (NFKC: full-width punctuation too)
    assert strip_latin("ＬＬＭ（大模型）") == "(大模型)"  # full-width letters too (NFKC)


def test_xling_items_are_distinct_papers_with_chinese_queries(shared_dir):
    items = xling_items(40)
    assert len(items) == 40 and len({i["id"] for i in items}) == 40
    for it in items:
        assert not any("a" <= ch.lower() <= "z" for ch in it["q_nolatin"])
        assert it["abstract"] and it["title"] and it["q_asis"] != ""


@pytest.mark.slow
def test_bench_embedders_xling_smoke(tmp_path, shared_dir):
    cmd = [sys.executable, "-m", "bench.embedders", "xling", "--configs", "minilm+glossary,minilm", "--papers", "6",
           "--depth", "10", "--work", str(tmp_path / "work"), "--results", str(tmp_path / "res")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "res" / "embedders-xling.json").read_text())
    assert set(doc) == {"minilm+glossary", "minilm"}
    for r in doc.values():
        assert r["papers"] == 6 and set(r["results"]) == {"q_nolatin/dense", "q_nolatin/hybrid",
                                                          "q_asis/dense", "q_asis/hybrid"}
        assert all(0 <= m["mrr"] <= m["hit@5"] <= 1 and m["n"] == 6 for m in r["results"].values())
    rep = subprocess.run([sys.executable, "-m", "bench.embedders", "report", "--results", str(tmp_path / "res")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert rep.returncode == 0 and "| minilm | zh, Latin removed | dense |" in rep.stdout
