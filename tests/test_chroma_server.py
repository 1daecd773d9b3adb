"""Server mode: the index's vectors live in a real `chroma run` server (chromadb.HttpClient), not on disk here."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _chroma_exe() -> Path:
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        pytest.fail(f"the `chroma` console script is missing next to {sys.executable}; reinstall chromadb")
    return exe


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"chroma server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if _heartbeat(url):
            return
        time.sleep(0.3)
    pytest.fail(f"chroma server did not answer {url} within {timeout:.0f} s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """A real Chroma server on a free loopback port, persisting into a temp dir; stopped afterwards."""
    root = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    url = f"http://{HOST}:{port}"
    log = root / "server.log"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "CHROMA_TELEMETRY": "False"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(_chroma_exe()), "run", "--path", str(root / "db"), "--host", HOST,
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=root)
    try:
        _wait_ready(proc, url, log)
        yield {"url": url, "port": port, "db": root / "db", "proc": proc}
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def server_index(chroma_server, tmp_path_factory):
    """Settings pointing at the server, with the bundled sample ingested through it."""
    from rag import api
    from rag.config import Settings

    s = Settings(index_dir=str(tmp_path_factory.mktemp("server-index")), chroma_url=chroma_server["url"],
                 answerer="extractive")
    report = api.ingest(api.sample_paths(), s)
    return s, report


def _server_count(chroma_server, name: str) -> int:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(host=HOST, port=chroma_server["port"],
                                 settings=ChromaSettings(anonymized_telemetry=False))
    return client.get_collection(name).count()


def test_ingest_puts_vectors_in_the_server(chroma_server, server_index):
    from rag import api

    s, report = server_index
    assert report.ok, report.failures
    assert report.chunks_added > 0 and report.papers_new > 0
    stats = api.stats(s)
    assert stats["chroma"] == chroma_server["url"]
    assert stats["chunks"] == report.chunks_added
    assert _server_count(chroma_server, s.collection_name) == stats["vectors"] > 0
    assert (chroma_server["db"] / "chroma.sqlite3").stat().st_size > 0


def test_no_local_chroma_data(server_index):
    s, _ = server_index
    local = Path(s.index_dir) / "chroma"
    assert not local.exists() or not any(local.iterdir()), f"local Chroma data written to {local}"


def test_ask_through_the_server(server_index):
    from rag import api

    s, _ = server_index
    answer = api.ask("哪篇论文在抖音搜索部署了？", s)
    assert not answer.abstained, answer.text
    cited = {c.arxiv_id for c in answer.citations}
    assert "2511.10962" in cited, (answer.text, cited)
    dense = api.retrieve("semantic IDs for generative retrieval", s, mode="dense")
    assert dense and all(h.passages for h in dense)


def test_reingest_adds_nothing(chroma_server, server_index):
    from rag import api

    s, first = server_index
    again = api.ingest(api.sample_paths(), s)
    assert again.ok, again.failures
    assert again.files_skipped == again.files == first.files
    assert (again.chunks_added, again.chunks_removed, again.papers_new) == (0, 0, 0)
    assert _server_count(chroma_server, s.collection_name) == api.stats(s)["vectors"]
    assert api.stats(s)["chunks"] == first.chunks_added
