"""The web UI in a real browser (Debian chromium via Playwright) against the real pipeline.

Needs: /usr/bin/chromium (apt-get install chromium) and the playwright Python package (no browser download).
The app runs in a subprocess whose sitecustomize logs every socket connect/DNS lookup and makes any
non-local one fail, so the test also proves the app makes no outbound requests.
Screenshots: tests/artifacts/ui/*.png (or $DIGESTQA_UI_ARTIFACTS).
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
UPLOAD = ROOT.parent / "shared" / "corpora" / "arxiv_daily_report_table" / "15-May-2025" / "README.md"
ARTIFACTS = Path(os.environ.get("DIGESTQA_UI_ARTIFACTS", ROOT / "tests" / "artifacts" / "ui"))
LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SLOW = 180_000  # ms; two shared cores, first answer loads the embedder

SITECUSTOMIZE = r'''
import os, socket
_LOG = os.environ["DQ_CONNECT_LOG"]
_LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", None, ""}
def _log(kind, host):
    with open(_LOG, "a") as f:
        f.write(f"{kind} {host}\n")
def _wrap_connect(orig):
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            _log("connect", host)
            if host not in _LOCAL and not str(host).startswith("127."):
                raise OSError(f"blocked outbound connect to {host}")
        return orig(self, address)
    return connect
socket.socket.connect = _wrap_connect(socket.socket.connect)
socket.socket.connect_ex = _wrap_connect(socket.socket.connect_ex)
_gai = socket.getaddrinfo
def getaddrinfo(host, *a, **k):
    h = host.decode() if isinstance(host, bytes) else host
    _log("dns", h)
    if h not in _LOCAL and not str(h).startswith("127."):
        raise socket.gaierror(f"blocked DNS lookup of {h}")
    return _gai(host, *a, **k)
socket.getaddrinfo = getaddrinfo
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 420) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"app did not answer at {url} within {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium")
    tmp = tmp_path_factory.mktemp("ui_browser")
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    connect_log, app_log = tmp / "connects.log", tmp / "app.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DIGESTQA_"))}
    env.update(PYTHONPATH=f"{tmp / 'site'}{os.pathsep}{ROOT}", DQ_CONNECT_LOG=str(connect_log),
               GRADIO_ANALYTICS_ENABLED="False", NO_PROXY="*")  # offline: the auto answerer is extractive
    port = _free_port()
    cmd = [sys.executable, "-m", "ui.app", "--port", str(port), "--index", str(tmp / "index"), "--sample"]
    with open(app_log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_http(url, proc, app_log)
        yield {"url": url, "connect_log": connect_log, "app_log": app_log, "index": tmp / "index"}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def _ask(page, question: str):
    """Type a question, submit, wait for the finished answer bubble; returns it."""
    from playwright.sync_api import expect

    before = page.locator("#dq-chat .dq-answer:not(.dq-streaming)").count()
    page.locator("#dq-question textarea").fill(question)
    page.locator("#dq-ask").click()
    done = page.locator("#dq-chat .dq-answer:not(.dq-streaming)")
    expect(done).to_have_count(before + 1, timeout=SLOW)
    return done.last


def _check_cited_card(page, answer, expect_id: str | None = None) -> str:
    """Click each [n] of ``answer``; its card must become active; returns the arXiv id checked."""
    from playwright.sync_api import expect

    cites = answer.locator("a.dq-cite")
    assert cites.count() >= 1, f"answer has no citation: {answer.inner_text()}"
    checked = []
    for i in range(cites.count()):
        href = cites.nth(i).get_attribute("href")
        assert href and re.fullmatch(r"#src-\d+-\d+", href), href
        cites.nth(i).click()
        card = page.locator(href)
        expect(card).to_have_class(re.compile(r"\bdq-active\b"))
        expect(card).to_be_in_viewport()
        arxiv = card.get_attribute("data-arxiv")
        if arxiv:
            link = card.locator("a.dq-arxiv")
            assert link.get_attribute("href") == f"https://arxiv.org/abs/{arxiv}"
            assert link.get_attribute("target") == "_blank"
            assert re.fullmatch(r"\d{4}\.\d{4,5}", arxiv), arxiv
            expect(card.locator(".dq-support mark")).not_to_be_empty()
            checked.append(arxiv)
    assert checked, "no cited card had an arXiv link"
    if expect_id:
        assert expect_id in checked, f"expected {expect_id} among cited {checked}"
    return checked[0]


def test_chat_cite_upload_and_no_outbound(server, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server["url"])
    expect(page.locator("#dq-status")).to_contain_text("extractive", timeout=SLOW)
    expect(page.locator("#dq-status")).to_contain_text("offline: no OPENAI_API_KEY")

    # 1. the RQ-VAE question: streamed answer with a citation that opens its source card
    answer = _ask(page, "which papers use RQ-VAE semantic IDs")
    _shot(page, "01_chat_answer.png")
    _check_cited_card(page, answer)
    _shot(page, "02_source_card.png")

    # 2. a Chinese example question (one click) cites the Douyin paper; its card toggles to the Chinese summary
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#dq-chat .dq-answer")).to_have_count(0)
    page.get_by_role("button", name="哪篇论文在抖音搜索部署了？").click()
    answer = page.locator("#dq-chat .dq-answer:not(.dq-streaming)")
    expect(answer).to_have_count(1, timeout=SLOW)
    expect(answer).to_contain_text("抖音")
    arxiv = _check_cited_card(page, answer.last, expect_id="2511.10962")
    card = page.locator(f'.dq-card[data-arxiv="{arxiv}"]').first
    expect(card.locator(".dq-pane-en")).to_be_visible()
    card.locator("label", has_text="中文").click()
    expect(card.locator(".dq-pane-zh")).to_be_visible()
    expect(card.locator(".dq-pane-en")).to_be_hidden()
    expect(card.locator(".dq-pane-zh")).to_contain_text(re.compile(r"[\u4e00-\u9fff]{4}"))
    _shot(page, "03_chinese_question_zh_summary.png")

    # 3. upload a digest that is not in the sample; its papers appear in the library table
    page.get_by_role("tab", name="Library").click()
    page.locator("#dq-upload input[type=file]").set_input_files(str(UPLOAD))
    page.locator("#dq-ingest").click()
    expect(page.locator("#dq-report .dq-ok")).to_contain_text("Ingested 1 file", timeout=SLOW)
    page.locator("#dq-search textarea, #dq-search input").first.fill("Alipay")
    expect(page.locator("#dq-table")).to_contain_text("2503.21098", timeout=30_000)
    expect(page.locator("#dq-table")).to_contain_text("Alleviating LLM-based Generative Retrieval Hallucination")
    _shot(page, "04_library_after_upload.png")
    uploads = list((server["index"] / "uploads").glob("*_README.md"))
    assert len(uploads) == 1, uploads

    # 4. a question only that digest answers cites the right paper
    page.get_by_role("tab", name="Chat").click()
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#dq-chat .dq-answer")).to_have_count(0)
    answer = _ask(page, "Which paper reduces hallucination of LLM-based generative retrieval in Alipay search?")
    _check_cited_card(page, answer, expect_id="2503.21098")
    _shot(page, "05_uploaded_digest_answer.png")

    # 5. nothing left 127.0.0.1: neither the browser nor the app process
    hosts = {re.sub(r"^[a-z]+://([^/]+)/.*$", r"\1", u) for u in requests if "://" in u}
    assert {h.rsplit(":", 1)[0] for h in hosts} <= {"127.0.0.1"}, hosts
    attempts = [line.split(" ", 1) for line in server["connect_log"].read_text().splitlines()]
    outbound = {h for _, h in attempts if h not in LOCAL and not h.startswith("127.")}
    assert attempts, "connect log is empty: the sitecustomize hook did not load"
    assert not outbound, f"app tried to reach {outbound}"
    page.close()


def test_whats_new_view_and_answer_export(server, browser):
    """A watch added in the What's new tab lists its papers with a per-week plot; the last answer copies out
    as Markdown with numbered arXiv references."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server["url"])
    expect(page.locator("#dq-status")).to_contain_text("extractive", timeout=SLOW)
    page.get_by_role("tab", name="What's new").click()
    page.locator("#dq-watch-since textarea, #dq-watch-since input").first.fill("2000-01-01")
    page.locator("#dq-watch-new textarea, #dq-watch-new input").first.fill("semantic IDs")
    page.locator("#dq-watch-add").click()
    expect(page.locator("#dq-watch-status")).to_contain_text("Watching", timeout=SLOW)
    expect(page.locator("#dq-watch-list")).to_contain_text("2508.15281", timeout=SLOW)
    expect(page.locator("#dq-watch-list")).to_contain_text("why:")
    expect(page.locator("#dq-watch-plot img, #dq-watch-plot svg").first).to_be_visible(timeout=SLOW)
    _shot(page, "06_whats_new.png")

    page.get_by_role("tab", name="Chat").click()
    _ask(page, "哪篇论文在抖音搜索部署了？")
    page.locator("#dq-export").get_by_text("Copy as Markdown / BibTeX").click()
    page.locator("#dq-export-md").click()
    expect(page.locator("#dq-export-out")).to_contain_text("References", timeout=SLOW)
    expect(page.locator("#dq-export-out")).to_contain_text("https://arxiv.org/abs/2511.10962")
    page.locator("#dq-export-bib").click()
    expect(page.locator("#dq-export-out")).to_contain_text("archivePrefix", timeout=SLOW)
    _shot(page, "07_export_bibtex.png")
    page.close()
