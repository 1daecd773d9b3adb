"""Question-file validation and the bundled question set."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from eval.questions import KINDS, QuestionFileError, load_questions

SEEDS = Path(__file__).resolve().parents[1] / "rag" / "data" / "sample"


def good(**kw):
    d = {"id": "a1", "question": "What?", "lang": "en", "kind": "fact", "must": ["2512.02474"], "gold": [],
         "facts": [r"(?i)x"], "answerable": True}
    d.update(kw)
    return json.dumps(d, ensure_ascii=False)


def test_valid_file_loads(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text(good() + "\n\n" + good(id="a2", kind="unanswerable", answerable=False, must=[], facts=[]) + "\n")
    qs = load_questions(p)
    assert [q.id for q in qs] == ["a1", "a2"] and qs[1].answerable is False


def test_every_problem_is_reported_with_line_numbers(tmp_path):
    lines = [good(), "{not json", good(id="a3", lang="fr"), good(id="a4", kind="opinion"),
             good(id="a5", facts=["(unclosed"]), good(), good(id="a7", answerable="yes"),
             json.dumps({"id": "a8", "question": "q"}), good(id="a9", kind="unanswerable"),
             good(id="a10", must="2512.02474")]
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(QuestionFileError) as e:
        load_questions(p)
    probs = e.value.problems
    text = "\n".join(probs)
    assert f"{p}:2: invalid JSON" in text
    assert f"{p}:3: 'lang' must be one of" in text
    assert f"{p}:4: 'kind' must be one of" in text
    assert f"{p}:5: fact '(unclosed' is not a valid regular expression" in text
    assert f"{p}:6: duplicate id 'a1' (first on line 1)" in text
    assert f"{p}:7: 'answerable' must be true or false" in text
    assert f"{p}:8: missing field 'lang'" in text
    assert f"{p}:9: kind 'unanswerable' needs" in text
    assert f"{p}:10: 'must' must be a list" in text
    assert not any(x.startswith(f"{p}:1:") for x in probs)
    assert all(re.match(re.escape(str(p)) + r":\d+: ", x) for x in probs)


def test_unreadable_and_empty_files(tmp_path):
    with pytest.raises(QuestionFileError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(QuestionFileError, match="no questions"):
        load_questions(tmp_path / "e.jsonl")


def test_bundled_set_meets_the_brief():
    qs = load_questions()
    kinds = Counter(q.kind for q in qs)
    assert len(qs) >= 60 and set(kinds) == set(KINDS)
    assert sum(q.lang == "zh" for q in qs) >= 8
    assert sum(not q.answerable for q in qs) >= 6
    by_text = {q.question: q for q in qs}
    douyin = by_text["哪篇论文在抖音搜索部署了？"]
    assert douyin.must == ("2511.10962",) and {r"0\.843", r"0\.81"} <= set(douyin.facts)
    rq = by_text["Which papers use RQ-VAE semantic IDs?"]
    assert set(rq.must) == {"2512.02474", "title:MMGRec", "title:Progressive Semantic Residual Quantization"}


def test_bundled_refs_exist_in_the_seeds():
    """Every arXiv-id ref and title ref occurs verbatim in some bundled seed (case-insensitive for titles)."""
    corpus = "\n".join(p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt"))
    low = corpus.lower()
    for q in load_questions():
        for ref in q.must + q.gold:
            alts = ref.split("|")
            ok = [a[6:].lower() in low if a.startswith("title:") else a in corpus for a in alts]
            assert all(ok), f"{q.id}: ref {ref} not found in the seeds"


def test_bundled_fact_regexes_match_the_seed_text_or_a_translation():
    """Each fact of an answerable question matches somewhere in the seeds (so it is answerable at all)."""
    corpus = "\n".join(p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt"))
    for q in load_questions():
        for f in q.facts:
            assert re.search(f, corpus), f"{q.id}: fact {f} occurs nowhere in the sample corpus"
