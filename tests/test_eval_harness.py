"""Harness, report files, plot, --compare and the threshold gate, on a fake rag.api (the real
pipeline is exercised in test_eval_e2e.py)."""
from __future__ import annotations

import argparse
import json

import matplotlib.image as mpimg
import pytest

import rag.api as api
from eval import cli, run_eval
from eval.report import compare
from eval.thresholds import gate
from rag.config import Settings
from rag.types import Answer, Citation, Hit, Passage, Paper

QUESTIONS = [
    {"id": "a", "question": "Which paper was deployed in Douyin Search?", "lang": "en", "kind": "fact",
     "must": ["2511.10962"], "gold": [], "facts": [r"0\.843"], "answerable": True},
    {"id": "b", "question": "哪篇论文提出了MMQ？", "lang": "zh", "kind": "related",
     "must": ["title:Mixture-of-Quantization"], "gold": [], "facts": ["MMQ"], "answerable": True},
    {"id": "c", "question": "What BLEU does LEMUR get?", "lang": "en", "kind": "unanswerable",
     "must": [], "gold": ["2511.10962"], "facts": [], "answerable": False},
]


def hit(rank, pid, title):
    return Hit(rank=rank, paper_id=pid, arxiv_id=pid if pid[0].isdigit() else None, title=title, score=1 / rank,
               passages=(Passage("c", "abstract", "en", "text", 1.0),))


def fake_answer(question: str, quality: str) -> Answer:
    lemur = hit(1, "2511.10962", "LEMUR: Large scale End-to-end MUltimodal Recommendation")
    mmq = hit(1, "2508.15281", "derived title of the 004 record")
    if "Douyin" in question:
        text, src, cite = ("LEMUR cut query change rate decay by 0.843% [1]." if quality == "good"
                           else "No idea [1]."), (lemur,), lemur
    elif "MMQ" in question:
        text, src, cite = "MMQ 是一个两阶段的多模态量化框架 [1]。", (mmq,), mmq
    else:
        return Answer(question, "CANNOT_ANSWER", True, "extractive", None, "fake", (), (lemur,),
                      {"total": 5.0})
    c = Citation(1, cite.paper_id, cite.arxiv_id, cite.title, None, "abstract", "p", 0.7)
    return Answer(question, text, False, "extractive", None, "fake", (c,), src, {"total": 10.0})


@pytest.fixture
def fake_api(monkeypatch, tmp_path):
    state = {"quality": "good", "ingested": [], "papers": 8}
    monkeypatch.setattr(api, "stats", lambda s=None: {"papers": state["papers"]})
    monkeypatch.setattr(api, "ask", lambda q, s=None, f=None, h=None: fake_answer(q, state["quality"]))
    monkeypatch.setattr(api, "papers", lambda s=None: [
        Paper("2508.15281", "Recommender systems", arxiv_id="2508.15281", linked_ids=("t-mmq",),
              extra=(("related_title", "MMQ: Multimodal Mixture-of-Quantization Tokenization"),))])
    monkeypatch.setattr(api, "ingest", lambda paths, s=None, p=None: state["ingested"].append(list(paths)) or
                        __import__("rag.types", fromlist=["IngestReport"]).IngestReport(files=len(paths)))
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in QUESTIONS) + "\n", encoding="utf-8")
    state["qfile"] = qfile
    state["settings"] = Settings(index_dir=str(tmp_path / "idx"), answerer="extractive")
    return state


