"""Issue 12 items 5-9, 13, 14: one bad input never stops the others (deep JSON, non-UTF-8 file names,
unreadable entries, symlink loops under a recursive glob), a per-paper chunk cap, CLI filters that are
checked, an OpenAI embedder without a key, UTF-16 digests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import api
from rag.config import Settings
from rag.parse import parse_file
from rag.types import Filters

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=full,
                          cwd=str(REPO), timeout=timeout)


def record(aid: str, title: str, summary: str, **extra) -> str:
    return json.dumps({"id": aid, "title": title, "authors": "Ada Lovelace", "summary": summary, **extra})


GOOD_1 = record("2601.00011", "Robust Parsers for Nested Records", "We parse records robustly and index them.")
GOOD_2 = record("2601.00012", "Isolation of Bad Lines in Digests", "One bad line never stops the other lines.")
GOOD_3 = record("2601.00013", "Deep Trees Survive Detection", "A valid line beside a pathological one.")


# ------------------------------------------------------------------------------------------ item 5

def deep_line(levels: int = 3000) -> str:
    return '{"id": "2601.00019", "title": "Too Deep", "summary": "x", "extra": ' + "[" * levels + "]" * levels + "}"


def test_json_nested_thousands_of_levels_deep_fails_only_its_line(tmp_settings, tmp_path):
    d = tmp_path / "digests"
    d.mkdir()
    (d / "good.jsonl").write_text(GOOD_1 + "\n" + GOOD_2 + "\n")
    (d / "deep.jsonl").write_text(deep_line() + "\n" + GOOD_3 + "\n")
    (d / "deeper.jsonl").write_text("[" * 5000 + "]" * 5000 + "\n")
    report = api.ingest([d], tmp_settings)
    ids = {p.arxiv_id for p in api.papers(tmp_settings)}
    assert ids == {"2601.00011", "2601.00012", "2601.00013"}
    failures = {(Path(f.file).name, f.line): f.message for f in report.failures}
    assert "nested too deeply" in failures[("deep.jsonl", 1)]
    assert any(name == "deeper.jsonl" for name, _ in failures), failures


def test_a_deep_upload_in_the_ui_fails_alone_and_leaves_no_staged_copy(tmp_settings, tmp_path):
    from ui.controller import Controller

    up = tmp_path / "gradio"
    up.mkdir()
    (up / "good.jsonl").write_text(GOOD_1 + "\n")
    (up / "deep.jsonl").write_text(deep_line() + "\n" + GOOD_3 + "\n")
    html = Controller(tmp_settings).ingest_uploads([str(up / "good.jsonl"), str(up / "deep.jsonl")])
    assert "Ingested 1 file" in html and "deep.jsonl:1: JSON nested too deeply" in html
    staged = sorted(p.name for p in (Path(tmp_settings.index_dir) / "uploads").iterdir())
    assert len(staged) == 1 and staged[0].endswith("_good.jsonl"), staged
    assert {p.arxiv_id for p in api.papers(tmp_settings)} == {"2601.00011"}


# ------------------------------------------------------------------------------------------ item 6

def test_a_file_name_that_is_not_utf8_fails_alone(tmp_settings, tmp_path):
    d = tmp_path / "digests"
    d.mkdir()
    (d / "good.jsonl").write_text(GOOD_1 + "\n")
    with open(os.path.join(os.fsencode(d), b"bad-\xff\xfe.jsonl"), "w") as f:
        f.write(GOOD_2 + "\n")
    report = api.ingest([d], tmp_settings)
    assert {p.arxiv_id for p in api.papers(tmp_settings)} == {"2601.00011"}
    [failure] = report.failures
    assert "not valid UTF-8" in failure.message and "bad-\\xff\\xfe.jsonl" in failure.file
    p = cli("--index", str(tmp_path / "cli-idx"), "ingest", "--quiet", str(d))
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert "bad-\\xff\\xfe.jsonl: the file name is not valid UTF-8; rename the file" in p.stdout


# ------------------------------------------------------------------------------------------ item 7

def test_unreadable_entries_are_errors_not_a_traceback(tmp_path):
    """`digestqa ingest /proc`: entries even root may not read (other processes' cwd, fdinfo)."""
    p = cli("--index", str(tmp_path / "idx"), "ingest", "--quiet", "/proc", timeout=300)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "failures:" in p.stdout and "failed: /proc" in p.stdout


def test_an_unreadable_folder_is_one_error_and_the_rest_is_found(tmp_path):
    from rag.ingest import expand_paths

    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.md").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "b.md").write_text("x")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything: an entry root cannot read instead
            files, errors = expand_paths([tmp_path, "/proc/1"])
        else:
            files, errors = expand_paths([tmp_path])
    finally:
        locked.chmod(0o755)
    assert tmp_path / "ok" / "a.md" in files
    assert errors and all("cannot read" in e.message or "cannot resolve" in e.message for e in errors), errors


# ------------------------------------------------------------------------------------------ item 8

def test_a_recursive_glob_does_not_follow_symlink_loops(tmp_path):
    g = tmp_path / "G"
    (g / "sub").mkdir(parents=True)
    (g / "a.txt").write_text("a")
    (g / "sub" / "b.txt").write_text("b")
    (g / "sub" / "c.md").write_text("c")
    (g / ".hidden").mkdir()
    (g / ".hidden" / "h.txt").write_text("h")
    (g / "sub" / "loop").symlink_to(g)  # G/sub/loop -> G
    (g / "self").symlink_to(".")  # G/self -> G
    code = ("import sys, json; from rag.ingest import expand_paths; "
            "files, errors = expand_paths([sys.argv[1]]); print(json.dumps([str(f) for f in files]))")
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code, f"{g}/**/*.txt"], capture_output=True, text=True,
                       cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 30
    assert sorted(json.loads(p.stdout)) == [str(g / "a.txt"), str(g / "sub" / "b.txt")]


