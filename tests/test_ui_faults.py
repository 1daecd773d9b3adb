"""Issue 12 item 15: UI ingest jobs answer at once and report progress (a big upload does not leave a small
one without a reply), re-uploading the same file adds no copy and no source, logins are throttled."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from rag import api
from rag.config import Settings
from rag.types import IngestReport
from ui.controller import Controller


def upload(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / "gradio" / name
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(data)
    return str(p)


def test_a_big_ingest_does_not_leave_a_small_upload_without_a_reply(tmp_path, monkeypatch):
    release = threading.Event()
    order: list[str] = []

    def ingest(paths, settings=None, progress=None, **kw):
        names = [Path(p).name for p in paths]
        order.append(names[0])
        if any("big" in n for n in names):
            for i in range(3):
                progress(i, 100, "embed")
            release.wait(30)  # e.g. a 140 KB .gz that expands to 40 MB of records
        return IngestReport(files=len(paths), papers_new=1, chunks_added=2, seconds=0.1)

    monkeypatch.setattr(api, "ingest", ingest)
    monkeypatch.setattr(api, "check_files", lambda paths, settings=None: [])
    ctl = Controller(Settings(index_dir=str(tmp_path / "idx")))
    t0 = time.monotonic()
    ctl.submit_uploads([upload(tmp_path, "big.jsonl.gz", b"\x1f\x8b" + b"x" * 140_000)])
    deadline = time.monotonic() + 10
    while "embed 2/100" not in ctl.jobs_html() and time.monotonic() < deadline:
        time.sleep(0.02)
    html = ctl.submit_uploads([upload(tmp_path, "big2.jsonl", b"y" * 90_000)])
    html = ctl.submit_uploads([upload(tmp_path, "tiny.md", b"# arXiv Daily Report\n")])
    assert time.monotonic() - t0 < 5, "the upload clicks must answer at once"
    assert "Ingesting job 1 (big.jsonl.gz): embed 2/100 2%" in html
    assert "Queued job 3 (tiny.md): #1 in line" in html and "Queued job 2 (big2.jsonl): #2 in line" in html
    release.set()
    deadline = time.monotonic() + 30
    while ctl.finished_jobs() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ctl.finished_jobs() == 3
    assert [n.split("_", 1)[1] for n in order] == ["big.jsonl.gz", "tiny.md", "big2.jsonl"]  # smallest queued first
    assert ctl.jobs_html().count("Ingested 1 file") == 3


def test_a_job_that_fails_reports_it_and_removes_its_staged_copies(tmp_path, monkeypatch):
    def ingest(paths, settings=None, progress=None, **kw):
        raise RuntimeError("embedder exploded")

    monkeypatch.setattr(api, "ingest", ingest)
    monkeypatch.setattr(api, "check_files", lambda paths, settings=None: [])
    ctl = Controller(Settings(index_dir=str(tmp_path / "idx")))
    html = ctl.ingest_uploads([upload(tmp_path, "day.md", b"# digest\n")])
    assert "RuntimeError: embedder exploded" in html
    assert not list((tmp_path / "idx" / "uploads").iterdir())


def test_uploading_the_same_file_again_adds_no_copy_and_no_source(tmp_settings, tmp_path):
    seed = api.sample_paths()[0]
    ctl = Controller(tmp_settings)
    first = ctl.ingest_uploads([upload(tmp_path, seed.name, seed.read_bytes())])
    assert "Ingested 1 file" in first
    again = ctl.ingest_uploads([upload(tmp_path, seed.name, seed.read_bytes())])
    assert "1 file(s) unchanged" in again
    assert len(list((Path(tmp_settings.index_dir) / "uploads").iterdir())) == 1
    assert api.stats(tmp_settings)["sources"] == 1


def test_login_throttle_locks_a_user_out_after_repeated_wrong_passwords():
    from ui.app import LoginThrottle

    now = [0.0]
    t = LoginThrottle("ada", "s3cret", limit=5, window=300, lock=30, clock=lambda: now[0])
    assert t.check("ada", "s3cret")
    for _ in range(5):
        assert not t.check("ada", "guess")
    assert t.locked_for("ada") == 30 and not t.check("ada", "s3cret")  # even the right password waits
    now[0] += 61  # the refused right password was a failure too: the cool-down doubled
    assert t.check("ada", "s3cret") and t.locked_for("ada") == 0
    for i in range(60):  # many user names: everyone waits
        t.check(f"user{i}", "x")
    assert t.locked_for("ada") > 0 and not t.check("ada", "s3cret")


def test_the_served_login_is_throttled(tmp_path, monkeypatch):
    """Real server: after 5 wrong passwords the right one is refused too; each wrong one took >= 1 s."""
    from ui.app import launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = launch(Settings(index_dir=str(tmp_path / "i")), port=port, auth="ada:s3cret", prevent_thread_lock=True,
                 quiet=True)

    def login(password: str) -> int:
        data = urllib.parse.urlencode({"username": "ada", "password": password}).encode()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", data=data, timeout=30) as r:
                assert json.loads(r.read())["success"]
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        assert login("s3cret") == 200
        t0 = time.monotonic()
        assert [login("wrong") for _ in range(5)] == [400] * 5
        assert time.monotonic() - t0 >= 5.0
        assert login("s3cret") == 400
    finally:
        app.close()


def test_the_library_shows_a_damaged_index_and_its_fix(tmp_path, monkeypatch):
    from rag.store import IndexDamaged

    def stats(settings=None):
        raise IndexDamaged("index file /x/catalogue-a.sqlite is damaged (DatabaseError: database disk image is "
                           "malformed); run `digestqa --index /x repair`")

    monkeypatch.setattr(api, "stats", stats)
    html = Controller(Settings(index_dir=str(tmp_path / "idx"))).stats_html()
    assert "catalogue-a.sqlite is damaged" in html and "digestqa --index /x repair" in html
