"""merge_papers: one record per paper, order independence, ID-less linking, paper_hash."""
from __future__ import annotations

import random
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from rag.merge import merge_papers, paper_hash
from rag.types import Paper, Source

SAMPLE = Path(__file__).resolve().parents[1] / "rag" / "data" / "sample"


def _seed(prefix: str) -> Path:
    return next(SAMPLE.glob(f"{prefix}_*.txt"))


def _seed004_abstract(arxiv_id: str) -> str:
    """The abstract that precedes `arXiv:<id>` in seed 004 (hand extraction for fixtures)."""
    text = _seed("004").read_text(encoding="utf-8")
    lines = text.splitlines()
    i = next(n for n, l in enumerate(lines) if f"arXiv:{arxiv_id}" in l)
    before = lines[i].split("arXiv:")[0]
    if not before:
        before = lines[i - 1]
    return before.split("arXiv:")[0] if "arXiv:" not in before else before


def _mmq_summary() -> tuple[str, str]:
    text = _seed("003").read_text(encoding="utf-8")
    m = re.search(r"- (MMQ: [^\[]+?) \[[\d.]+\]\n(.+?)\narXiv Detail", text, re.S)
    return m.group(1), m.group(2)


S001 = Source(file="/d/001_855b5c13d526e93a.txt", date="2025-11-20", format="table", line=11)
S002 = Source(file="/d/002_7f922d0f53d69eef.txt", date=None, format="cs_digest", line=64)
S000 = Source(file="/d/000_a9870319f13a72d6.txt", date="2025-12-04", format="table", line=5)
S003 = Source(file="/d/003_ed18ccf4c4a608f6.txt", date=None, format="paper_page", line=1)
S003R = Source(file="/d/003_ed18ccf4c4a608f6.txt", date=None, format="paper_page", line=24)
S004 = Source(file="/d/004_a9a4de1056d15801.txt", date=None, format="abstract_dump", line=2)

MOON_ABS = ("We introduce MOON, our comprehensive set of sustainable iterative practices for multimodal "
            "representation learning for e-commerce applications. MOON has already been fully deployed "
            "across all stages of Taobao search advertising system, including retrieval, relevance, ranking, "
            "and so on.")
MOON_TITLE = "MOON Embedding: Multimodal Representation Learning for E-commerce Search Advertising"
MOON_ZH = "MOON是一个用于电商多模态表示学习的可持续迭代实践框架，已在淘宝搜索广告系统中全面部署。"


def moon_records() -> list[Paper]:
    a = Paper(paper_id="2511.11305", arxiv_id="2511.11305", title=MOON_TITLE, abstract=MOON_ABS,
              authors=("Chenghan Fu", "Daoze Zhang"), sources=(S001,))
    b = Paper(paper_id="2511.11305", arxiv_id="2511.11305", title=MOON_TITLE, abstract=MOON_ABS,
              tldr_zh=MOON_ZH, method_zh="采用三阶段训练范式。", categories=("cs.IR",),
              authors=("Chenghan Fu", "Daoze Zhang", "Yukang Lin"), sources=(S002,))
    other = Paper(paper_id="2508.11999", arxiv_id="2508.11999",
                  title="MOON: Generative MLLM-based Multimodal Representation Learning for E-commerce "
                        "Product Understanding",
                  abstract="With the rapid advancement of e-commerce, exploring general representations "
                           "rather than task-specific ones has attracted increasing research attention.",
                  sources=(replace(S001, line=13),))
    return [a, b, other]


def qbert_records() -> list[Paper]:
    abstract = ("Sequential recommendation plays a critical role in modern online platforms. "
                "We validate our model on public Amazon benchmarks and demonstrate that Q-Bert4Rec "
                "significantly outperforms many strong existing methods, confirming the effectiveness of "
                "semantic tokenization for multimodal sequential recommendation.")
    title = "Q-BERT4Rec: Quantized Semantic-ID Representation Learning for Multimodal Recommendation"
    t000 = Paper(paper_id="2512.02474", arxiv_id="2512.02474", title=title, abstract=abstract,
                 authors=("Haofeng Huang", "Ling Gai"), sources=(S000,))
    t003 = Paper(paper_id="2512.02474", arxiv_id="2512.02474v1", title=title, abstract=abstract,
                 tldr_en="We propose Q-Bert4Rec, a sequential recommendation framework that unifies "
                         "semantic representation and quantized modeling.",
                 authors=("Haofeng Huang", "Ling Gai"), published="2025-12-02", sources=(S003,))
    return [t000, t003]


