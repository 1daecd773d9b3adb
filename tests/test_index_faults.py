"""Issue 12 items 1-4: concurrent ingests, interrupted ingests, a deleted Chroma dir, damaged and read-only
index files. Every repro ends in correct data or a one-line error (exit 1 or 2) naming the file and the
command that fixes it; `digestqa doctor` finds the damage and `digestqa repair` fixes it.

The commands run as real `python -m rag.cli` processes (two of them at once for item 1).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import api
from rag.config import Settings
from rag.store import open_store

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PAPERS = 36
QUESTION = "which papers use RQ-VAE semantic IDs"


def cli(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=full,
                          cwd=str(REPO), timeout=timeout)


def popen(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "rag.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO))


def one_error(p: subprocess.CompletedProcess, code: int = 2) -> str:
    """The single 'error: ...' line of a failed command (no traceback)."""
    assert p.returncode == code, (p.returncode, p.stdout[-500:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    return errors[0]


@pytest.fixture
def index_copy(sample_settings, tmp_path) -> Settings:
    """A private copy of the session's sample index (36 papers) to damage."""
    dest = tmp_path / "idx"
    shutil.copytree(sample_settings.index_dir, dest, ignore=shutil.ignore_patterns("write.lock"))
    return Settings(index_dir=str(dest), answerer="extractive")


def one_row_digest(i: int) -> str:
    aid = f"2601.0000{i}"
    return (f"# arXiv Daily Report - 0{i}-Jan-2026\n\n| Title | Link | abstract | author |\n| --- | --- | --- | --- |\n"
            f"| Lockstep {i}: Concurrent Writers Never Lose Papers | [https://arxiv.org/abs/{aid}]"
            f"(https://arxiv.org/abs/{aid}) | We study write locks number {i} for paper indexes and show that "
            f"serialised ingests keep every record of experiment {i}. | Ada Lovelace |\n")


# ------------------------------------------------------------------------------------------ item 1

def test_two_ingests_into_one_index_at_once_keep_every_paper(tmp_path):
    """The issue's repro: the sample (36 papers) and four one-row digests ingested by two processes at
    once into a fresh index; was 36 papers (or a 'database is locked' traceback), both exit 0."""
    from rag.store import lock_holder

    b = tmp_path / "B"
    b.mkdir()
    for i in range(1, 5):
        (b / f"2026-01-0{i}.md").write_text(one_row_digest(i))
    idx = tmp_path / "idx"
    sample = str(api.sample_paths()[0].parent)
    first = popen("--index", str(idx), "ingest", "--quiet", sample)
    deadline = time.monotonic() + 120
    while lock_holder(idx) != first.pid and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock_holder(idx) == first.pid, "the first ingest never took the index's write lock"
    second = popen("--index", str(idx), "ingest", "--quiet", str(b))
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert f"another ingest is running (pid {first.pid}); waiting" in err2
    s = Settings(index_dir=str(idx))
    st = api.stats(s)
    assert st["papers"] == SAMPLE_PAPERS + 4 and st["sources"] == 5 + 4
    assert {f"2601.0000{i}" for i in range(1, 5)} <= {p.arxiv_id for p in api.papers(s)}
    assert cli("--index", str(idx), "doctor").returncode == 0


def test_the_write_lock_serialises_threads_and_names_the_holder(tmp_path):
    """Threads of one process (the UI's ingest worker and a CLI-like caller) wait for each other too."""
    import threading

    from rag.store import lock_holder, writer_lock

    s = Settings(index_dir=str(tmp_path / "idx"))
    order, waits = [], []
    with writer_lock(s):
        assert lock_holder(s.index_dir) == os.getpid()

        def other():
            with writer_lock(s, on_wait=waits.append):
                order.append("second")

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)
        order.append("first")
    t.join(10)
    assert order == ["first", "second"] and waits == [f"another ingest is running (pid {os.getpid()}); waiting"]
    assert lock_holder(s.index_dir) is None


# ------------------------------------------------------------------------------------------ item 2

