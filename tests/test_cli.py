"""The `digestqa` command end to end (subprocesses), and the README's commands kept true."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]


def run(args, index, timeout=300, exe=None, **env):
    cmd = [exe] if exe else [sys.executable, "-m", "rag.cli"]
    full_env = {**os.environ, "DIGESTQA_INDEX": str(index), "PYTHONPATH": str(REPO), **env}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env, timeout=timeout)


def test_ask_on_empty_index_ingests_sample_and_says_so(tmp_path):
    r = run(["ask", "--json", "哪篇论文在抖音搜索部署了？"], tmp_path / "idx")
    assert r.returncode == 0, r.stderr
    assert "ingesting the bundled sample" in r.stderr
    out = json.loads(r.stdout)
    for key in ("question", "answer", "abstained", "answerer", "model", "embedder", "citations", "sources",
                "timings_ms"):
        assert key in out
    assert out["answerer"] == "extractive" and out["model"] is None
    assert "2511.10962" in {c["arxiv_id"] for c in out["citations"]}
    assert re.search(r"0\.843", out["answer"]) and re.search(r"[\u4e00-\u9fff]", out["answer"])
    assert set(out["timings_ms"]) >= {"retrieve", "answer", "total"}
    cited = {c["paper_id"] for c in out["citations"]}
    assert cited <= {s["paper_id"] for s in out["sources"]}


def test_ingest_papers_stats_and_exit_codes(tmp_path, shared_dir):
    idx = tmp_path / "idx"
    day = shared_dir / "corpora" / "arxiv_daily_report_table" / "04-Dec-2025" / "README.md"
    r = run(["ingest", str(day), str(tmp_path / "does-not-exist.md")], idx)
    assert r.returncode == 1
    assert "does-not-exist.md" in r.stdout and "failures: 1" in r.stdout
    r = run(["ingest", "--quiet", str(day)], idx)
    assert r.returncode == 0 and "1 unchanged" in r.stdout
    papers = json.loads(run(["papers", "--json"], idx).stdout)
    assert isinstance(papers, list) and papers
    assert {"paper_id", "arxiv_id", "title", "title_derived", "sources", "linked_ids"} <= set(papers[0])
    stats = run(["stats"], idx).stdout
    assert f"papers: {len(papers)}" in stats and "collection: dq-" in stats and str(idx) in stats


def test_ask_text_output_names_answerer_and_embedder(tmp_path):
    r = run(["ask", "What BLEU score does Q-BERT4Rec get on WMT14?"], tmp_path / "idx")
    assert r.returncode == 0, r.stderr
    assert "CANNOT_ANSWER" in r.stdout
    assert "answerer: extractive" in r.stdout and "no OPENAI_API_KEY" in r.stdout and "embedder:" in r.stdout


def test_unreachable_llm_is_a_clear_error_not_a_fallback(tmp_path):
    r = run(["ask", "which papers use RQ-VAE semantic IDs"], tmp_path / "idx",
            OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="x")
    assert r.returncode == 2
    assert "127.0.0.1:9" in r.stderr and "Traceback" not in r.stderr
    assert "answerer: extractive" not in r.stdout


def _quickstart_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_quickstart_has_two_commands_and_ci_uses_the_test_one():
    cmds = _quickstart_commands()
    assert len(cmds) == 2
    assert "pip install ." in cmds[0] and "digestqa ask" in cmds[0]
    assert cmds[1] in (REPO / ".ci" / "run").read_text() or cmds[1].split()[-1] in (REPO / ".ci" / "run").read_text()


def test_readme_quickstart_question_with_the_installed_command(tmp_path):
    exe = shutil.which("digestqa")
    assert exe, "the digestqa console script must be installed (pip install .)"
    question = re.search(r'digestqa ask "([^"]+)"', _quickstart_commands()[0]).group(1)
    r = run(["ask", question], tmp_path / "idx", exe=exe)
    assert r.returncode == 0, r.stderr
    assert "[1]" in r.stdout and "2512.02474" in r.stdout


def test_chat_streams_and_keeps_history(sample_settings):
    import threading
    import time

    from tests.fakes import FakeLLM

    with FakeLLM("LEMUR was deployed in Douyin Search and improved QAUC by 0.81% [1].") as fake:
        fake.delay = 0.15
        env = {**os.environ, "DIGESTQA_INDEX": sample_settings.index_dir, "PYTHONPATH": str(REPO),
               "OPENAI_BASE_URL": fake.base_url, "DIGESTQA_MODEL": "fake-model", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "chat"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, bufsize=0)
        seen: list[tuple[float, str]] = []

        def reader():
            for ch in iter(lambda: proc.stdout.read(1), ""):
                seen.append((time.monotonic(), ch))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        proc.stdin.write("Which paper was deployed in Douyin Search?\nHow much did it improve QAUC?\n/quit\n")
        proc.stdin.flush()
        proc.wait(timeout=300)
        t.join(timeout=5)
    out = "".join(ch for _, ch in seen)
    assert proc.returncode == 0, proc.stderr.read()
    assert "answerer: llm" in out and out.count("LEMUR was deployed") == 2
    start = out.index("LEMUR was deployed")
    first_at = seen[start][0]
    last_at = seen[start + len("LEMUR was deployed in Douyin Search and improved QAUC by 0.81% [1]") - 1][0]
    assert last_at - first_at > 0.5, "the answer must appear piece by piece, not all at once"
    follow_up = fake.requests[1]["messages"]
    assert any("Which paper was deployed in Douyin Search?" in m["content"] for m in follow_up[:-1])


def test_bench_options_pass_through_and_bench_word_in_a_question(monkeypatch):
    from rag import cli

    got = {}
    monkeypatch.setitem(cli.COMMANDS, "bench", lambda args, s: got.setdefault("bench", args.bench_args) and 0)
    monkeypatch.setitem(cli.COMMANDS, "ask", lambda args, s: got.setdefault("ask", args.question) and 0)
    cli.main(["--index", "/tmp/x", "bench", "--sizes", "1000", "--no-baseline"])
    cli.main(["ask", "bench"])
    assert got == {"bench": ["--sizes", "1000", "--no-baseline"], "ask": "bench"}


def test_api_key_never_in_settings_repr():
    from rag.config import Settings

    s = Settings(index_dir="/x", openai_api_key="sk-secret123")
    assert "sk-secret123" not in repr(s) and "sk-secret123" not in str(s) and s.openai_api_key == "sk-secret123"


def _chat(index: Path, lines: list[str]) -> str:
    env = {**os.environ, "DIGESTQA_INDEX": str(index), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, "-m", "rag.cli", "chat"], input="\n".join(lines + ["/quit"]) + "\n",
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _turns(out: str) -> list[str]:
    """The answers of a chat transcript, one per question (split at the '> ' prompts)."""
    return [t for t in out.split("\n> ")[1:] if t.strip()]


def test_chat_follow_ups_keep_the_paper_for_three_turns_english(sample_settings):
    out = _chat(Path(sample_settings.index_dir), [
        "Which paper was deployed in Douyin Search?", "Who are its authors?",
        "What mechanism does it use to cut computational cost?"])
    first, second, third = _turns(out)[:3]
    assert "LEMUR" in first and "2511.10962" in first
    assert "Xintian Han" in second and "(answered as: Who are LEMUR's authors?)" in out
    assert "2511.10962" in third and "memory bank" in third and "CANNOT_ANSWER" not in third


def test_chat_follow_ups_keep_the_paper_for_three_turns_chinese(sample_settings):
    out = _chat(Path(sample_settings.index_dir), ["哪篇论文在抖音搜索部署了？", "它的作者是谁？", "该论文属于哪个 arXiv 分类？"])
    first, second, third = _turns(out)[:3]
    assert "LEMUR" in first and "Xintian Han" in second and "cs.IR" in third
    assert "CANNOT_ANSWER" not in second + third


def _section_lines(title: str, prefix: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.+?)\n```", section, re.S)
    return [ln.split("  #")[0].strip() for b in blocks for ln in b.splitlines() if ln.startswith(prefix)]


def test_readme_eval_commands_parse():
    """Every `digestqa eval ...` line of the README's Evaluation section is accepted by the parser, and every
    `python -m eval.X` module it names answers --help."""
    import shlex

    from rag.cli import build_parser

    evals = _section_lines("Evaluation", "digestqa eval")
    assert len(evals) >= 5
    for line in evals:
        try:
            build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit:
            raise AssertionError(f"README command does not parse: {line}") from None
    modules = {shlex.split(ln)[2] for ln in _section_lines("Evaluation", "python -m eval.")}
    assert modules >= {"eval.calibrate", "eval.thresholds"}
    for mod in modules:
        r = subprocess.run([sys.executable, "-m", mod, "--help"], cwd=REPO, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and "usage:" in r.stdout, (mod, r.stderr[-500:])