def mmq_records() -> list[Paper]:
    title, summary = _mmq_summary()
    related = Paper(paper_id="t-mmqmmqmmq", title=title, tldr_en=summary.replace("<n>", "\n"),
                    related_to="2512.02474", published="2025-08-21", sources=(S003R,))
    abstract = _seed004_abstract("2508.15281")
    dump = Paper(paper_id="2508.15281", arxiv_id="2508.15281", title=abstract.split(". ")[0][:80],
                 title_derived=True, abstract=abstract, sources=(S004,))
    return [related, dump]


def by_id(papers: list[Paper]) -> dict[str, Paper]:
    return {p.paper_id: p for p in papers}


def test_moon_embedding_merged_from_two_digests():
    out = by_id(merge_papers(moon_records()))
    moon = out["2511.11305"]
    assert len([p for p in out.values() if p.paper_id == "2511.11305"]) == 1
    assert {s.file.rsplit("/", 1)[1][:3] for s in moon.sources} == {"001", "002"}
    assert sorted((s.date or "") for s in moon.sources) == ["", "2025-11-20"]
    assert moon.tldr_zh == MOON_ZH and moon.abstract == MOON_ABS
    assert moon.method_zh == "采用三阶段训练范式。"
    assert moon.authors == ("Chenghan Fu", "Daoze Zhang", "Yukang Lin")  # richer list kept
    assert moon.categories == ("cs.IR",)
    assert moon.date == "2025-11-20"
    assert ("tldr_zh", S002) in moon.provenance and ("abstract", S001) in moon.provenance


def test_two_different_moon_papers_stay_separate():
    out = by_id(merge_papers(moon_records()))
    assert set(out) == {"2511.11305", "2508.11999"}
    assert out["2508.11999"].title.startswith("MOON: Generative")
    assert out["2508.11999"].linked_ids == () and out["2511.11305"].linked_ids == ()


def test_qbert4rec_merged_with_paper_page():
    (q,) = merge_papers(qbert_records())
    assert q.paper_id == "2512.02474"
    assert q.tldr_en.startswith("We propose Q-Bert4Rec")
    assert "Amazon benchmarks" in q.abstract
    assert {s.file for s in q.sources} == {S000.file, S003.file}
    assert q.arxiv_id == "2512.02474"  # unversioned id preferred
    assert q.published == "2025-12-02"
    assert ("tldr_en", S003) in q.provenance


def test_mmq_related_entry_linked_by_summary_sentences():
    out = merge_papers(mmq_records())
    assert len(out) == 1
    (m,) = out
    assert m.paper_id == "2508.15281" and m.arxiv_id == "2508.15281"
    assert m.title.startswith("MMQ: Multimodal Mixture-of-Quantization Tokenization")
    assert m.title_derived is False
    assert "two-stage framework" in m.tldr_en and "two-stage framework" in m.abstract
    assert m.linked_ids == ("t-mmqmmqmmq",)
    assert m.related_to == "2512.02474"
    assert {s.file for s in m.sources} == {S003R.file, S004.file}
    assert ("title", S003R) in m.provenance and ("abstract", S004) in m.provenance


def test_title_link_with_latex_normalisation():
    ided = Paper(paper_id="2511.11255", arxiv_id="2511.11255",
                 title="Align$^3$GR: Unified Multi-Level Alignment for LLM-based Generative Recommendation",
                 abstract="Large Language Models (LLMs) demonstrate significant advantages.", sources=(S002,))
    idless = Paper(paper_id="t-align", title="Align³GR: Unified Multi-Level Alignment for LLM-based "
                                             "Generative Recommendation",
                   tldr_en="A short note.", sources=(S003R,))
    (m,) = merge_papers([idless, ided])
    assert m.paper_id == "2511.11255" and m.linked_ids == ("t-align",)
    assert m.tldr_en == "A short note."