def test_run_eval_writes_every_file(fake_api, tmp_path):
    rep = run_eval(fake_api["qfile"], fake_api["settings"], tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"answers.jsonl", "report.json", "report.md", "plot.png"}
    lines = [json.loads(x) for x in rep.answers.read_text(encoding="utf-8").splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c"] and lines[2]["abstained"] is True
    assert rep.metrics["hit@5"] == 1.0 and rep.metrics["fact_recall"] == 1.0
    assert rep.metrics["abstention_accuracy"] == 1.0 and rep.metrics["language_match"] == 1.0
    assert rep.per_kind["related"]["citation_recall"] == 1.0  # title ref via the catalogue's linked title
    doc = json.loads(rep.report_json.read_text(encoding="utf-8"))
    assert set(doc) == {"metrics", "per_kind", "per_question", "info"}
    assert doc["per_question"][0]["metrics"]["citation_validity"] == 1.0
    img = mpimg.imread(rep.plot)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    md = rep.report_md.read_text(encoding="utf-8")
    assert "## Overall" in md and "## Per kind" in md and "## Worst 10 questions" in md


def test_ui_style_call_on_an_empty_index_ingests_the_sample(fake_api, tmp_path):
    fake_api["papers"] = 0
    rep = run_eval(fake_api["settings"], out_dir=tmp_path / "ui")  # Settings as first positional argument
    assert [p.name for p in fake_api["ingested"][-1]] == [p.name for p in api.sample_paths()]
    assert len(rep.per_question) == len(__import__("eval.questions", fromlist=["x"]).load_questions())


def test_bad_answers_lower_metrics_and_show_what_is_missing(fake_api, tmp_path):
    fake_api["quality"] = "bad"
    rep = run_eval(fake_api["qfile"], fake_api["settings"], tmp_path / "run")
    assert rep.metrics["fact_recall"] == 0.5
    worst = rep.per_question[0]
    assert worst["missing_facts"] == [r"0\.843"]
    md = rep.report_md.read_text(encoding="utf-8")
    assert "missing facts: `0\\.843`" in md and "No idea" in md


def test_failing_question_is_recorded_not_fatal(fake_api, tmp_path, monkeypatch):
    def boom(q, s=None, f=None, h=None):
        if "BLEU" in q:
            raise RuntimeError("index exploded")
        return fake_answer(q, "good")
    monkeypatch.setattr(api, "ask", boom)
    rep = run_eval(fake_api["qfile"], fake_api["settings"], tmp_path / "run")
    rec = {r["id"]: r for r in rep.per_question}
    assert rec["c"]["error"] == "RuntimeError: index exploded"
    assert rec["c"]["metrics"]["abstention_accuracy"] == 0.0 and rec["a"]["error"] is None


def test_compare_shows_metric_and_question_deltas(fake_api, tmp_path):
    good = run_eval(fake_api["qfile"], fake_api["settings"], tmp_path / "good")
    fake_api["quality"] = "bad"
    bad = run_eval(fake_api["qfile"], fake_api["settings"], tmp_path / "bad")
    text = compare(json.loads(bad.report_json.read_text()), json.loads(good.report_json.read_text()))
    assert "| fact_recall | 1.000 | 0.500 | -0.500 |" in text
    assert "| a | fact |" in text and "| b |" not in text


def test_threshold_gate(fake_api, tmp_path):
    rep = run_eval(fake_api["qfile"], fake_api["settings"], tmp_path / "run")
    doc = json.loads(rep.report_json.read_text())
    assert gate(doc, {"overall": {"fact_recall": 1.0, "hit@5": 0.9}}) == []
    fails = gate(doc, {"overall": {"fact_recall": 1.01, "latency_p95_ms": 1.0}, "kind": {"fact": {"mrr": 1.5}}})
    assert len(fails) == 3
    assert fails[0] == "overall fact_recall = 1.0000 is below threshold 1.01"
    assert "latency_p95_ms" in fails[1] and "above maximum" in fails[1]
    assert fails[2].startswith("kind fact: mrr")


def cli_args(tmp_path, **kw):
    p = argparse.ArgumentParser()
    p.add_argument("--index")
    cli.add_arguments(p)
    argv = []
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        argv += [flag] if v is True else [flag, *([str(x) for x in v] if isinstance(v, list) else [str(v)])]
    return p.parse_args(argv)


def test_cli_gate_exit_codes_and_compare(fake_api, tmp_path, capsys):
    s = fake_api["settings"]
    ok = tmp_path / "ok.toml"
    ok.write_text('[overall]\n"hit@5" = 1.0\nfact_recall = 1.0\n')
    args = cli_args(tmp_path, questions=fake_api["qfile"], out=tmp_path / "r1", thresholds=ok, index=s.index_dir)
    assert cli.run(args, s) == 0
    assert "thresholds: pass" in capsys.readouterr().out
    high = tmp_path / "high.toml"
    high.write_text('[overall]\nfact_recall = 1.01\n')
    args = cli_args(tmp_path, questions=fake_api["qfile"], out=tmp_path / "r2", thresholds=high,
                    compare=tmp_path / "r1", index=s.index_dir)
    assert cli.run(args, s) == 1
    out = capsys.readouterr().out
    assert "THRESHOLD FAILED: overall fact_recall = 1.0000 is below threshold 1.01" in out
    assert "## Overall vs previous" in out and (tmp_path / "r2" / "compare.md").exists()


def test_cli_index_and_corpus_semantics(fake_api, tmp_path):
    s = fake_api["settings"]
    # no --index, no --corpus: the bundled sample goes into a temporary index
    cli.run(cli_args(tmp_path, questions=fake_api["qfile"], out=tmp_path / "r"), s)
    assert [p.name for p in fake_api["ingested"][-1]] == [p.name for p in api.sample_paths()]
    info = json.loads((tmp_path / "r" / "report.json").read_text())["info"]
    assert info["temp_index"] is True
    # --index alone: answer from it as it is (nothing ingested)
    n = len(fake_api["ingested"])
    cli.run(cli_args(tmp_path, questions=fake_api["qfile"], out=tmp_path / "r", index=s.index_dir), s)
    assert len(fake_api["ingested"]) == n
    # --corpus with --index: ingest into that index
    cli.run(cli_args(tmp_path, questions=fake_api["qfile"], out=tmp_path / "r", index=s.index_dir,
                     corpus=[tmp_path / "x.txt"]), s)
    assert fake_api["ingested"][-1] == [str(tmp_path / "x.txt")]
    assert json.loads((tmp_path / "r" / "report.json").read_text())["info"]["index_dir"] == s.index_dir


def test_cli_rejects_bad_question_file(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    code = cli.run(cli_args(tmp_path, questions=bad, out=tmp_path / "r", index=str(tmp_path)), Settings(index_dir=str(tmp_path)))
    assert code == 2
    assert f"{bad}:1: missing field 'question'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_judge_without_llm_says_why(fake_api, tmp_path, capsys):
    args = cli_args(tmp_path, questions=fake_api["qfile"], out=tmp_path / "r", judge=True, index=".")
    cli.run(args, fake_api["settings"])
    assert "--judge needs an LLM" in capsys.readouterr().out


def test_suggested_thresholds_sit_just_past_the_measured_run_and_gate_it():
    import tomllib

    from eval.thresholds import gate, suggest

    run = {"metrics": {"citation_recall": 0.8567, "false_abstention": 0.11, "latency_p95_ms": 90.0, "mrr": None},
           "per_kind": {"fact": {"questions": 9, "fact_recall": 0.5}, "list": {"questions": 2, "fact_recall": 0.0}}}
    limits = tomllib.loads(suggest({"sets": {"x-dev": run, "x-test": run}}, {"x": (0.01, 0.02)}))
    assert limits["x-test"]["overall"] == {"citation_recall": 0.84, "false_abstention": 0.12, "latency_p95_ms": 3000.0}
    assert limits["x-dev"]["kind"] == {"fact": {"fact_recall": 0.48}}  # kinds of < 5 questions and test sets: none
    assert "kind" not in limits["x-test"]
    assert gate(run, limits["x-dev"]) == []
    worse = {**run, "metrics": {**run["metrics"], "false_abstention": 0.13}}
    assert gate(worse, limits["x-dev"]) == ["overall false_abstention = 0.1300 is above maximum 0.12"]


def test_a_set_whose_answers_vary_gets_one_questions_worth_of_room_per_metric():
    import tomllib

    from eval.thresholds import gate, suggest

    run = {"metrics": {"parts_answered": 0.808, "citation_recall": 0.931},
           "per_kind": {"multipart": {"questions": 26, "parts_answered": 0.808, "citation_recall": 0.95},
                        "fact": {"questions": 180, "citation_recall": 0.93}}}
    limits = tomllib.loads(suggest({"sets": {"corpora-test": run, "sample-test": run}}))
    assert limits["corpora-test"]["overall"]["parts_answered"] == 0.76  # 0.80 - (1/26 + 0.005)
    assert limits["corpora-test"]["overall"]["citation_recall"] == 0.90  # 1/206 < the 0.03 margin
    assert limits["sample-test"]["overall"]["parts_answered"] == 0.79  # the sample's answers do not vary
    one_flip = {**run, "metrics": {**run["metrics"], "parts_answered": 0.808 - 1 / 26}}
    assert gate(one_flip, limits["corpora-test"]) == []
