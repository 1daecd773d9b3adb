"""Progress that moves: ingest reports passages embedded / total from the first embedder call with an honest
rate; eval draws the same kind of bar for its questions; both end with a summary."""
from __future__ import annotations

import io
import re
import threading
import time

import numpy as np
import pytest

import rag.embed
import rag.ingest
from rag import api, cli


class SlowEmbedder:
    """A fake embedder taking ``per_text`` seconds per text (counts what it embedded, and when)."""

    name = "slow-fake"
    dim = 384

    def __init__(self, per_text: float):
        self.per_text, self.texts, self.busy = per_text, 0, 0.0
        self.lock = threading.Lock()

    def embed(self, texts):
        t0 = time.perf_counter()
        time.sleep(self.per_text * len(texts))
        with self.lock:
            self.texts += len(texts)
            self.busy += time.perf_counter() - t0
        rng = np.random.default_rng(len(texts))
        m = rng.normal(size=(len(texts), self.dim)).astype(np.float32)
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    def embed_query(self, text):
        return self.embed([text])[0]


@pytest.fixture
def slow(monkeypatch):
    fake = SlowEmbedder(per_text=0.02)  # 50 passages/s at most
    monkeypatch.setattr(rag.embed, "get_embedder", lambda settings: fake)
    monkeypatch.setattr(rag.ingest, "_EMBED_COMMIT", 8)  # several updates on the small sample
    return fake


def test_ingest_bar_counts_passages_from_the_first_embedding_with_an_honest_rate(tmp_settings, slow):
    events: list[tuple[float, int, int, str]] = []
    out = io.StringIO()
    bars = cli.ProgressBars(file=out)

    def progress(done, total, stage):
        events.append((time.perf_counter(), done, total, stage))
        bars(done, total, stage)

    t0 = time.perf_counter()
    report = api.ingest(api.sample_paths(), tmp_settings, progress)
    wall = time.perf_counter() - t0
    embed = [e for e in events if e[3] == "embed"]
    assert [e[3] for e in events] == ["parse"] * 5 + ["embed"] * len(embed)  # parse, then embed: no 'index'
    assert embed[0][1] == 0 and slow.texts > 0  # the bar exists before the first embedder call ...
    assert len(embed) >= slow.texts // 8  # ... and moves after every commit, not once per 1,000 papers
    assert embed[-1][1] == embed[-1][2] == slow.texts == report.passages_embedded
    assert all(e[2] == slow.texts for e in embed)  # under 1,000 papers the total is exact from the start
    assert [e[1] for e in embed] == sorted(e[1] for e in embed)

    text = out.getvalue().replace("\r", "\n")
    rates = [float(m) for m in re.findall(r"embed: 100%.*?([\d.]+) passages/s", text)]
    assert rates, text
    true_rate = slow.texts / (embed[-1][0] - embed[0][0])  # passages / time the bar was up
    assert 0.67 < rates[-1] / true_rate < 1.5, (rates[-1], true_rate)
    assert rates[-1] < 1.2 / slow.per_text  # never faster than the embedder can go (the old bar said 1e8/s)
    assert wall >= slow.busy

    summary = io.StringIO()
    cli.print_report(report, out=summary)
    m = re.search(r"embedded: (\d+) passages \(([\d.]+)/s\)", summary.getvalue())
    assert m and int(m.group(1)) == slow.texts, summary.getvalue()
    assert 0.5 < float(m.group(2)) * slow.per_text < 1.2  # the summary's rate is the embedder's own


def test_total_for_big_ingests_is_estimated_then_exact(tmp_settings, slow, monkeypatch):
    monkeypatch.setattr(rag.ingest, "_CHUNK_GROUP", 10)  # 36 papers in 4 groups
    events = []
    api.ingest(api.sample_paths(), tmp_settings, lambda d, t, s: events.append((d, t, s)))
    embed = [e for e in events if e[2] == "embed"]
    first_total, final = embed[0][1], embed[-1]
    assert final[0] == final[1] == slow.texts
    assert 0.5 * slow.texts <= first_total <= 2 * slow.texts  # an estimate from the first 10 papers
    assert all(d <= t for d, t, _ in embed)


def test_eval_shows_a_question_bar_and_a_summary(sample_settings, tmp_path, capsys):
    code = cli.main(["--index", sample_settings.index_dir, "eval", "--limit", "3", "--out", str(tmp_path / "run")])
    err = capsys.readouterr()
    assert code == 0, err.err
    bar = err.err.replace("\r", "\n")
    assert re.search(r"questions: 100%.*\b3/3 \[.*questions/s", bar), bar
    assert not re.search(r"^\[\d+/\d+\]", bar, re.M)  # the old ad-hoc progress lines are gone
    assert "hit@1" in err.out and "wrote" in err.out  # the final summary