def test_no_false_link_between_topic_neighbours():
    # Seed 003's related "Progressive Semantic Residual Quantization ..." shares topic words
    # (multimodal, semantic IDs, recommendation) with MMQ's abstract but is a different paper.
    text = _seed("003").read_text(encoding="utf-8")
    m = re.search(r"- (Progressive Semantic[^\[]+?) \[[\d.]+\]\n(.+?)\narXiv Detail", text, re.S)
    neighbour = Paper(paper_id="t-psrq", title=m.group(1), tldr_en=m.group(2).replace("<n>", "\n"),
                      sources=(S003R,))
    dump = mmq_records()[1]
    out = by_id(merge_papers([neighbour, dump]))
    assert set(out) == {"t-psrq", "2508.15281"}
    assert out["2508.15281"].linked_ids == ()


def test_boilerplate_sentence_does_not_link():
    boiler = "Extensive experiments on three real world datasets demonstrate the effectiveness of our method."
    a = Paper(paper_id="2501.00001", arxiv_id="2501.00001", title="Paper A",
              abstract="We study graph recommenders with contrastive views. " + boiler, sources=(S000,))
    b = Paper(paper_id="2501.00002", arxiv_id="2501.00002", title="Paper B",
              abstract="We study cold-start retrieval with adapters. " + boiler, sources=(S001,))
    idless = Paper(paper_id="t-x", title="Paper X", tldr_en=boiler, sources=(S003R,))
    out = by_id(merge_papers([a, b, idless]))
    assert set(out) == {"2501.00001", "2501.00002", "t-x"}


def test_short_title_only_match_needs_exact_normalised_title():
    ided = Paper(paper_id="2501.00003", arxiv_id="2501.00003", title="MOON", sources=(S000,))
    idless = Paper(paper_id="t-moon2", title="MOON 2", sources=(S003R,))
    assert {p.paper_id for p in merge_papers([ided, idless])} == {"2501.00003", "t-moon2"}


@pytest.mark.parametrize("seed", range(5))
def test_merge_is_order_independent(seed):
    recs = moon_records() + qbert_records() + mmq_records()
    # conflicting values: the choice must not depend on input order
    recs.append(Paper(paper_id="2512.02474", arxiv_id="2512.02474", title="Q-BERT4Rec",
                      abstract="Short abstract.", sources=(replace(S000, file="/d/zzz.txt"),)))
    expected = merge_papers(recs)
    shuffled = recs[:]
    random.Random(seed).shuffle(shuffled)
    assert merge_papers(shuffled) == expected
    assert [paper_hash(p) for p in merge_papers(shuffled)] == [paper_hash(p) for p in expected]


def test_longer_text_and_real_title_win():
    short = Paper(paper_id="2501.1", arxiv_id="2501.1", title="derived first sentence", title_derived=True,
                  abstract="Full abstract. With two sentences.", sources=(S000,))
    longer = Paper(paper_id="2501.1", arxiv_id="2501.1", title="Real Title",
                   abstract="Full abstract.", sources=(S001,))
    (m,) = merge_papers([short, longer])
    assert (m.title, m.title_derived) == ("Real Title", False)
    assert m.abstract == "Full abstract. With two sentences."


def test_categories_union_main_first():
    a = Paper(paper_id="2501.2", arxiv_id="2501.2", title="T", categories=("cs.IR", "cs.LG"), sources=(S001,))
    b = Paper(paper_id="2501.2", arxiv_id="2501.2", title="T", categories=("cs.CL", "cs.IR"), sources=(S000,))
    (m,) = merge_papers([b, a])
    assert m.categories == ("cs.IR", "cs.LG", "cs.CL")  # S001 (2025-11-20) is earliest


def test_single_record_gets_provenance_and_sorted_sources():
    p = Paper(paper_id="2501.3", arxiv_id="2501.3", title="T", abstract="A.", sources=(S000, S001, S000))
    (m,) = merge_papers([p])
    assert m.sources == (S001, S000)
    assert ("abstract", S001) in m.provenance and ("title", S001) in m.provenance


def test_paper_hash_stable_and_sensitive():
    (m,) = merge_papers(qbert_records())
    h = paper_hash(m)
    assert h == paper_hash(merge_papers(qbert_records())[0]) and len(h) == 40
    assert paper_hash(replace(m, abstract=m.abstract + " More.")) != h
    assert paper_hash(replace(m, tldr_zh="新的摘要。")) != h


