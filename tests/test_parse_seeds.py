"""Every seed digest parses into the exact records (fields, not just counts)."""
from __future__ import annotations

from pathlib import Path

import pytest

from rag.parse import parse_file
from rag.text import title_id
from rag.types import Source

from tests.paths import seed  # the bundled sample: the five seeds, byte-identical to ../shared/seeds


@pytest.fixture(scope="module")
def parsed():
    return {p: parse_file(seed(p)) for p in ("000", "001", "002", "003", "004")}


def by_id(result):
    return {p.paper_id: p for p in result.papers}


def test_all_seeds_parse_without_errors(parsed):
    formats = {k: (r.format, len(r.papers), r.errors) for k, r in parsed.items()}
    assert formats == {"000": ("table_report", 4, ()), "001": ("table_report", 8, ()),
                       "002": ("cs_digest", 6, ()), "003": ("paper_page", 11, ()),
                       "004": ("abstract_dump", 10, ())}


# ------------------------------------------------------------------------- table_report


def test_seed000_rows(parsed):
    r = parsed["000"]
    assert [p.paper_id for p in r.papers] == ["2512.02474", "2512.02502", "2512.03025", "2512.02425"]
    lore = by_id(r)["2512.03025"]
    assert lore.title == "LORE: A Large Generative Model for Search Relevance"
    assert lore.arxiv_id == "2512.03025" and lore.url == "https://arxiv.org/abs/2512.03025"
    assert lore.authors[0] == "Chenji Lu (Alibaba Group)"
    assert lore.authors[-1] == "Bo Zheng (Alibaba Group)" and len(lore.authors) == 12
    assert lore.abstract.startswith("Achievement. We introduce LORE")
    assert "+27% improvement" in lore.abstract  # \% unescaped
    assert lore.abstract.endswith("for other vertical domains.")
    assert lore.sources == (Source(file=str(seed("000")), date="2025-12-04",
                                   format="table_report", line=7),)
    assert lore.date == "2025-12-04"
    assert {f for f, _ in lore.provenance} == {"title", "authors", "abstract"}
    q = by_id(r)["2512.02474"]
    assert q.authors == ("Haofeng Huang", "Ling Gai")
    assert q.title.startswith("Q-BERT4Rec: Quantized Semantic-ID")


def test_seed001_rows(parsed):
    r = parsed["001"]
    ids = [p.paper_id for p in r.papers]
    assert ids[:4] == ["2511.14182", "2511.14221", "2511.14403", "2508.03628"]
    assert "2511.11305" in ids and "2508.11999" in ids
    assert all(p.sources[0].date == "2025-11-20" for p in r.papers)
    web = r.papers[0]
    assert web.title == "WebRec: Enhancing LLM-based Recommendations with Attention-guided RAG from Web"
    assert web.authors == ("Zihuai Zhao", "Yujuan Ding", "Wenqi Fan", "Qing Li")
    assert web.abstract.endswith("in recommendation scenarios.")


# ---------------------------------------------------------------------------- cs_digest


def test_seed002_entries(parsed):
    r = parsed["002"]
    assert [p.paper_id for p in r.papers] == [
        "2511.10962", "2511.11010", "2511.11172", "2511.11255", "2511.11305", "2511.11370"]
    lemur = r.papers[0]
    assert lemur.title == "LEMUR: Large scale End-to-end MUltimodal Recommendation"
    assert lemur.authors[:2] == ("Xintian Han", "Honggang Chen") and len(lemur.authors) == 17
    assert lemur.categories == ("cs.IR",)
    assert lemur.tldr_zh.startswith("LEMUR是首个从原始数据端到端训练的大规模多模态推荐系统")
    assert "抖音搜索" in lemur.tldr_zh
    assert lemur.motivation_zh.startswith("传统基于ID的推荐系统")
    assert lemur.method_zh.startswith("提出LEMUR系统")
    assert lemur.result_zh.startswith("在抖音搜索部署一个月后")
    assert lemur.conclusion_zh.startswith("结果验证了端到端多模态推荐")
    assert lemur.abstract.startswith("Traditional ID-based recommender systems")
    assert lemur.abstract.endswith("in real-world industrial scenarios.")
    assert lemur.sources == (Source(file=str(seed("002")), date=None, format="cs_digest", line=12),)
    assert {f for f, _ in lemur.provenance} == {
        "title", "authors", "abstract", "tldr_zh", "motivation_zh", "method_zh", "result_zh",
        "conclusion_zh", "categories"}


