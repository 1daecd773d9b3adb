"""Citation parsing and resolution (rag.cite)."""
from __future__ import annotations

import pytest

from rag.cite import MAX_RANGE, build_citations, overlap, parse_citations
from tests.fakes import LEMUR_ABS, LEMUR_RESULT_ZH, douyin_hits, rqvae_hits


def numbers(text: str) -> list[list[int]]:
    return [nums for _, nums in parse_citations(text)]


@pytest.mark.parametrize("text, expected", [
    ("LEMUR wins [1].", [[1]]),
    ("Both do [1, 2].", [[1, 2]]),
    ("A range [1-3].", [[1, 2, 3]]),
    ("Mixed [1,3-4].", [[1, 3, 4]]),
    ("中文引用【2】。", [[2]]),
    ("Chinese comma [1，2].", [[1, 2]]),
    ("Marker after the period. [2]", [[2]]),
])
def test_parse_marker_forms(text, expected):
    assert numbers(text) == expected


@pytest.mark.parametrize("text", [
    "See [Total: 6] in the table of contents.",
    "The paper arXiv [2508.15281] is cited.",
    "Published in [2020] at a venue.",
    "（1）枚举不是引用。",
    "An unclosed bracket [1, 2 never ends",
    "",
])
def test_parse_ignores_non_markers(text):
    assert numbers(text) == []


def test_parse_keeps_sentences_apart():
    got = parse_citations("LEMUR is deployed in Douyin [1]. MOON is deployed in Taobao [2].")
    assert [s for s, _ in got] == ["LEMUR is deployed in Douyin [1].", "MOON is deployed in Taobao [2]."]


def test_build_resolves_to_sources_and_drops_junk():
    hits = douyin_hits()
    text = ("LEMUR reduced query change rate decay by 0.843% in Douyin Search [2]. Junk [0] and [99]. "
            "Wild range [1-1000]. Unclosed [3")
    cites, dropped = build_citations(text, hits)
    assert [c.n for c in cites] == [2]
    c = cites[0]
    assert (c.paper_id, c.arxiv_id, c.title) == (hits[1].paper_id, "2511.10962", hits[1].title)
    assert c.url == "https://arxiv.org/abs/2511.10962"
    assert c.passage == LEMUR_ABS and c.field == "abstract"  # the English passage supports the English claim
    assert 0.5 < c.support <= 1.0
    assert set(dropped) == {0, 99, 1, 1000}  # 1 only appears as the start of the junk range
    assert not {c.n for c in cites} & set(dropped)
    both, dropped2 = build_citations("Q-BERT4Rec uses residual vector quantization [1] [0] [99] [1-1000].", hits)
    assert [c.n for c in both] == [1] and set(dropped2) == {0, 99, 1000}


def test_every_citation_is_a_retrieved_source():
    hits = rqvae_hits()
    text = " ".join(f"Claim {n} [{n}]." for n in range(0, 12))
    cites, dropped = build_citations(text, hits)
    ids = {h.paper_id for h in hits}
    assert cites and all(c.paper_id in ids for c in cites)
    assert sorted(c.n for c in cites) == list(range(1, len(hits) + 1))
    assert set(dropped) == {0} | set(range(len(hits) + 1, 12))


def test_range_cap():
    hits = rqvae_hits()
    cites, dropped = build_citations(f"Too wide [1-{MAX_RANGE + 1}].", hits)
    assert cites == () and dropped == (1, MAX_RANGE + 1)
    cites, _ = build_citations("Reversed [3-1].", hits)
    assert [c.n for c in cites] == [1, 2, 3]


def test_support_chinese_bigrams_and_best_passage():
    hits = douyin_hits()
    cites, _ = build_citations("LEMUR在抖音搜索部署后QAUC提升0.81%【2】", hits)
    assert cites[0].passage == LEMUR_RESULT_ZH and cites[0].field == "result_zh"
    assert cites[0].support > 0.8
    unsupported, _ = build_citations("这篇论文研究天气预报和股票价格【2】", hits)
    assert unsupported[0].support < 0.2


def test_overlap_bounds():
    assert overlap("", "anything") == 0.0
    assert overlap("LEMUR QAUC Douyin", "lemur improves qauc in douyin") == 1.0
    assert overlap("LEMUR BLEU WMT14 Douyin", "lemur improves qauc in douyin") == 0.5
    assert overlap("LEMUR QAUC", "lemur improves qauc") == 2 / 3  # short sentences are capped


def test_contentless_citing_sentence_has_low_support():
    cites, _ = build_citations("1. [1]\n2. [2]", rqvae_hits())
    assert [c.n for c in cites] == [1, 2] and all(c.support == 0.0 for c in cites)
    short, _ = build_citations("Q-BERT4Rec [1].", rqvae_hits())
    assert 0 < short[0].support <= 1 / 3


def test_metadata_lines_are_supported_by_the_hit_itself():
    from tests.fakes import hit, passage

    with_id = hit(1, "REG4Rec: Reasoning-Enhanced Generation", "2508.15308", passage("REG4Rec reasons."))
    cites, _ = build_citations("- REG4Rec (2508.15308): arXiv ID: 2508.15308 [1]", [with_id])
    assert cites[0].support == 1.0
    no_id = hit(1, "MMGRec: Multimodal Generative Recommendation", None, passage("Submitted: 2024-04-25."))
    cites, _ = build_citations("- MMGRec (no arXiv ID): Submitted: 2024-04-25 [1]", [no_id])
    assert cites[0].support == 1.0