def test_merge_speed_20k_records():
    base = [Paper(paper_id=f"25{i:05d}", arxiv_id=f"25{i:05d}", title=f"Paper number {i}",
                  abstract=f"We study problem {i} with method {i % 97}. Results improve by {i % 13} points.",
                  authors=("A B", "C D"), categories=("cs.IR",),
                  sources=(Source(file=f"/d/{i % 50}.jsonl", date="2025-01-01", line=i),))
            for i in range(20000)]
    dups = [replace(p, tldr_zh="中文摘要。", sources=(Source(file="/d/x.md", line=j),))
            for j, p in enumerate(base[:5000])]
    idless = mmq_records()[:1]
    t = time.process_time()  # CPU time: the test box is shared, wall time is noisy
    out = merge_papers(base + dups + idless)
    took = time.process_time() - t
    assert len(out) == 20001
    assert took < 2.0, f"merge of 25k records took {took:.2f}s CPU"


# ---------------------------------------------------------------- the five seeds, through the real parsers

def _seed_records() -> list[Paper]:
    from rag.parse import parse_file

    out = []
    for f in sorted(SAMPLE.glob("*.txt")):
        res = parse_file(f)
        assert not res.errors, res.errors
        out.extend(res.papers)
    return out


def test_seeds_merge_end_to_end():
    recs = _seed_records()
    merged = merge_papers(recs)
    out = by_id(merged)
    assert len(recs) == 39 and len(merged) == 36
    moon = out["2511.11305"]
    assert sorted(Path(s.file).name[:3] for s in moon.sources) == ["001", "002"]
    assert sorted(s.date or "" for s in moon.sources) == ["", "2025-11-20"]
    assert moon.tldr_zh.startswith("MOON是一个用于电商多模态表示学习") and moon.abstract.startswith("We introduce MOON")
    assert out["2508.11999"].title.startswith("MOON: Generative") and not out["2508.11999"].linked_ids
    q = out["2512.02474"]
    assert q.tldr_en.startswith("We propose Q-Bert4Rec") and q.abstract.startswith("Sequential recommendation")
    assert sorted(Path(s.file).name[:3] for s in q.sources) == ["000", "003"]
    mmq = out["2508.15281"]
    assert mmq.title.startswith("MMQ: Multimodal Mixture-of-Quantization") and mmq.title_derived is False
    assert mmq.tldr_en.startswith("We propose Multimodal Mixture-of-Quantization")
    assert mmq.abstract.startswith("Recommender systems traditionally represent items")
    assert len(mmq.linked_ids) == 1 and mmq.linked_ids[0].startswith("t-")
    assert mmq.related_to == "2512.02474"
    # the other 9 related papers of seed 003 are not in any digest: they stay ID-less, unlinked
    idless = [p for p in merged if not p.arxiv_id]
    assert len(idless) == 9 and all(p.related_to == "2512.02474" for p in idless)
    assert sum(len(p.linked_ids) for p in merged) == 1


@pytest.mark.parametrize("seed", range(3))
def test_seeds_merge_order_independent_and_incremental(seed):
    recs = _seed_records()
    expected = merge_papers(recs)
    shuffled = recs[:]
    random.Random(seed).shuffle(shuffled)
    assert merge_papers(shuffled) == expected
    assert merge_papers(expected) == expected  # re-merging merged records changes nothing
    # incremental ingest: merged old records + newly parsed ones == merging everything at once
    k = 10 + 7 * seed
    assert merge_papers(merge_papers(shuffled[:k]) + shuffled[k:]) == expected


def test_incremental_tie_break_uses_value_source():
    # equal-length abstracts: the earliest *value source* wins, whichever batch it arrived in
    a = Paper(paper_id="2501.5", arxiv_id="2501.5", title="T", abstract="short",
              sources=(Source(file="/a", date="2025-01-01"),))
    b = Paper(paper_id="2501.5", arxiv_id="2501.5", title="T", abstract="Longer one B.",
              sources=(Source(file="/b", date="2025-02-01"),))
    c = Paper(paper_id="2501.5", arxiv_id="2501.5", title="T", abstract="Longer one C.",
              sources=(Source(file="/c", date="2025-01-15"),))
    (full,) = merge_papers([a, b, c])
    assert full.abstract == "Longer one C."
    assert merge_papers(merge_papers([a, b]) + [c]) == [full]
