"""Hard line wraps are undone at parse time (rag.text.unwrap), in every parser and prose field.

The shared-data test parses every file of ../shared/corpora (daily_arxiv_ai_enhanced .md and
.jsonl, all 119 scale days, arxiv_daily_report_table) and ../shared/seeds and checks that no stored
title or prose field keeps a line break inside a sentence. "Inside a sentence" is defined here,
independently of the code under test: a newline between two non-blank lines where the first line
does not end in sentence-final punctuation (. ! ? 。 ！ ？ …, optionally followed by a closing quote
or bracket) and the second line does not start a list item (1. 2) (3) - ...) after a line ending in
: ; ： ； or in Chinese text. Blank-line paragraph breaks are allowed; titles keep no newline at all.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from rag.parse import parse_file, parse_text
from rag.parse.common import PROSE_FIELDS, unwrap_paper
from rag.text import unwrap
from rag.types import Paper
from tests.paths import SEEDS, SHARED, need_shared

CORPORA = SHARED / "corpora"

_FINAL = re.compile(r"[.!?。！？…][\"'”’)\]」』）]*$")
_ITEM = re.compile(r"(?:\d{1,2}[.)．、](?!\d)|[（(](?:\d{1,2}|[ivx]{1,4}|[a-z])[)）]|[-*•·–]\s)")
_ITEM_LEAD = re.compile(r"(?:[:;：；]|[\u3400-\u9fff\u3000-\u303f\uff00-\uffef])$")


def wraps_inside_sentences(text: str) -> list[str]:
    """The line breaks of ``text`` that fall inside a sentence (see the module docstring)."""
    lines = [ln.strip() for ln in text.split("\n")]
    return [f"{a[-40:]!r} | {b[:40]!r}" for a, b in zip(lines, lines[1:])
            if a and b and not _FINAL.search(a) and not (_ITEM.match(b) and _ITEM_LEAD.search(a))]


# ---------------------------------------------------------------- unit tests of unwrap

ARXIV = ("We study model collapse in recursive training, where model\n"
         "performance degrades over generations (e.g. walking in spiders vs.\n"
         "horses). Prior work is limited.\n"
         "  In this paper, we propose a confidence-aware loss that downweights\n"
         "high-confidence predictions. Code: https://github.com/x/y.\n"
         "  We release it.")


def test_english_hard_wraps_joined_and_indented_paragraph_starts_kept():
    out = unwrap(ARXIV)
    assert out == ("We study model collapse in recursive training, where model performance degrades over "
                   "generations (e.g. walking in spiders vs. horses). Prior work is limited.\n"
                   "In this paper, we propose a confidence-aware loss that downweights high-confidence "
                   "predictions. Code: https://github.com/x/y.\nWe release it.")
    assert not wraps_inside_sentences(out)


def test_break_after_a_sentence_end_in_wrapped_text_is_a_wrap_not_a_paragraph():
    # arXiv marks a paragraph by indenting its first line; an unindented line after a full stop
    # in a hard-wrapped text is just where the wrap fell.
    text = "The first sentence ends here.\nThe second one is wrapped\nin the middle."
    assert unwrap(text) == "The first sentence ends here. The second one is wrapped in the middle."


def test_paragraph_breaks_kept_when_nothing_is_wrapped():
    table_row = "First paragraph of a long abstract ends.\nA second paragraph follows.\nSource Code: x"
    assert unwrap(table_row) == table_row.replace("x", "x")
    assert unwrap("Para one.\n\n\n  Para two.") == "Para one.\n\nPara two."
    assert unwrap("Heading without stop\n\nnext paragraph") == "Heading without stop\n\nnext paragraph"


def test_chinese_joined_without_space_and_list_items_kept():
    assert unwrap("本文提出一种新的检索\n增强生成方法，在多个基准上\n取得最优结果。") == \
        "本文提出一种新的检索增强生成方法，在多个基准上取得最优结果。"
    assert unwrap("我们使用\nGPT-4模型\n进行评估。") == "我们使用GPT-4模型进行评估。"
    items = "方法包括：\n1. 构建数据集\n2. 训练模型（基于BERT）\n3. 评估。"
    assert unwrap(items) == items
    zh_mixed = "1. 使用多模态大模型估计\n材料参数\n2. 提出运动蒸馏损失。"  # a wrap inside item 1
    assert unwrap(zh_mixed) == "1. 使用多模态大模型估计材料参数\n2. 提出运动蒸馏损失。"


@pytest.mark.parametrize("wrapped,joined", [
    ("cross-\nmodel reruns of it", "cross-model reruns of it"),  # compound broken at its hyphen
    ("informal-to-\n  formal direction", "informal-to-formal direction"),
    ("GPT-\n4 and more", "GPT-4 and more"),
    ("traditional voxel-\nor mesh-based methods", "traditional voxel- or mesh-based methods"),  # suspended
    ("six text-to-image GAN-\nand diffusion-based models", "six text-to-image GAN- and diffusion-based models"),
    ("long-context limitations --\ncuriously, we", "long-context limitations -- curiously, we"),  # dashes
    ("NLP has evolved -\nhighlighting trends", "NLP has evolved - highlighting trends"),
    ("two techniques-\nStructured Token Augmentation", "two techniques- Structured Token Augmentation"),
])
def test_hyphen_at_line_end_is_kept(wrapped, joined):
    assert unwrap(wrapped) == joined


def test_titles_become_one_line():
    assert unwrap("Marco-Voice Technical\n  Report", one_line=True) == "Marco-Voice Technical Report"
    assert unwrap("A Survey.\n\nPart Two", one_line=True) == "A Survey. Part Two"


@pytest.mark.parametrize("text", [ARXIV, "a\nb", "x.\n\n\ny", "本文\n提出。\n1. 甲\n2. 乙", "cross-\nmodel",
                                  "  lead\n\n", "one.\n  - item\n  - item two", "(1) first\n(2) second"])
def test_unwrap_is_idempotent(text):
    once = unwrap(text)
    assert unwrap(once) == once and unwrap(once, one_line=True) == unwrap(text, one_line=True)


def test_text_without_newline_is_returned_as_is():
    s = "No newline here.  Two spaces kept."
    assert unwrap(s) is s


def test_every_parser_unwraps():
    """One wrapped abstract through each format's parser comes out the same."""
    wrapped = "We propose a method that\nworks. It is new."
    papers = {
        "jsonl": parse_text('{"id": "2601.00001", "title": "A\\n  B", "summary": "We propose a method that\\n'
                            'works. It is new.", "AI": {"tldr": "一种\\n方法。"}}\n', "d.jsonl").papers[0],
        "cs_digest": parse_text("### [1] [A B](https://arxiv.org/abs/2601.00001)\n*X Y*\n\nTL;DR: 一种\n方法。\n\n"
                                f"Abstract: {wrapped}\n", "d.md").papers[0],
        "table_report": parse_text("# arXiv Daily Report - 04-Dec-2025\n\n| Title | Link | abstract | author |\n"
                                   "| --- | --- | --- | --- |\n| A B | [https://arxiv.org/abs/2601.00001]"
                                   f"(https://arxiv.org/abs/2601.00001) | {wrapped} | X Y |\n", "r.md").papers[0],
        "abstract_dump": parse_text(f"{wrapped} More words follow here.\narXiv:2601.00001\n", "a.txt").papers[0],
        "paper_page": parse_text("- URL: https://arxiv.org/abs/2601.00001\n- Title: A B\n"
                                 "- Abstract summary: We propose a method that<n>works.<n>It is new.\n",
                                 "p.txt").papers[0],
    }
    for fmt, p in papers.items():
        text = p.abstract or p.tldr_en
        assert text.startswith("We propose a method that works."), (fmt, text)
        assert "\n" not in text and "\n" not in p.title, fmt
    assert papers["jsonl"].title == "A B" and papers["jsonl"].tldr_zh == "一种方法。"
    page = parse_text("- URL: https://arxiv.org/abs/2601.00001\n- Title: A B\n- Abstract: We study cross-\n"
                      "  model transfer of\n  检索\n  增强。\n", "p.txt").papers[0]
    assert page.abstract == "We study cross-model transfer of检索增强。"  # lines joined by the same rules
    assert papers["cs_digest"].tldr_zh == "一种方法。"


