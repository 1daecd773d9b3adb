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


def _corpus_text(corpus: str, shared: Path | None) -> str | None:
    from eval.sets import corpus_paths

    paths = corpus_paths(corpus, shared)
    if paths is None:
        return None
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*"))) if f.is_file()]
    # a digest's date may be only in its path (daily_arxiv data/2026-01-21.md, table 04-Dec-2025/README.md)
    return "\n".join(f"{f}\n" + f.read_text(encoding="utf-8", errors="replace") for f in files)


@pytest.mark.parametrize("name", ["sample-dev", "sample-test", "corpora-dev", "corpora-test"])
def test_every_bundled_set_is_valid_and_answerable_from_its_corpus(name):
    """Refs exist in the set's corpus and every fact of an answerable question occurs in it (a question the
    corpus cannot answer would measure nothing); each set has both languages and unanswerable questions."""
    from eval.metrics import fact_hits
    from eval.sets import find_shared, set_path

    qs = load_questions(set_path(name))
    assert len(qs) >= 40 and {q.lang for q in qs} == {"en", "zh"} and any(not q.answerable for q in qs)
    text = _corpus_text(name.split("-")[0], find_shared())
    if text is None:
        pytest.skip(f"needs ../shared/corpora for {name} (the corpora sets are asked over it)")
    low = text.lower()
    bad = []  # ids only: a held-out question's text must not end up in a test log
    for q in qs:
        refs_ok = all(any(a[6:].lower() in low if a.startswith("title:") else a in text for a in ref.split("|"))
                      for ref in q.must + q.gold)
        if not refs_ok or not all(fact_hits(list(q.facts), text)):
            bad.append(q.id)
    assert not bad, f"{name}: refs or facts not found in the corpus for {bad}"


def test_test_sets_share_no_question_with_dev_sets():
    from eval.sets import set_path

    for corpus in ("sample", "corpora"):
        dev = {q.question for q in load_questions(set_path(f"{corpus}-dev"))}
        test = {q.question for q in load_questions(set_path(f"{corpus}-test"))}
        shared = len(dev & test)  # (a count: pytest would print the sets, and test questions stay out of logs)
        assert shared == 0, f"{corpus}: {shared} questions are in both dev and test"
        assert len(test) >= 40