def test_glob_matching_agrees_with_glob_glob_on_a_tree_without_loops(tmp_path):
    import glob

    from rag.ingest import expand_paths

    for rel in ("a.txt", "x/b.txt", "x/y/c.txt", "x/y/d.md", "z/e.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    for pattern in ("**/*.txt", "x/**/*.txt", "*/*.txt", "x/**/c.*", "**/y/*"):
        ours = sorted(str(f) for f in expand_paths([str(tmp_path / pattern)])[0])
        ref = sorted(str(Path(m).resolve()) for m in glob.glob(str(tmp_path / pattern), recursive=True)
                     if Path(m).is_file())
        assert ours == ref, pattern


# ------------------------------------------------------------------------------------------ item 9

def test_a_huge_single_paper_is_capped_with_a_warning(tmp_settings, tmp_path):
    words = "model data training graph retrieval recommendation attention token image language".split()
    abstract = " ".join(words[i % 7] + str(i % 13) for i in range(30_000)) + "."  # ~230 KB: ~300 windows
    tldr = "我们研究推荐系统中的语义编号与多模态检索方法并报告实验结果。" * 20_000  # 600k CJK chars
    f = tmp_path / "huge.jsonl"
    f.write_text(record("2601.00077", "One Enormous Paper", abstract, AI={"tldr": tldr}) + "\n"
                 + GOOD_1 + "\n")
    report = api.ingest([f], tmp_settings)
    assert report.ok and any("max_chunks_per_paper" in n and "One Enormous Paper" in n for n in report.notes)
    store_chunks = api.stats(tmp_settings)["chunks"]
    assert store_chunks <= tmp_settings.max_chunks_per_paper + 10, store_chunks
    hits = api.retrieve("语义编号 多模态检索", tmp_settings, mode="bm25")
    assert hits and hits[0].arxiv_id == "2601.00077"
    p = cli("--index", tmp_settings.index_dir, "stats")
    assert p.returncode == 0


def test_the_cap_keeps_windows_of_every_field():
    from rag.chunk import chunk_papers
    from rag.ingest import _capped, _Run
    from rag.types import Paper

    s = Settings(index_dir="/x", max_chunks_per_paper=6)
    long = " ".join(f"sentence number {i} about retrieval." for i in range(3000))
    paper = Paper(paper_id="p1", title="T", abstract=long, tldr_en="A short English summary.",
                  tldr_zh="一个简短的中文摘要。")
    run = _Run(s, None)
    kept = _capped(chunk_papers([paper], s), run)
    assert len(kept) == 6 and {"abstract", "tldr_en", "tldr_zh", "meta"} <= {c.field for c in kept} | {"meta"}
    assert {"tldr_en", "tldr_zh"} <= {c.field for c in kept} and run.notes


# ------------------------------------------------------------------------------------------ item 13

@pytest.mark.parametrize("args, expect", [
    (["--since", "notadate"], "'notadate' is not a date"),
    (["--until", "yesterday"], "'yesterday' is not a date"),
    (["--since", "2025-02-30"], "not a date"),
    (["--top-k", "-1"], "top-k must be between 1 and 100"),
    (["--top-k", "0"], "top-k must be between 1 and 100"),
    (["--top-k", "many"], "not a whole number"),
    (["--since", "2025-12-31", "--until", "2025-01-01"], "is after --until"),
])
def test_cli_filters_are_checked(sample_settings, args, expect):
    p = cli("--index", sample_settings.index_dir, "ask", "which papers use RQ-VAE semantic IDs", *args)
    assert p.returncode == 2 and expect in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.strip() == ""


def test_cli_partial_dates_still_work(sample_settings):
    p = cli("--index", sample_settings.index_dir, "ask", "which papers use RQ-VAE semantic IDs", "--json",
            "--since", "2025", "--until", "2025-12", "--top-k", "3")
    assert p.returncode == 0, p.stderr
    assert 0 < len(json.loads(p.stdout)["sources"]) <= 3


def test_api_filters_are_checked(sample_settings):
    for f in (Filters(top_k=-1), Filters(since="notadate"), Filters(until="yesterday"),
              Filters(since="2025-12-31", until="2025-01-01")):
        with pytest.raises(ValueError):
            api.ask("which papers use RQ-VAE semantic IDs", sample_settings, f)
        with pytest.raises(ValueError):
            api.retrieve("which papers use RQ-VAE semantic IDs", sample_settings, f)


# ------------------------------------------------------------------------------------------ item 14

def test_openai_embedder_without_a_key_is_one_line(tmp_path):
    p = cli("--index", str(tmp_path / "idx"), "--embedder", "openai:text-embedding-3-small", "ingest", "--quiet",
            str(api.sample_paths()[0]))
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    [line] = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert "needs OPENAI_API_KEY" in line and "--embedder minilm-onnx" in line


def test_openai_embedder_that_cannot_connect_is_one_line_and_loses_nothing(tmp_path):
    idx = str(tmp_path / "idx")
    first = cli("--index", idx, "ingest", "--quiet", str(api.sample_paths()[0]))
    assert first.returncode == 0, first.stderr
    s = Settings(index_dir=idx)
    before = api.stats(s)
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-test"}
    p = cli("--index", idx, "--embedder", "openai:text-embedding-3-small", "ingest", "--quiet",
            *map(str, api.sample_paths()), env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-2000:]
    [line] = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert "embedder openai:text-embedding-3-small failed at http://127.0.0.1:9/v1" in line
    assert api.stats(s) == before  # the minilm index is untouched


def test_utf16_digests_parse_like_utf8(tmp_path):
    seed = api.sample_paths()[0]
    text = seed.read_text(encoding="utf-8")
    want = parse_file(seed).papers
    for name, data in (("bom.md", text.encode("utf-16")), ("le.md", text.encode("utf-16-le")),
                       ("be.md", text.encode("utf-16-be"))):
        (tmp_path / name).write_bytes(data)
        got = parse_file(tmp_path / name)
        assert not got.errors, (name, got.errors)
        assert [(p.paper_id, p.title, p.abstract) for p in got.papers] == \
            [(p.paper_id, p.title, p.abstract) for p in want], name
    (tmp_path / "bin.md").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    assert "binary file" in parse_file(tmp_path / "bin.md").errors[0].message
