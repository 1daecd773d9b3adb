"""Eval metrics on hand-made answer dicts: each metric can pass and fail."""
from __future__ import annotations

import pytest

from eval import metrics as M


def src(rank, pid, title="", arxiv=None):
    return {"rank": rank, "paper_id": pid, "arxiv_id": arxiv if arxiv is not None else (pid if pid[0].isdigit() else None),
            "title": title, "score": 1.0 / rank, "fields": ["abstract"]}


def cite(n, pid, title="", support=0.5):
    return {"n": n, "paper_id": pid, "arxiv_id": pid if pid[0].isdigit() else None, "title": title,
            "url": None, "field": "abstract", "passage": "p", "support": support}


def answer(text="", citations=(), sources=(), abstained=False, total=100.0):
    return {"question": "q", "answer": text, "abstained": abstained, "citations": list(citations),
            "sources": list(sources), "timings_ms": {"total": total}}


def question(must=(), gold=(), facts=(), answerable=True, lang="en", kind="fact"):
    return {"id": "q", "question": "q?", "lang": lang, "kind": kind, "must": list(must), "gold": list(gold),
            "facts": list(facts), "answerable": answerable}


SOURCES = [src(1, "2511.11305", "MOON Embedding: Multimodal Representation Learning"),
           src(2, "t-abc123", "MMGRec: Multimodal Generative Recommendation with Transformer Model"),
           src(3, "2508.11999", "MOON: Generative MLLM-based Multimodal Representation Learning")]


def test_ref_matching_ids_titles_versions_and_alternatives():
    moon = SOURCES[0]
    assert M.ref_matches("2511.11305", moon)
    assert M.ref_matches("2511.11305v2", moon)
    assert not M.ref_matches("2508.11999", moon)
    assert M.ref_matches("title:mmgrec", SOURCES[1])
    assert not M.ref_matches("title:MMGRec", moon)
    assert M.ref_matches("2508.15281|title:Generative Recommendation with", SOURCES[1])
    assert not M.ref_matches("title:", moon)


def test_title_ref_matches_merged_record_through_catalogue():
    merged = src(1, "2508.15281", "Recommender systems traditionally represent items")
    cat = {"2508.15281": {"ids": ["2508.15281", "t-mmq"], "titles": ["MMQ: Multimodal Mixture-of-Quantization Tokenization"]}}
    assert not M.ref_matches("title:Mixture-of-Quantization", merged)
    assert M.ref_matches("title:Mixture-of-Quantization", merged, cat)
    assert M.ref_matches("t-mmq", merged, cat)


def test_title_ref_normalises_latex_and_case():
    item = src(1, "2511.11255", "Align$^3$GR: Unified Multi-Level Alignment")
    assert M.ref_matches("title:align3gr", item)
    assert M.ref_matches("title:Align³GR", item)


def test_retrieval_metrics_ranks():
    r = M.retrieval_metrics(["2508.11999"], SOURCES)
    assert r["hit@1"] == 0.0 and r["hit@5"] == 1.0
    assert r["mrr"] == pytest.approx(1 / 3)
    assert r["ndcg@10"] == pytest.approx(0.5)  # 1/log2(4) over ideal 1
    r2 = M.retrieval_metrics(["2511.11305", "title:MMGRec", "9999.99999"], SOURCES)
    assert r2["hit@1"] == 1.0 and r2["mrr"] == 1.0
    assert r2["recall@5"] == pytest.approx(2 / 3)
    assert 0 < r2["ndcg@10"] < 1
    none = M.retrieval_metrics(["9999.99999"], SOURCES)
    assert none == {"hit@1": 0.0, "hit@5": 0.0, "recall@5": 0.0, "mrr": 0.0, "ndcg@10": 0.0}


def test_one_source_is_credited_to_one_ref_only():
    r = M.retrieval_metrics(["title:MOON", "title:MOON"], SOURCES[:1])
    assert r["recall@5"] == 0.5


