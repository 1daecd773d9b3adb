"""Format detection by content, the abstract-dump splitting heuristics, and rag.text helpers."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from rag.parse import parse_file, parse_text
from rag.parse.abstract_dump import derive_title, split_id_line
from rag.parse.common import date_from_name, is_placeholder, split_authors
from rag.parse.detect import detect_format
from rag.text import (clean_markers, normalize_title, split_sentences, strip_version, title_id,
                      unescape_latex)
from tests.paths import seed

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def _seed(prefix: str) -> str:
    return seed(prefix).read_text(encoding="utf-8")


@pytest.mark.parametrize("prefix,fmt", [("000", "table_report"), ("001", "table_report"),
                                        ("002", "cs_digest"), ("003", "paper_page"),
                                        ("004", "abstract_dump")])
def test_detect_seeds(prefix, fmt):
    assert detect_format(_seed(prefix)) == fmt


def test_detect_corpora_files(shared_dir):
    SHARED = shared_dir
    daily = SHARED / "corpora" / "daily_arxiv_ai_enhanced" / "data"
    assert detect_format((daily / "2026-02-10.md").read_text(encoding="utf-8")) == "cs_digest"
    assert detect_format((daily / "2026-02-10_AI_enhanced_Chinese.jsonl").read_text(encoding="utf-8")) == "jsonl"
    scale = sorted((SHARED / "corpora" / "scale").glob("*.jsonl.gz"))[0]
    assert detect_format(gzip.decompress(scale.read_bytes()).decode("utf-8")) == "jsonl"
    table = SHARED / "corpora" / "arxiv_daily_report_table" / "19-Jun-2026" / "README.md"
    assert detect_format(table.read_text(encoding="utf-8")) == "table_report"


def test_header_only_digests_are_recognised_with_no_papers():
    report = "# arXiv Daily Report - 01-Jan-2026\n\n| Title | Link | abstract | author |\n| --- | --- | --- | --- |\n"
    toc = "<div id=toc></div>\n\n# Table of Contents\n\n- [cs.IR](#cs.IR) [Total: 0]\n"
    for text, fmt in ((report, "table_report"), (toc, "cs_digest")):
        r = parse_text(text, "day.md")
        assert (r.format, r.papers, r.errors) == (fmt, (), ())


def test_detect_by_content_not_name(tmp_path):
    f = tmp_path / "notes.jsonl"  # misleading name: content is a table report
    f.write_text(_seed("000"), encoding="utf-8")
    assert parse_file(f).format == "table_report"


def test_detect_seed004_like_dump_and_fixture():
    dump = ("We study caching for retrieval systems and propose CacheRAG, a layered cache. "
            "Experiments show 2x speed-ups.\narXiv:2601.01234Another abstract starts here and "
            "describes a second method for ranking.\nWWW'26\narXiv:2601.04321\n")
    assert detect_format(dump) == "abstract_dump"
    assert detect_format((DATA / "dump_general_dois.txt").read_text(encoding="utf-8")) == "abstract_dump"


@pytest.mark.parametrize("text", [
    "Just some prose about papers I liked.\nNothing structured here at all, really.\n",
    "# My notes\n\n- item one\n- item two\n",
    "A paragraph that cites arXiv:2301.00001 inline but is not a dump of abstracts at all.\n" * 3
    + "Line two.\nLine three.\nLine four.\nLine five.\nLine six.\nLine seven.\nLine eight.\n"
    + "Line nine.\nLine ten.\nLine eleven.\nLine twelve.\n",
    '["a", "json", "array"]\n',
    '{"some": "json", "without": "paper keys"}\n',
    "| a | b |\n| --- | --- |\n| 1 | 2 |\n",
    "",
])
def test_detect_unknown(text):
    assert detect_format(text) is None


# ------------------------------------------------------------ abstract dump heuristics


@pytest.mark.parametrize("line,expected", [
    ("arXiv:2508.15281Sequential recommendation aims", ("2508.15281", None, "Sequential recommendation aims")),
    ("arXiv:2506.03699 - doi: 10.1145/3711896.3737117Multi-objective embedding-based",
     ("2506.03699", "10.1145/3711896.3737117", "Multi-objective embedding-based")),
    ("arXiv:2506.03699 - doi: 10.1145/3711896.3737117LLMs are rankers",
     ("2506.03699", "10.1145/3711896.3737117", "LLMs are rankers")),
    ("arXiv:2301.00001v2 - doi: 10.1109/TPAMI.2023.3264567Recommender systems",
     ("2301.00001v2", "10.1109/TPAMI.2023.3264567", "Recommender systems")),
    ("arXiv:2302.00002 - doi: 10.18653/v1/2023.acl-long.12In this work",
     ("2302.00002", "10.18653/v1/2023.acl-long.12", "In this work")),
    ("arXiv:2303.00003 - doi: 10.1016/j.neucom.2023.01.001", ("2303.00003", "10.1016/j.neucom.2023.01.001", "")),
    ("arXiv:2404.09531", ("2404.09531", None, "")),
    ("arXiv:1412.12343D scenes are hard", ("1412.1234", None, "3D scenes are hard")),  # 4-digit era
    ("arXiv:hep-th/9901001v2We show", ("hep-th/9901001v2", None, "We show")),
    ("Not an id line", None),
])
def test_split_id_line(line, expected):
    assert split_id_line(line) == expected


def test_general_doi_fixture():
    r = parse_file(DATA / "dump_general_dois.txt")
    assert r.errors == ()
    got = [(p.paper_id, p.title, p.doi, p.comment, p.abstract.split()[0]) for p in r.papers]
    assert got == [
        ("2301.00001", "GraphX", "10.1109/TPAMI.2023.3264567", "IEEE TPAMI 2023", "Graph"),
        ("2302.00002", "RankLLM-Lite", "10.18653/v1/2023.acl-long.12", None, "LLMs"),
        ("2303.00003", "LongRet", "10.1016/j.neucom.2023.01.001", "Findings of ACL 2023, 9 pages", "In"),
    ]
    assert all(p.title_derived for p in r.papers)


def test_dangling_abstract_is_reported_but_kept():
    r = parse_file(DATA / "dump_general_dois.txt")
    from rag.parse import abstract_dump
    text = (DATA / "dump_general_dois.txt").read_text(encoding="utf-8") + "A last abstract we propose FooNet for.\n"
    papers, errors = abstract_dump.parse(text, "x.txt")
    assert len(papers) == len(r.papers) + 1 and papers[-1].arxiv_id is None
    assert papers[-1].paper_id == title_id("FooNet") and errors[0].line == 7


@pytest.mark.parametrize("abstract,title", [
    ("We propose a framework named GPSD (Generative Pretraining) for ranking.", "GPSD"),
    ("To this end, we propose Multimodal Mixture-of-Quantization (MMQ), a two-stage framework.", "MMQ"),
    ("Here we introduce REG4Rec, a model. We also propose Preference Alignment (PARS).", "REG4Rec"),
    ("This paper presents a novel attention mechanism. It is efficient.", "A novel attention mechanism"),
    ("Our approach, termed Oblique-MERF, surpasses baselines.", "Oblique-MERF"),
    ("Ranking is studied here in depth with many careful experiments on many datasets.",
     "Ranking is studied here in depth with many careful experiments…"),
])
def test_derive_title(abstract, title):
    assert derive_title(abstract) == title


# ------------------------------------------------------------------------- rag.text


def test_normalize_title_and_title_id():
    a, b, c = "Align$^3$GR: Unified", "Align³GR: Unified", "Align$^{3}$GR -- unified!"
    assert normalize_title(a) == normalize_title(b) == normalize_title(c) == "align3gr unified"
    assert title_id(a) == title_id(b) and title_id(a).startswith("t-") and len(title_id(a)) == 14
    assert normalize_title("多模态推荐：LLM 综述") == "多模态推荐 llm 综述"
    assert normalize_title("  ＬＬＭ\u3000Rec  ") == "llm rec"  # NFKC full-width
    assert title_id("A") != title_id("B")


def test_strip_version():
    assert strip_version("2512.02474v1") == "2512.02474"
    assert strip_version("2512.02474") == "2512.02474"
    assert strip_version("hep-th/9901001v2") == "hep-th/9901001"
    assert strip_version("math.GT/0309136v12") == "math.GT/0309136"


def test_split_sentences_en_zh():
    assert split_sentences("We use e.g. BERT. It works! Does it? Yes.") == [
        "We use e.g. BERT.", "It works!", "Does it?", "Yes."]
    assert split_sentences("这是第一句。这是第二句！第三句？English follows. Done.") == [
        "这是第一句。", "这是第二句！", "第三句？", "English follows.", "Done."]
    assert split_sentences("One.<n>Two<n>Three.") == ["One.", "Two Three."]  # <n> inside a sentence
    assert split_sentences("Line one\nLine two.") == ["Line one", "Line two."]
    assert split_sentences("") == []


def test_clean_markers():
    assert clean_markers("A b.<n>C d.<n> E f.") == "A b. C d. E f."
    assert clean_markers("no stop<n>next") == "no stop next"  # inside a sentence: a space, not a break
    assert clean_markers("<n>x<n>") == "x"


def test_small_helpers():
    assert unescape_latex(r"27\% and R\&D a\_b") == "27% and R&D a_b"
    assert unescape_latex(r"$O(L)$ stays") == r"$O(L)$ stays"
    assert split_authors("A (X, Y), B,, C ,") == ("A (X, Y)", "B", "C")
    assert date_from_name("/x/2026-01-05_AI_enhanced_Chinese.jsonl.gz") == "2026-01-05"
    assert date_from_name("/2026-01-05/notes.md") is None  # only the file name counts
    for p in ("Error", "", "N/A", "Skip", "Summary generation failed", "Method extraction failed",
              "Motivation analysis unavailable", "API quota exceeded", "Rate limit reached", "摘要生成失败"):
        assert is_placeholder(p), p
    for ok in ("该方法提出了一个新的框架，用于检测错误并纠正。", "a clear mental map of Vision-Language Models",
               "提出LEMUR系统", "x" * 400):
        assert not is_placeholder(ok), ok