def test_seed002_latex_title_and_multiparagraph_abstract(parsed):
    r = by_id(parsed["002"])
    align = r["2511.11255"]
    assert align.title == "Align$^3$GR: Unified Multi-Level Alignment for LLM-based Generative Recommendation"
    assert align.paper_id == "2511.11255"
    assert title_id(align.title) == title_id(
        "Align³GR: Unified Multi-Level Alignment for LLM-based Generative Recommendation")
    srlf = r["2511.11370"]
    assert "\n" in srlf.abstract  # the second paragraph is kept
    assert srlf.abstract.split("\n")[1].strip().startswith("To address these limitations")
    assert srlf.abstract.endswith("sequential recommendation tasks.")
    assert "</details>" not in srlf.abstract


# --------------------------------------------------------------------------- paper_page


def test_seed003_main_paper(parsed):
    main = parsed["003"].papers[0]
    assert main.paper_id == "2512.02474" and main.arxiv_id == "2512.02474"
    assert main.title == "Q-BERT4Rec: Quantized Semantic-ID Representation Learning for Multimodal Recommendation"
    assert main.authors == ("Haofeng Huang", "Ling Gai")
    assert main.published == "2025-12-02"
    assert main.tldr_en == (
        "We propose Q-Bert4Rec, a sequential recommendation framework that unifies semantic "
        "representation and quantized modeling. We validate our model on public Amazon benchmarks "
        "and demonstrate that Q-Bert4Rec significantly outperforms many strong existing methods. "
        "Our source code will be publicly available on GitHub after publishing.")
    assert "<n>" not in main.tldr_en
    assert main.abstract.startswith("Sequential recommendation plays a critical role")
    assert main.abstract.endswith("after publishing.")
    assert dict(main.extra) == {"score": "5.699357781063521",
                                "license": "http://creativecommons.org/licenses/by/4.0/"}
    assert main.related_to is None


RELATED = [  # (title, published, first words of the summary)
    ("Point Cloud Quantization through Multimodal Prompting for 3D Understanding", "2025-11-15",
     "We propose a simple multimodal prompting-driven quantization framework"),
    ("Progressive Semantic Residual Quantization for Multimodal-Joint Interest Modeling in Music "
     "Recommendation", "2025-08-28", "We propose a novel multimodal recommendation framework"),
    ("MMQ: Multimodal Mixture-of-Quantization Tokenization for Semantic ID Generation and User "
     "Behavioral Adaptation", "2025-08-21", "We propose Multimodal Mixture-of-Quantization (MMQ)"),
    ("Learning Item Representations Directly from Multimodal Features for Effective Recommendation",
     "2025-05-08", "multimodal recommender systems predominantly leverage"),
    ("BBQRec: Behavior-Bind Quantization for Multi-Modal Sequential Recommendation", "2025-04-09",
     "We propose a Behavior-Bind multi-modal Quantization"),
    ("Learning Multi-Aspect Item Palette: A Semantic Tokenization Framework for Generative "
     "Recommendation", "2024-09-11", "We introduce LAMIA"),
    ("MMGRec: Multimodal Generative Recommendation with Transformer Model", "2024-04-25",
     "MMGRec aims to introduce a generative paradigm"),
    ("Parallel Decoding via Hidden Transfer for Lossless Large Language Model Acceleration",
     "2024-04-18", "We propose a novel parallel decoding approach"),
    ("MISSRec: Pre-training and Transferring Multi-modal Interest-aware Sequence Representation for "
     "Recommendation", "2023-08-22", "We propose MISSRec"),
    ("Improve Variational Autoencoder for Text Generationwith Discrete Latent Bottleneck",
     "2020-04-22", "Variational autoencoders (VAEs) are essential tools"),
]