def test_citation_recall_precision_validity():
    cites = [cite(1, "2511.11305"), cite(2, "2512.99999")]
    assert M.citation_recall(["2511.11305", "2508.11999"], cites) == 0.5
    assert M.citation_precision(["2511.11305"], cites) == 0.5
    assert M.citation_precision(["2511.11305", "2512.99999"], cites) == 1.0
    assert M.citation_validity(cites, SOURCES) == 0.5
    assert M.citation_validity([cite(1, "t-abc123")], SOURCES) == 1.0


def test_fact_recall_and_question_metrics():
    q = question(must=["2511.10962"], facts=[r"0\.843", r"0\.81", r"(?i)qauc"])
    a = answer("LEMUR reduced query change rate decay by 0.843% [1].", [cite(1, "2511.10962", support=0.8)],
               [src(1, "2511.10962", "LEMUR")])
    m = M.question_metrics(q, a)
    assert m["fact_recall"] == pytest.approx(1 / 3)
    assert m["citation_recall"] == 1.0 and m["citation_precision"] == 1.0 and m["citation_validity"] == 1.0
    assert m["abstention_accuracy"] == 1.0 and m["language_match"] == 1.0
    assert m["support"] == pytest.approx(0.8) and m["latency_ms"] == 100.0


def test_abstention_accuracy_both_ways():
    unans = question(answerable=False, kind="unanswerable")
    assert M.question_metrics(unans, answer("CANNOT_ANSWER", abstained=True))["abstention_accuracy"] == 1.0
    assert M.question_metrics(unans, answer("It scores 30 BLEU [1]."))["abstention_accuracy"] == 0.0
    assert M.question_metrics(unans, answer("CANNOT_ANSWER: not in the papers"))["abstention_accuracy"] == 1.0
    ans = question(must=["2511.11305"])
    assert M.question_metrics(ans, answer("x", abstained=True))["abstention_accuracy"] == 0.0


def test_answerable_only_metrics_skip_unanswerable():
    m = M.question_metrics(question(gold=["2512.02474"], answerable=False, kind="unanswerable"),
                           answer("CANNOT_ANSWER", abstained=True, sources=SOURCES))
    for k in ("hit@5", "mrr", "ndcg@10", "citation_recall", "fact_recall"):
        assert m[k] is None
    assert m["citation_precision"] is None  # no citations


def test_language_detection():
    assert M.detect_lang("LEMUR使查询变更率衰减减少0.843%，QAUC提升0.81% [1]。") == "zh"
    assert M.detect_lang("LEMUR reduces the query change rate decay by 0.843% [1].") == "en"
    assert M.detect_lang("The memory bank (记忆库) accumulates representations [2].") == "en"
    assert M.detect_lang("[1]") == "none"
    assert M.question_metrics(question(lang="zh", answerable=False, kind="unanswerable"),
                              answer("CANNOT_ANSWER", abstained=True))["language_match"] is None
    assert M.question_metrics(question(lang="zh", answerable=False, kind="unanswerable"),
                              answer("The papers do not say.", abstained=True))["language_match"] == 0.0
    q = question(must=["x"], lang="zh")
    assert M.question_metrics(q, answer("It was deployed in Douyin Search [1]."))["language_match"] == 0.0


def test_aggregate_means_and_latency_percentiles():
    per = [{"hit@5": 1.0, "fact_recall": None, "latency_ms": 10.0},
           {"hit@5": 0.0, "fact_recall": 0.5, "latency_ms": 30.0},
           {"hit@5": None, "fact_recall": 1.0, "latency_ms": 20.0}]
    agg = M.aggregate(per)
    assert agg["hit@5"] == 0.5 and agg["fact_recall"] == 0.75
    assert agg["latency_p50_ms"] == 20.0 and agg["latency_p95_ms"] == pytest.approx(29.0)
    assert agg["questions"] == 3.0
    assert M.percentile([], 50) is None
