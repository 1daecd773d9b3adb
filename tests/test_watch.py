"""Watches: the watch list, matches after an ingest, `watch run`, any-language phrases, week counts, and the
labelled calibration set kept consistent with the corpora it was judged on."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import api, watch
from rag.config import Settings

REPO = Path(__file__).resolve().parents[1]


def cli(args, index):
    env = {**os.environ, "DIGESTQA_INDEX": str(index), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_watch_list_add_remove(tmp_path):
    idx = tmp_path / "idx"
    assert cli(["watch", "add", "  semantic   IDs "], idx).stdout.strip() == 'watching "semantic IDs"'
    assert cli(["watch", "add", "Semantic IDs", "--threshold", "0.8"], idx).returncode == 0  # same watch: updated
    assert cli(["watch", "add", "生成式推荐"], idx).returncode == 0
    out = cli(["watch", "list"], idx).stdout.splitlines()
    assert len(out) == 2 and out[0].startswith('"Semantic IDs"') and "threshold 0.8" in out[0] and "生成式推荐" in out[1]
    assert cli(["watch", "remove", "SEMANTIC ids"], idx).returncode == 0
    r = cli(["watch", "remove", "nothing like this"], idx)
    assert r.returncode == 2 and "no watch" in r.stderr
    assert [w.phrase for w in api.watches(Settings(index_dir=str(idx)))] == ["生成式推荐"]
    r = cli(["watch", "add", "--threshold", "3", "x"], idx)
    assert r.returncode == 2 and "threshold" in r.stderr


def test_ingest_summary_lists_new_papers_matching_each_watch(tmp_path):
    idx = tmp_path / "idx"
    cli(["watch", "add", "语义ID"], idx)  # Chinese phrase; the sample's semantic-ID papers are English only
    r = cli(["ingest", "--quiet", *map(str, api.sample_paths())], idx)
    assert r.returncode == 0, r.stderr
    assert "watches (" in r.stdout and '"语义ID":' in r.stdout
    block = r.stdout.split('"语义ID":', 1)[1]
    assert "2508.15281" in block and "2512.02474" in block  # MMQ, Q-BERT4Rec: semantic IDs in English text
    assert "why: terms" in block and "semantic" in block.lower()
    s = Settings(index_dir=str(idx))
    assert not any(p.tldr_zh for p in api.get_papers(["2512.02474"], s)[0]), "matched through the glossary"
    r = cli(["ingest", "--quiet", *map(str, api.sample_paths())], idx)  # nothing new: nothing listed
    assert r.returncode == 0 and "watches (" not in r.stdout


def test_watch_run_dates_json_and_reasons(sample_settings):
    s = sample_settings
    found = api.whats_new("semantic IDs", None, None, s)["semantic IDs"]
    assert found and found == sorted(found, key=lambda m: -m.score)
    for m in found:
        assert m.score >= watch.THRESHOLD and m.terms and m.sentence and m.field
        assert all(t in m.why for t in m.terms) and f"{m.score:.2f}" in m.why
    r = cli(["watch", "run", "semantic IDs", "--since", "2000-01-01", "--json"], s.index_dir)
    got = json.loads(r.stdout)["watches"]["semantic IDs"]
    assert [m["paper_id"] for m in got] == [m.paper_id for m in found]
    day = sorted(m.date for m in found)[-1]
    later = api.whats_new("semantic IDs", (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat(), None, s)
    assert all(m.date > day for m in later["semantic IDs"])
    assert api.whats_new("semantic IDs", "2099-01-01", None, s) == {"semantic IDs": []}
    r = cli(["watch", "run", "x", "--since", "01/02/2025"], s.index_dir)
    assert r.returncode == 2 and "YYYY-MM-DD" in r.stderr


def test_week_counts_cover_every_indexed_week(sample_settings):
    weeks = api.watch_weeks("semantic IDs", sample_settings)
    matches = api.whats_new("semantic IDs", None, None, sample_settings)["semantic IDs"]
    assert sum(m for _, m, _ in weeks) == len([m for m in matches if m.date])
    assert sum(t for _, _, t in weeks) == len([p for p in api.papers(sample_settings) if p.date])
    days = [dt.date.fromisoformat(w) for w, _, _ in weeks]
    assert all(d.weekday() == 0 for d in days) and all(b - a == dt.timedelta(days=7) for a, b in zip(days, days[1:]))


def test_unrelated_watch_matches_nothing(sample_settings):
    assert api.whats_new("protein folding in cryo-electron microscopy", settings=sample_settings) == {
        "protein folding in cryo-electron microscopy": []}


@pytest.mark.parametrize("split", ["dev", "test"])
def test_labelled_watch_sets_are_consistent_with_the_corpora(split, shared_dir):
    """Every judged paper exists in the corpora; positives were judged; dev and test share no phrase."""
    from eval.watches import load
    from rag.parse import parse_file

    ids: set[str] = set()
    for sub in ("arxiv_daily_report_table", "daily_arxiv_ai_enhanced/data"):
        for f in sorted((shared_dir / "corpora" / sub).rglob("*")):
            if f.suffix in (".md", ".jsonl") and f.name != "SOURCES.md":
                ids |= {p.arxiv_id for p in parse_file(str(f)).papers if p.arxiv_id}
    sets = load(split)
    assert len(sets) >= 10 and sum(len(s.positive) for s in sets) >= 100
    for s in sets:
        assert s.positive <= s.judged and s.judged <= ids, s.watch
    other = {s.watch for s in load("test" if split == "dev" else "dev")}
    assert not other & {s.watch for s in sets}
    assert {s.lang for s in sets} == {"en", "zh"}