def test_seed003_related_papers(parsed):
    related = parsed["003"].papers[1:]
    got = [(p.title, p.published) for p in related]
    assert got == [(t, d) for t, d, _ in RELATED]
    for p, (title, _, start) in zip(related, RELATED):
        assert p.tldr_en.startswith(start), p.title
        assert p.related_to == "2512.02474"
        assert p.arxiv_id is None and p.paper_id == title_id(title)
        assert "<n>" not in p.tldr_en and "arXiv Detail" not in p.tldr_en
        assert "This list is automatically generated" not in p.tldr_en
        assert p.sources[0].format == "paper_page" and p.sources[0].date is None
        assert p.date == p.published  # no digest date: the submission date is the date
    mmq = related[2]
    assert mmq.tldr_en == (
        "We propose Multimodal Mixture-of-Quantization (MMQ), a two-stage framework that trains a "
        "novel multimodal tokenizer. MMQ unifies multimodal synergy, specificity, and behavioral "
        "adaptation, providing a scalable and versatile solution for both generative retrieval and "
        "discriminative ranking tasks.")
    assert dict(mmq.extra) == {"score": "16.81485354427923"}
    mmg = related[6]  # older entry: one sentence per line
    assert mmg.tldr_en.endswith("based on historical interaction sequences.")
    assert "Graph CF-RQVAE" in mmg.tldr_en
    vae = related[9]
    assert vae.tldr_en.endswith("in a more compact latent space.")
    assert {f for f, _ in vae.provenance} == {"title", "tldr_en", "published"}
    assert [p.sources[0].line for p in related] == [11, 13, 15, 17, 19, 21, 23, 27, 30, 35]


# ------------------------------------------------------------------------ abstract_dump

DUMP = [  # (arxiv id, derived title, comment, doi, first words of abstract)
    ("2508.15281", "MMQ", None, None, "Recommender systems traditionally represent items"),
    ("2508.15308", "REG4Rec", None, None, "Sequential recommendation aims to predict"),
    ("2508.04266", "ShoppingBench", "submit to AAAI2026", None, "Existing benchmarks in e-commerce"),
    ("2506.03699", "GPSD", "KDD'25", "10.1145/3711896.3737117", "Discriminative recommendation tasks"),
    ("2504.12920", "CSMF",
     "10 pages, 8 figures, Proceedings of the 48th International ACM SIGIR Conference on Research "
     "and Development in Information Retrieval (SIGIR '25), July 13--18, 2025, Padua, Italy",
     "10.1145/3726302.3729939", "Multi-objective embedding-based retrieval (EBR)"),
    ("2503.02542", "A novel attention mechanism", None, None, "In the context of burgeoning user"),
    ("2503.01469", "HeterRec", None, None, "Sequential recommendation systems leveraging transformer"),
    ("2502.16077", "ESANS", "10 pages, 6 figures, Proceedings of the ACM Web Conference 2025",
     "10.1145/3696410.3714600", "Industrial recommendation systems typically involve"),
    ("2410.04402", "DeformRF",
     "Accepted by ACM Multimedia 2024. Project Page: https://ustc3dv.github.io/DeformRF/", None,
     "While neural radiance fields (NeRF)"),
    ("2404.09531", "Oblique-MERF", None, None, "Neural implicit fields have established"),
]


def test_seed004_id_attribution(parsed):
    papers = parsed["004"].papers
    got = [(p.paper_id, p.title, p.comment, p.doi) for p in papers]
    assert got == [(i, t, c, d) for i, t, c, d, _ in DUMP]
    for p, (aid, _, _, _, start) in zip(papers, DUMP):
        assert p.abstract.startswith(start), aid
        assert p.arxiv_id == aid and p.title_derived is True
        assert "arXiv:" not in p.abstract and "doi:" not in p.abstract
        assert p.comment is None or p.comment not in p.abstract
    assert papers[0].abstract.endswith("generative retrieval and discriminative ranking tasks.")
    assert "proposed method outperforms current state-of-the-art solutions." in papers[5].abstract
    assert papers[8].abstract.endswith("Project page: https://ustc3dv.github.io/DeformRF/")
    assert [p.sources[0].line for p in papers] == [1, 2, 3, 5, 7, 9, 10, 11, 13, 15]
    gpsd = papers[3]
    assert {f for f, _ in gpsd.provenance} == {"title", "abstract", "comment", "doi"}
