"""A llama-cpp-python server on 127.0.0.1, and a recording proxy in front of it.

:class:`LlamaServer` starts ``python -m llama_cpp.server`` on a free loopback port, waits until
``/v1/models`` answers and stops it on exit (terminate, then kill).

:class:`RecordingProxy` is a transparent HTTP proxy on 127.0.0.1 that digestqa talks to as its
``OPENAI_BASE_URL``. It relays every request and response byte for byte and records, per chat completion:
the request messages, the streamed text, time to first token, total seconds, and the prompt size in tokens.
llama-cpp-python's server sends no ``usage`` in streamed responses, so after each streamed answer has
been delivered (the client's socket is closed first, so the client's timing does not include it), the
proxy sends the same messages once more, non-streamed with ``max_tokens=1``, and keeps that response's
``usage.prompt_tokens``: the server's own count of the templated prompt. The prompt is still in the
server's KV cache, so this costs one token of evaluation, not a second prompt.
Chat requests are handled one at a time (the server has one slot anyway), so each count runs right after
its own answer, before the next prompt replaces the cache.
"""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te", "upgrade"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerError(RuntimeError):
    """The llama.cpp server did not start; the message carries the end of its log."""


class LlamaServer:
    """``python -m llama_cpp.server`` for one GGUF on 127.0.0.1; a context manager."""

    def __init__(self, model: Path, alias: str, port: int | None = None, threads: int = 2, n_ctx: int = 4096,
                 log_path: Path | None = None, start_timeout: float = 300.0):
        self.model, self.alias, self.threads, self.n_ctx = Path(model), alias, threads, n_ctx
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="llama-")) / "server.log"
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", self.alias,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", str(self.threads),
                "--n_threads_batch", str(self.threads), "--n_ctx", str(self.n_ctx)]

    def start(self) -> "LlamaServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"llama_cpp.server exited with {self.proc.returncode}:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if json.load(r).get("data"):
                        return
            except OSError:
                time.sleep(0.5)
        raise ServerError(f"llama_cpp.server not ready after {self.start_timeout:.0f}s:\n{self._log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------ recording proxy

def sse_text(raw: bytes) -> tuple[str, int]:
    """(content text, number of content chunks) of one SSE stream of chat completion chunks."""
    parts = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        try:
            choices = json.loads(line[5:]).get("choices") or []
        except ValueError:
            continue
        delta = (choices[0].get("delta") or {}) if choices else {}
        if delta.get("content"):
            parts.append(delta["content"])
    return "".join(parts), len(parts)


class RecordingProxy:
    """Relays HTTP to ``backend`` (``http://127.0.0.1:PORT``) and records each chat completion."""

    def __init__(self, backend: str, count_prompt_tokens: bool = True, log_file: Path | None = None):
        host, _, port = backend.split("://", 1)[-1].split("/", 1)[0].partition(":")
        self.backend = (host, int(port or 80))
        self.count_prompt_tokens = count_prompt_tokens
        self.records: list[dict[str, Any]] = []
        self.log_file = Path(log_file) if log_file else None
        self.tag: str | None = None  # set by the caller to the current question id
        self.chat_lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "RecordingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def settled_records(self) -> list[dict[str, Any]]:
        """All records, once the chat request in progress (answer + token count) has finished."""
        with self.chat_lock:
            return list(self.records)

    def add(self, rec: dict[str, Any]) -> None:
        """Keep a record (and append it to ``log_file`` at once, so a long run can be watched)."""
        self.records.append(rec)
        if self.log_file:
            with self.log_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def post_json(self, path: str, body: dict, timeout: float = 900.0) -> dict:
        conn = http.client.HTTPConnection(*self.backend, timeout=timeout)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise OSError(f"HTTP {resp.status}: {data[:300]!r}")
            return json.loads(data)
        finally:
            conn.close()

    def prompt_tokens(self, body: dict) -> int | None:
        """The server's prompt token count for these messages (a 1-token non-streamed request)."""
        probe = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        probe.update(stream=False, max_tokens=1)
        try:
            return (self.post_json("/v1/chat/completions", probe).get("usage") or {}).get("prompt_tokens")
        except (OSError, ValueError):
            return None


def _handler_for(proxy: RecordingProxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._relay(None)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/").endswith("/chat/completions"):
                with proxy.chat_lock:
                    self._chat(body)
            else:
                self._relay(body)

        def _open(self, body: bytes | None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
            conn = http.client.HTTPConnection(*proxy.backend, timeout=3600)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}}
            conn.request(self.command, self.path, body, headers)
            return conn, conn.getresponse()

        def _send_head(self, resp: http.client.HTTPResponse) -> None:
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP:
                    self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()

        def _pump(self, resp: http.client.HTTPResponse, on_block=None) -> bytes:
            raw = bytearray()
            while block := resp.read1(65536):
                if on_block:
                    on_block(block)
                raw += block
                self.wfile.write(block)
                self.wfile.flush()
            return bytes(raw)

        def _relay(self, body: bytes | None) -> None:
            try:
                conn, resp = self._open(body)
            except OSError as e:
                self.send_error(502, f"backend unreachable: {e}")
                return
            try:
                self._send_head(resp)
                self._pump(resp)
            finally:
                conn.close()

        def _chat(self, body: bytes) -> None:
            rec: dict[str, Any] = {"tag": proxy.tag, "started": time.time()}
            t0 = time.perf_counter()
            first: list[float] = []
            try:
                req = json.loads(body or b"{}")
            except ValueError:
                req = {}
            rec.update(messages=req.get("messages"), stream=bool(req.get("stream")), max_tokens=req.get("max_tokens"))
            try:
                conn, resp = self._open(body)
            except OSError as e:
                rec["error"] = f"backend unreachable: {e}"
                proxy.add(rec)
                self.send_error(502, rec["error"])
                return
            try:
                self._send_head(resp)
                raw = self._pump(resp, lambda b: first or not sse_text(b)[1] or first.append(time.perf_counter()))
            except OSError as e:  # the client gave up (timeout) or the server died mid-answer
                rec.update(error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - t0, status=resp.status)
                proxy.add(rec)
                return
            finally:
                conn.close()
            rec["seconds"] = time.perf_counter() - t0
            rec["ttft_seconds"] = (first[0] - t0) if first else None
            rec["status"] = resp.status
            self._finish_client()
            self._fill_usage(rec, req, raw)
            proxy.add(rec)

        def _finish_client(self) -> None:
            """End the client's response now (EOF), before the token count runs."""
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.close_connection = True

        def _fill_usage(self, rec: dict, req: dict, raw: bytes) -> None:
            if rec["stream"]:
                rec["text"], rec["completion_chunks"] = sse_text(raw)
                rec["prompt_tokens"] = proxy.prompt_tokens(req) if proxy.count_prompt_tokens and rec["status"] == 200 else None
                rec["prompt_tokens_from"] = "server usage of a max_tokens=1 replay"
                return
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = {}
            usage = doc.get("usage") or {}
            choices = doc.get("choices") or [{}]
            rec["text"] = (choices[0].get("message") or {}).get("content")
            rec["prompt_tokens"], rec["completion_tokens"] = usage.get("prompt_tokens"), usage.get("completion_tokens")
            rec["prompt_tokens_from"] = "server usage"

    return Handler