def test_ask_after_an_interrupted_first_ingest_says_so_and_loads_no_sample(tmp_settings, monkeypatch):
    import rag.embed as embed
    import rag.ingest as ingest_mod

    real = embed.get_embedder(tmp_settings)

    class DiesSecond:
        name, dim, calls = real.name, real.dim, 0

        def embed(self, texts):
            DiesSecond.calls += 1
            if DiesSecond.calls == 2:
                raise KeyboardInterrupt
            return real.embed(texts)

    monkeypatch.setattr(ingest_mod, "_EMBED_COMMIT", 20)
    monkeypatch.setattr(embed, "get_embedder", lambda s: DiesSecond())
    with pytest.raises(KeyboardInterrupt):
        api.ingest(api.sample_paths(), tmp_settings)
    p = cli("--index", tmp_settings.index_dir, "ask", QUESTION, "--json")
    line = one_error(p)
    assert "interrupted" in line and "run that ingest again" in line and p.stdout == ""
    st = api.stats(tmp_settings)
    assert st["papers"] == st["chunks"] == 0 and "unfinished" in st  # the sample was not loaded into it
    assert "interrupted ingest" in cli("--index", tmp_settings.index_dir, "stats").stdout


# ------------------------------------------------------------------------------------------ item 3

def test_a_deleted_chroma_dir_is_an_error_until_repair_re_embeds(index_copy, sample_settings):
    idx = index_copy.index_dir
    shutil.rmtree(Path(idx) / "chroma")
    st = cli("--index", idx, "stats")
    assert st.returncode == 0 and "chroma is missing" in st.stdout and "repair" in st.stdout
    line = one_error(cli("--index", idx, "ask", QUESTION))
    assert f"{idx}/chroma is damaged" in line and f"digestqa --index {idx} repair" in line
    line = one_error(cli("--index", idx, "ingest", "--quiet", *map(str, api.sample_paths())))
    assert "chroma is damaged" in line  # re-ingesting skips unchanged files: it says what fixes it instead
    doc = cli("--index", idx, "doctor")
    assert doc.returncode == 1 and "FAIL chroma" in doc.stdout
    fix = cli("--index", idx, "repair", "--quiet")
    assert fix.returncode == 0, fix.stderr
    assert "re-embedding them" in fix.stdout
    assert cli("--index", idx, "doctor").returncode == 0
    dense = [h.paper_id for h in api.retrieve(QUESTION, index_copy, mode="dense")]
    assert dense == [h.paper_id for h in api.retrieve(QUESTION, sample_settings, mode="dense")]
    assert json.loads(cli("--index", idx, "ask", QUESTION, "--json").stdout)["citations"]


def test_api_ask_on_a_deleted_chroma_dir_raises_index_damaged(index_copy):
    from rag.store import IndexDamaged

    shutil.rmtree(Path(index_copy.index_dir) / "chroma")
    with pytest.raises(IndexDamaged, match=r"chroma is damaged .*repair"):
        api.ask(QUESTION, index_copy)


# ------------------------------------------------------------------------------------------ item 4

def _catalogue(settings: Settings) -> Path:
    return Path(settings.index_dir) / f"catalogue-{settings.collection_name}.sqlite"