def test_unwrap_paper_for_stored_records():
    p = Paper(paper_id="x", title="A\nB", abstract="one that\nwraps.", tldr_zh="一\n二。", comment="10 pages,\n3 figs")
    q = unwrap_paper(p)
    assert (q.title, q.abstract, q.tldr_zh, q.comment) == ("A B", "one that wraps.", "一二。", "10 pages, 3 figs")
    assert unwrap_paper(q) is q


# ---------------------------------------------------------------- every shared corpus file

def _files() -> list[tuple[str, list[Path]]]:
    need_shared("corpora")  # (skips naming the folder on a plain clone; fails in CI)
    daily = CORPORA / "daily_arxiv_ai_enhanced" / "data"
    groups = [("seeds", SEEDS, "*.txt"), ("table", CORPORA / "arxiv_daily_report_table", "*/README.md"),
              ("daily", daily, "*.md"), ("daily", daily, "*.jsonl"), ("scale", CORPORA / "scale", "*.jsonl.gz")]
    out = []
    for name, folder, pattern in groups:
        assert folder.is_dir(), f"{folder} is missing from the shared data"
        out.append((name, sorted(folder.glob(pattern))))
    return out


def test_no_stored_prose_field_keeps_a_wrap_inside_a_sentence():
    files = _files()
    counts: dict[str, int] = {}
    for name, fs in files:
        counts[name] = counts.get(name, 0) + len(fs)
    assert counts["scale"] == 119 and counts["daily"] == 32 and counts["table"] == 60 and counts["seeds"] == 5
    t0 = time.perf_counter()
    bad, values, kept = [], 0, 0
    for _, fs in files:
        for f in fs:
            for p in parse_file(f).papers:
                assert "\n" not in p.title, (f.name, p.paper_id)
                for field in PROSE_FIELDS:
                    v = getattr(p, field)
                    if not v:
                        continue
                    values += 1
                    kept += v.count("\n")
                    bad += [(f.name, p.paper_id, field, w) for w in wraps_inside_sentences(v)]
                    assert unwrap(v) == v, (f.name, p.paper_id, field)  # stored text is a fixed point
    seconds = time.perf_counter() - t0
    print(f"\nunwrap over {sum(counts.values())} files: {values} prose values, {kept} paragraph/list breaks "
          f"kept, {len(bad)} wraps inside a sentence; parse {seconds:.1f} s")
    assert not bad, bad[:10]
    assert values > 100_000 and kept > 1000  # the corpora were all read; real paragraph breaks survive
