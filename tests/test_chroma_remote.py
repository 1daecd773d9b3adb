"""Server-mode requests (rag.store._remote_call): a lost connection is retried, a timeout is not, and
both end in one ChromaUnavailable naming the server. The real server: tests/test_chroma_server.py."""
from __future__ import annotations

import httpx
import pytest

from rag import store
from rag.store import ChromaUnavailable, _remote_call

URL = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr(store, "_RETRY_PAUSES", (0.0, 0.0))


class Flaky:
    def __init__(self, errors):
        self.errors, self.calls = list(errors), 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ("ok", args, kwargs)


def test_a_refused_connection_is_retried():
    fn = Flaky([httpx.ConnectError("refused"), httpx.RemoteProtocolError("reset")])
    assert _remote_call(URL, fn, 1, k=2) == ("ok", (1,), {"k": 2})
    assert fn.calls == 3


def test_three_refusals_give_one_clear_error():
    fn = Flaky([httpx.ConnectError("refused")] * 3)
    with pytest.raises(ChromaUnavailable, match="127.0.0.1:9.*chroma run"):
        _remote_call(URL, fn)
    assert fn.calls == 3


def test_chromadbs_could_not_connect_is_retried_too():
    fn = Flaky([ValueError("Could not connect to a Chroma server. Are you sure it is running?")])
    assert _remote_call(URL, fn)[0] == "ok" and fn.calls == 2


def test_a_timeout_is_not_waited_for_twice():
    fn = Flaky([httpx.ReadTimeout("slow")])
    with pytest.raises(ChromaUnavailable, match="timeout"):
        _remote_call(URL, fn)
    assert fn.calls == 1


def test_other_errors_pass_through():
    fn = Flaky([ValueError("Expected embeddings to be a list")])
    with pytest.raises(ValueError, match="Expected embeddings"):
        _remote_call(URL, fn)
    assert fn.calls == 1


def test_embedded_mode_is_a_plain_call():
    fn = Flaky([httpx.ConnectError("never from an embedded store, but not retried")])
    with pytest.raises(httpx.ConnectError):
        _remote_call(None, fn)
    assert fn.calls == 1


def test_the_http_client_gets_the_timeout(monkeypatch):
    """chromadb's HttpClient is built without a timeout; the store gives its session Settings.chroma_timeout."""
    import chromadb

    class Session:
        timeout = None

    class Server:
        _session = Session()

    class Client:
        _server = Server()

    monkeypatch.setattr(store, "_heartbeat", lambda *a: None)
    monkeypatch.setattr(chromadb, "HttpClient", lambda **kw: Client())
    store._chroma_client.cache_clear()
    try:
        client = store._chroma_client("http://127.0.0.1:9", "", 7.0)
    finally:
        store._chroma_client.cache_clear()
    assert client._server._session.timeout.read == 7.0 and client._server._session.timeout.connect == 7.0
