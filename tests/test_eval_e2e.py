"""End to end: the real pipeline (ingest, retrieve, extractive answerer) on the bundled sample."""
from __future__ import annotations

import json

import matplotlib.image as mpimg

from eval import run_eval
from eval.beir import load_qrels, ndcg_at, recall_at
from eval.questions import load_questions

IDS = ("q29", "q30", "q01", "q89")  # Douyin (zh), LEMUR memory bank (zh), Q-BERT4Rec RVQ, BLEU (unanswerable)


def test_harness_on_a_few_bundled_questions(sample_settings, tmp_path):
    qs = {q.id: q for q in load_questions()}
    lines = [json.dumps(qs[i].to_json(), ensure_ascii=False) for i in IDS]
    qfile = tmp_path / "few.jsonl"
    qfile.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rep = run_eval(qfile, sample_settings, tmp_path / "run", sample_if_empty=False)
    recs = {r["id"]: r for r in rep.per_question}
    assert set(recs) == set(IDS)
    douyin = recs["q29"]
    assert douyin["question"] == "哪篇论文在抖音搜索部署了？"
    assert douyin["metrics"]["hit@5"] == 1.0, douyin["sources"]
    assert "2511.10962" in douyin["cited"]
    assert douyin["metrics"]["citation_validity"] == 1.0
    assert recs["q01"]["metrics"]["hit@1"] == 1.0
    assert rep.metrics["latency_p50_ms"] > 0
    answers = [json.loads(x) for x in rep.answers.read_text(encoding="utf-8").splitlines()]
    assert [a["id"] for a in answers] == list(IDS) and all("citations" in a for a in answers)
    assert mpimg.imread(rep.plot).shape[0] > 100


def test_retrieval_only_mode(sample_settings, tmp_path):
    rep = run_eval(None, sample_settings, tmp_path / "ro", limit=12, retrieval_only=True, sample_if_empty=False)
    assert rep.metrics["hit@5"] is not None and rep.metrics["hit@5"] >= 0.75
    assert rep.metrics["fact_recall"] is None and rep.metrics["citation_recall"] is None


def test_beir_helpers_on_scifact_qrels(shared_dir):
    qrels = load_qrels(shared_dir / "corpora" / "scifact" / "qrels" / "test.tsv")
    assert len(qrels) == 300 and sum(len(v) for v in qrels.values()) == 339
    assert all("\r" not in d for v in qrels.values() for d in v)
    rels = {"a": 1, "b": 1}
    assert ndcg_at(["a", "b", "c"], rels) == 1.0
    assert ndcg_at(["c", "a"], rels) < 1.0 and recall_at(["c", "a"], rels) == 0.5
