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
    info = {"url": url, "port": port, "db": root / "db", "proc": proc}
    try:
        _wait_ready(proc, url, log)
        yield info
    finally:
        _stop(info["proc"])  # (test_server_restart replaces it)


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
    assert stats["chroma_collection"].startswith(s.collection_name + "-")  # this index's own collection
    assert _server_count(chroma_server, stats["chroma_collection"]) == stats["vectors"] > 0
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
    assert _server_count(chroma_server, api.stats(s)["chroma_collection"]) == api.stats(s)["vectors"]
    assert api.stats(s)["chunks"] == first.chunks_added


def test_two_indexes_share_a_server(chroma_server, server_index, tmp_path):
    """Two index dirs with the same settings on one server: each has its own collection, so a repair of
    the second (which deletes vectors that belong to none of its chunks) leaves the first one's alone."""
    from rag import api

    s, _ = server_index
    first = api.stats(s)
    other = s.model_copy(update={"index_dir": str(tmp_path / "other-index")})
    smallest = min(api.sample_paths(), key=lambda p: p.stat().st_size)
    assert api.ingest([smallest], other).ok
    second = api.stats(other)
    assert second["chroma_collection"] != first["chroma_collection"]
    api.repair(other)
    assert _server_count(chroma_server, first["chroma_collection"]) == first["vectors"]
    assert _server_count(chroma_server, second["chroma_collection"]) == second["vectors"] > 0
    theirs = {p.paper_id for p in api.papers(other)}
    assert {h.paper_id for h in api.retrieve("semantic IDs", other, mode="dense")} <= theirs


def test_an_index_from_before_keeps_its_collection(chroma_server, tmp_path):
    """A server-mode index built before collections carried the index's id (vectors under the shared
    name, no meta row) still answers from that collection, and records it."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from rag import api
    from rag.config import Settings

    s = Settings(index_dir=str(tmp_path / "old-index"), chroma_url=chroma_server["url"], answerer="extractive")
    smallest = min(api.sample_paths(), key=lambda p: p.stat().st_size)
    assert api.ingest([smallest], s).ok
    own = api.stats(s)["chroma_collection"]
    client = chromadb.HttpClient(host=HOST, port=chroma_server["port"], settings=ChromaSettings(anonymized_telemetry=False))
    old = client.get_or_create_collection(s.collection_name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    got = client.get_collection(own).get(include=["embeddings", "metadatas"])
    old.upsert(ids=got["ids"], embeddings=got["embeddings"], metadatas=got["metadatas"])  # as the old code did
    client.delete_collection(own)
    import sqlite3

    from rag.retrieve import forget_store
    from rag.store import catalogue_path

    forget_store(s)
    with sqlite3.connect(catalogue_path(s)) as db:
        db.execute("DELETE FROM meta WHERE key='chroma_collection'")
    assert api.stats(s)["chroma_collection"] == s.collection_name
    assert api.retrieve("semantic IDs", s, mode="dense")
    assert api.ingest([smallest], s).ok
    assert api.stats(s)["chroma_collection"] == s.collection_name
    client.delete_collection(s.collection_name)


# ---------------------------------------------------------------- a server that is down, stalls or restarts

def _closed_port_url() -> str:
    return f"http://{HOST}:{_free_port()}"  # nothing listens there (the port was free a moment ago)


def test_server_down_is_one_clear_error(server_index):
    """Ask against a server that is not running: a ChromaUnavailable naming the URL and the fix, at once;
    the CLI prints it on one line (exit 2), no traceback."""
    from rag import api
    from rag.store import ChromaUnavailable

    s, _ = server_index
    url = _closed_port_url()
    down = s.model_copy(update={"chroma_url": url})
    t0 = time.monotonic()
    with pytest.raises(ChromaUnavailable) as exc:
        api.ask("semantic IDs for generative retrieval", down)
    assert time.monotonic() - t0 < 20
    assert url in str(exc.value) and "chroma run" in str(exc.value)
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1", "ANONYMIZED_TELEMETRY": "False"}
    r = subprocess.run([sys.executable, "-m", "rag.cli", "--index", s.index_dir, "--chroma-url", url, "ask",
                        "semantic IDs"], capture_output=True, text=True, env=env, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and url in r.stderr, r.stderr[-2000:]


class _StallingProxy:
    """TCP proxy to the real server; while ``stall`` is set, the server's replies are held back."""

    def __init__(self, port: int):
        import threading

        self.stall = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.url = f"http://{HOST}:{self.sock.getsockname()[1]}"
        self.target = port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection((HOST, self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src, dst, reply: bool):
        try:
            while data := src.recv(65536):
                if reply and self.stall.is_set():
                    continue  # swallowed: the client waits for an answer that never comes
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sk in (src, dst):
                try:
                    sk.close()
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def test_stalled_server_times_out(chroma_server, server_index):
    """A server that takes requests but never answers: the query fails after chroma_timeout (chromadb's
    own client has no timeout and would wait for ever); once it answers again, so does the store."""
    import threading

    from rag.store import ChromaUnavailable, open_store

    s, _ = server_index
    proxy = _StallingProxy(chroma_server["port"])
    store = open_store(s.model_copy(update={"chroma_url": proxy.url, "chroma_timeout": 2.0}))
    vec = [384 ** -0.5] * 384
    try:
        assert store.dense_query(vec, 3)
        proxy.stall.set()
        result: dict = {}

        def query():
            try:
                result["hits"] = store.dense_query(vec, 3)
            except Exception as e:  # noqa: BLE001
                result["error"] = e

        t = threading.Thread(target=query, daemon=True)
        t0 = time.monotonic()
        t.start()
        t.join(60)
        assert not t.is_alive(), "the query still waits for a server that does not answer"
        assert isinstance(result.get("error"), ChromaUnavailable), result
        assert proxy.url in str(result["error"]) and time.monotonic() - t0 < 30
        proxy.stall.clear()
        assert store.dense_query(vec, 3)
    finally:
        proxy.stall.clear()
        store.close()
        proxy.close()


def test_server_restart(chroma_server, server_index):
    """The server stops: ask fails with ChromaUnavailable; it starts again on the same port and store
    dir: the same process asks again through its open store and gets the same answer. (Runs last: it
    replaces the module's server process.)"""
    from rag import api
    from rag.store import ChromaUnavailable

    s, _ = server_index
    q = "哪篇论文在抖音搜索部署了？"
    before = api.ask(q, s)
    _stop(chroma_server["proc"])
    with pytest.raises(ChromaUnavailable):
        api.ask(q, s)
    log = chroma_server["db"].parent / "server-restart.log"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "CHROMA_TELEMETRY": "False"}
    with open(log, "wb") as out:
        chroma_server["proc"] = subprocess.Popen(
            [str(_chroma_exe()), "run", "--path", str(chroma_server["db"]), "--host", HOST, "--port",
             str(chroma_server["port"])], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=chroma_server["db"].parent)
    _wait_ready(chroma_server["proc"], chroma_server["url"], log)
    after = api.ask(q, s)
    assert after.text == before.text and after.citations == before.citations