def test_a_half_truncated_catalogue_names_itself_and_repair_salvages_it(index_copy):
    idx, db = index_copy.index_dir, _catalogue(index_copy)
    store = open_store(index_copy)  # fold the WAL into the file, as a clean close does
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    os.truncate(db, db.stat().st_size // 2)
    for args in (["stats"], ["papers"], ["ask", QUESTION], ["ingest", "--quiet", str(api.sample_paths()[0])]):
        line = one_error(cli("--index", idx, *args))
        assert f"index file {db} is damaged" in line and f"digestqa --index {idx} repair" in line, (args, line)
    doc = cli("--index", idx, "doctor")
    assert doc.returncode == 1 and "FAIL catalogue" in doc.stdout and str(db) in doc.stdout
    fix = cli("--index", idx, "repair", "--quiet")
    assert fix.returncode in (0, 1), fix.stderr
    assert "moved to" in fix.stdout and list(Path(idx).glob(f"{db.name}.damaged-*"))
    assert cli("--index", idx, "doctor").returncode == 0  # consistent with what was salvaged
    again = cli("--index", idx, "ingest", "--quiet", *map(str, api.sample_paths()))
    assert again.returncode == 0, again.stderr
    assert api.stats(index_copy)["papers"] == SAMPLE_PAPERS and cli("--index", idx, "doctor").returncode == 0


@pytest.mark.parametrize("damage", ["manifest.json", "npy"])
def test_damaged_bm25_files_are_rebuilt_by_ask_and_by_a_re_ingest(index_copy, damage):
    idx = index_copy.index_dir
    bm25 = Path(idx) / f"bm25-{index_copy.collection_name}"

    def break_it():
        if damage == "manifest.json":
            (bm25 / "manifest.json").write_text("{not json")
        else:
            npy = sorted(bm25.glob("*/*.npy"))[0]
            npy.write_bytes(npy.read_bytes()[:100])

    break_it()
    st = cli("--index", idx, "stats")
    assert st.returncode == 0 and "BM25 files" in st.stdout and "damaged" in st.stdout
    doc = cli("--index", idx, "doctor")
    assert doc.returncode == 1 and "FAIL bm25" in doc.stdout
    p = cli("--index", idx, "ask", QUESTION, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["citations"] and cli("--index", idx, "doctor").returncode == 0
    break_it()  # an ingest with nothing new fixes it too (it used to skip everything)
    p = cli("--index", idx, "ingest", "--quiet", *map(str, api.sample_paths()))
    assert p.returncode == 0 and "BM25 files were damaged" in p.stdout, p.stdout + p.stderr
    assert cli("--index", idx, "doctor").returncode == 0


def read_only(idx: str, *args: str) -> subprocess.CompletedProcess:
    """Run a command on ``idx`` made read-only: a read-only bind mount when root (chmod does not stop
    root), else the permission bits."""
    cmd = [sys.executable, "-m", "rag.cli", "--index", idx, *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", idx], check=True)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=600)
        finally:
            subprocess.run(["chmod", "-R", "u+w", idx], check=True)
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("running as root without `unshare -m`: cannot make a directory read-only for root")
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", idx, *cmd], capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=600)


def test_read_only_commands_work_on_a_read_only_index(index_copy):
    idx = index_copy.index_dir
    store = open_store(index_copy)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    for name in os.listdir(idx):  # as a cleanly closed index looks
        if name.endswith(("-wal", "-shm")):
            os.remove(Path(idx) / name)
    st = read_only(idx, "stats")
    assert st.returncode == 0 and "papers: 36" in st.stdout, st.stderr
    papers = read_only(idx, "papers", "--json")
    assert papers.returncode == 0 and len(json.loads(papers.stdout)) == SAMPLE_PAPERS, papers.stderr
    ask = read_only(idx, "ask", QUESTION, "--json")
    assert ask.returncode == 0 and json.loads(ask.stdout)["citations"], ask.stderr
    doc = read_only(idx, "doctor")
    assert doc.returncode == 0 and "FAIL" not in doc.stdout, doc.stdout + doc.stderr
    for args in (["ingest", "--quiet", str(api.sample_paths()[0])], ["repair", "--quiet"]):
        line = one_error(read_only(idx, *args))
        assert "cannot write" in line and idx in line and "read-only" in line, line


def test_readme_when_something_goes_wrong_matches_the_code():
    import re

    from rag.cli import build_parser

    section = (REPO / "README.md").read_text(encoding="utf-8").split("## When something goes wrong", 1)[1]
    section = section.split("\n## ", 1)[0]
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(re.findall(r"digestqa (?:--index DIR )?([a-z]+)", section)) <= set(sub.choices)
    source = "".join(p.read_text(encoding="utf-8") for p in (REPO / "rag").rglob("*.py"))
    for quoted, code in (("another ingest is running (pid N); waiting", "another ingest is running (pid {pid}); waiting"),
                         ("unfinished: N passages of an interrupted", "passages of an interrupted ingest"),
                         ("lost (ingest it again): FILE", "lost (ingest it again): {f}"),
                         ("is damaged (WHAT); run `digestqa --index DIR repair`", "is damaged ({what}); run `digestqa")):
        assert quoted in section and code in source, quoted
    s = Settings(index_dir="/x")
    for field, shown in (("llm_timeout", "60 s"), ("llm_stream_timeout", "300 s"),
                         ("llm_connect_timeout", "10 s"), ("llm_retries", "3"), ("max_chunks_per_paper", "64")):
        assert f"`{field}` ({shown}" in section, field
        assert f"{getattr(s, field):g}" == shown.split()[0], field
