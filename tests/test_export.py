"""Exports: `ask --format md` (numbered references with arXiv links) and BibTeX parsed back with bibtexparser."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import bibtexparser

from rag import api
from rag.export import answer_markdown, bibtex, bib_value
from rag.types import Paper, Source

REPO = Path(__file__).resolve().parents[1]


def cli(args, index):
    env = {**os.environ, "DIGESTQA_INDEX": str(index), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def parse(text: str):
    lib = bibtexparser.parse_string(text)
    assert not lib.failed_blocks, [b.error for b in lib.failed_blocks]
    return lib.entries


def test_ask_format_md_has_numbered_references_with_arxiv_links(sample_settings):
    r = cli(["ask", "--format", "md", "哪篇论文在抖音搜索部署了？"], sample_settings.index_dir)
    assert r.returncode == 0, r.stderr
    md = r.stdout
    a = api.ask("哪篇论文在抖音搜索部署了？", sample_settings)
    body, refs = md.split("**References**", 1)
    for c in a.citations:  # every [n] of the answer has its numbered reference, with the arXiv link
        assert f"\\[{c.n}\\]" in body
        line = next(x for x in refs.splitlines() if x.startswith(f"- \\[{c.n}\\]"))
        if c.arxiv_id:
            assert f"(https://arxiv.org/abs/{c.arxiv_id})" in line and f"arXiv:{c.arxiv_id}" in line
    assert "https://arxiv.org/abs/2511.10962" in refs
    cited = {int(n) for n in re.findall(r"^- \\\[(\d+)\\\]", refs, re.M)}
    assert cited == {c.n for c in a.citations}


def test_papers_bibtex_parses_back(sample_settings):
    r = cli(["papers", "--bibtex"], sample_settings.index_dir)
    assert r.returncode == 0, r.stderr
    entries = parse(r.stdout)
    papers = api.papers(sample_settings)
    assert len(entries) == len(papers)
    assert len({e.key for e in entries}) == len(entries), "keys are unique"
    by_eprint = {e.fields_dict["eprint"].value: e for e in entries if "eprint" in e.fields_dict}
    arxiv = [p for p in papers if p.arxiv_id]
    assert set(by_eprint) == {p.arxiv_id for p in arxiv}
    for p in arxiv:
        e = by_eprint[p.arxiv_id]
        assert e.entry_type == "misc" and e.fields_dict["archivePrefix"].value == "arXiv"
        assert e.fields_dict["url"].value == f"https://arxiv.org/abs/{p.arxiv_id}"
        assert e.fields_dict["year"].value == f"20{p.arxiv_id[:2]}"
        title = e.fields_dict["title"].value.strip("{}")
        assert re.sub(r"\\(.)", r"\1", title) == " ".join(p.title.split())
    # a subset by id (versions and arXiv: prefixes accepted), and a clear error for an unknown id
    r = cli(["papers", "--bibtex", "arXiv:2511.10962v1", "2512.02474"], sample_settings.index_dir)
    assert [e.fields_dict["eprint"].value for e in parse(r.stdout)] == ["2511.10962", "2512.02474"]
    r = cli(["papers", "--bibtex", "0000.00000"], sample_settings.index_dir)
    assert r.returncode == 2 and "0000.00000" in r.stderr


def test_ask_format_bibtex_is_the_cited_papers(sample_settings):
    r = cli(["ask", "--format", "bibtex", "which papers use RQ-VAE semantic IDs"], sample_settings.index_dir)
    assert r.returncode == 0, r.stderr
    a = api.ask("which papers use RQ-VAE semantic IDs", sample_settings)
    entries = parse(r.stdout)
    assert len(entries) == len({c.paper_id for c in a.citations}) > 0
    titles = {re.sub(r"\\(.)", r"\1", e.fields_dict["title"].value.strip("{}")) for e in entries}
    assert titles == {" ".join(c.title.split()) for c in a.citations}


def test_bibtex_escapes_hostile_text_and_stays_parseable():
    p = Paper(paper_id="2511.11255", arxiv_id="2511.11255", title="Align$^3$GR: 100% {unbalanced & #1_best",
              authors=("José Núñez (Uni A, Dept B)", "李 雷", "O'Brien, Pat"), categories=("cs.IR",),
              sources=(Source("x.md", "2025-11-17"),))
    q = Paper(paper_id="t-abc", title="No ID } here", sources=(Source("y.md", "2025-12-01"),))
    [e, f] = parse(bibtex([p, q]))
    assert e.fields_dict["eprint"].value == "2511.11255" and e.fields_dict["month"].value == "nov"
    assert e.fields_dict["author"].value == "José Núñez and 李 雷 and O'Brien, Pat"
    assert "\\%" in e.fields_dict["title"].value and "\\&" in e.fields_dict["title"].value
    assert "eprint" not in f.fields_dict and "no arXiv ID" in f.fields_dict["note"].value
    assert bib_value("a $b") == "a \\$b" and bib_value("x$^2$") == "x$^2$"


def test_markdown_of_an_abstention_lists_nothing(sample_settings):
    a = api.ask("What BLEU score does Q-BERT4Rec get on WMT14?", sample_settings)
    md = answer_markdown(a)
    assert a.abstained and "No answer" in md and "References" not in md and "CANNOT_ANSWER" not in md
    assert api.answer_bibtex(a, sample_settings) == ""
    assert json.dumps(md)  # plain text
