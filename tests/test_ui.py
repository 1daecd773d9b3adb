"""UI handlers with a fake rag.api (fast); the real pipeline is exercised in test_ui_browser.py."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rag import api
from rag.config import Settings
from rag.types import Answer, Citation, FileError, Hit, IngestReport, Paper, Passage, Source
from ui import render
from ui.app import check_bind, parse_auth
from ui.controller import Controller, build_filters
from ui.uploads import safe_name, stage

ROOT = Path(__file__).resolve().parents[1]
EVIL = '<script>alert("x")</script>'
PASSAGE = "We quantise item embeddings with an RQ-VAE into semantic IDs."


def _paper(pid="2511.00001", **kw) -> Paper:
    base = dict(paper_id=pid, arxiv_id=pid, title=f"Semantic IDs {EVIL}", authors=("Ada Lovelace (Uni)", "Bob <b>"),
                abstract=f"Intro. {PASSAGE} More text.", tldr_zh="用 RQ-VAE 生成语义 ID。",
                categories=("cs.IR",), sources=(Source(file="d.txt", date="2025-12-04"),))
    base.update(kw)
    return Paper(**base)


def _answer(question: str, abstained=False, text="RQ-VAE semantic IDs are used by GenRec [1].") -> Answer:
    p = _paper()
    cit = () if abstained else (Citation(1, p.paper_id, p.arxiv_id, p.title, p.url, "abstract", f"Intro. {PASSAGE}",
                                         0.8, evidence=PASSAGE, evidence_support=0.93),)
    hit = Hit(1, p.paper_id, p.arxiv_id, p.title, 0.9, (Passage("c1", "abstract", "en", PASSAGE, 0.9),),
              date="2025-12-04", authors=p.authors)
    other = Hit(2, "2511.00002", "2511.00002", "Other paper", 0.5, (Passage("c2", "tldr_zh", "zh", "x", 0.5),))
    return Answer(question, text, abstained, "extractive", None, "minilm-onnx", cit, (hit, other),
                  timings_ms={"retrieve": 10.0, "answer": 5.0}, reason="offline: no OPENAI_API_KEY or OPENAI_BASE_URL")


class FakeApi:
    def __init__(self):
        self.calls: list[dict] = []
        self.ingested: list[list[Path]] = []

    def ask_stream(self, question, settings=None, filters=None, history=None):
        self.calls.append({"question": question, "filters": filters, "history": list(history or [])})
        abstain = "nothing" in question
        text = "CANNOT_ANSWER" if abstain else "RQ-VAE semantic IDs are used by GenRec [1]."
        for i in range(0, len(text), 7):
            yield text[i:i + 7]
        yield _answer(question, abstained=abstain, text=text)

    def papers(self, settings=None):
        return [_paper(), _paper("2511.00002", title="Other paper", authors=("Zed",), categories=("cs.CL",))]

    def stats(self, settings=None):
        return {"papers": 2, "chunks": 9, "sources": 1, "embedder": "minilm-onnx"}

    def ingest(self, paths, settings=None, progress=None):
        paths = list(paths)
        self.ingested.append(paths)
        if progress:
            progress(1, 1, "done")
        return IngestReport(files=len(paths), papers_new=3, chunks_added=12, seconds=0.5)

    def check_files(self, paths, settings=None):
        return []


@pytest.fixture
def fake(monkeypatch):
    f = FakeApi()
    for name in ("ask_stream", "papers", "stats", "ingest", "check_files"):
        monkeypatch.setattr(api, name, getattr(f, name))
    return f


@pytest.fixture
def ctl(tmp_path):
    return Controller(Settings.from_env(index_dir=str(tmp_path / "idx"), answerer="extractive"))


def test_ask_streams_then_renders_linked_citation_and_card(fake, ctl):
    steps = list(ctl.ask("which papers use RQ-VAE semantic IDs", [], top_k=4))
    streaming = [s for s in steps if "dq-streaming" in s[0][-1]["content"]]
    assert len(streaming) >= 3  # deltas are shown as they arrive
    assert "RQ-VAE" in streaming[-1][0][-1]["content"]
    messages, sources, status, turns, box = steps[-1]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert 'href="#src-1-1"' in messages[1]["content"] and box == ""
    assert 'id="src-1-1"' in sources
    assert 'href="https://arxiv.org/abs/2511.00001"' in sources and 'target="_blank"' in sources
    assert f'Intro. <mark class="dq-evidence">{PASSAGE}</mark>' in sources  # the supporting sentence marked
    assert "support 0.93" in sources
    assert "用 RQ-VAE 生成语义 ID。" in sources and "English abstract" in sources  # EN/ZH toggle
    assert "digest 2025-12-04" in sources and "Ada Lovelace (Uni)" in sources
    assert "Also retrieved (not cited): 1" in sources
    assert "offline: no OPENAI_API_KEY or OPENAI_BASE_URL" in status and "extractive" in status
    assert fake.calls[0]["filters"].top_k == 4
    assert len(turns) == 1


def test_digest_text_is_escaped(fake, ctl):
    *_, (messages, sources, _, _, _) = ctl.ask("q", [])
    assert "<script>" not in sources and "&lt;script&gt;" in sources
    assert "Bob &lt;b&gt;" in sources


def test_follow_up_passes_history_and_keeps_old_cards(fake, ctl):
    *_, first = ctl.ask("which papers use RQ-VAE semantic IDs", [])
    *_, second = ctl.ask("and which one is from 2025?", first[3])
    assert [(a.question, a.text) for a in fake.calls[1]["history"]] == [
        ("which papers use RQ-VAE semantic IDs", "RQ-VAE semantic IDs are used by GenRec [1].")]
    messages, sources = second[0], second[1]
    assert len(messages) == 4
    assert 'href="#src-2-1"' in messages[3]["content"] and 'href="#src-1-1"' in messages[1]["content"]
    assert 'id="src-2-1"' in sources and 'id="src-1-1"' in sources  # old [n] links still resolve


def test_abstained_answer_is_shown_as_such(fake, ctl):
    *_, (messages, sources, *_rest) = ctl.ask("nothing about this", [])
    assert "Not answerable from the indexed digests" in messages[-1]["content"]
    assert "No sources cited." in sources


def test_bad_filter_shows_error_and_keeps_question(fake, ctl):
    *_, (messages, _, _, turns, box) = ctl.ask("q", [], since="04/12/2025")
    assert "dq-error" in messages[-1]["content"] and "YYYY-MM-DD" in messages[-1]["content"]
    assert box == "q" and turns == [] and fake.calls == []


def test_build_filters():
    f = build_filters("2025-11-01", " 2025-12-31 ", " cs.IR ", "", 7)
    assert (f.since, f.until, f.category, f.author, f.top_k) == ("2025-11-01", "2025-12-31", "cs.IR", None, 7)
    with pytest.raises(ValueError, match="after"):
        build_filters("2025-12-31", "2025-01-01", "", "", 5)


def test_unknown_citation_number_is_not_linked():
    out = render.linkify_citations("see [1] and [7] and [1, 2]", 3, {1, 2})
    assert out.count('class="dq-cite"') == 3 and "[7]" in out and 'href="#src-3-2"' in out


def test_library_table_search_and_stats(fake, ctl):
    rows = ctl.table("")
    assert len(rows) == 2 and rows[0][0] in {"2511.00001", "2511.00002"}
    assert [r[0] for r in ctl.table("lovelace")] == ["2511.00001"]
    assert [r[0] for r in ctl.table("2511.00002")] == ["2511.00002"]
    assert ctl.table("no such words") == []
    assert ">9<" in ctl.stats_html() and ctl.categories() == ["cs.CL", "cs.IR"]


def test_library_table_is_capped_newest_first(ctl, monkeypatch):
    from ui.controller import TABLE_MAX_ROWS

    many = [Paper(paper_id=f"2511.{i:05d}", arxiv_id=f"2511.{i:05d}", title=f"Paper {i}",
                  sources=(Source(file="d.md", date=f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"),))
            for i in range(TABLE_MAX_ROWS * 3)]
    monkeypatch.setattr(api, "papers", lambda s=None: many)
    rows = ctl.table("")
    assert len(rows) == TABLE_MAX_ROWS
    dates = [r[3] for r in rows]
    assert dates == sorted(dates, reverse=True) and dates[0] == max(p.date for p in many)
    assert [r[0] for r in ctl.table("Paper 1234")] == ["2511.01234"]  # search reaches past the cap


def test_safe_name_blocks_traversal():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("..\\..\\win.ini") == "win.ini"
    assert safe_name("a b;rm -rf.md") == "a_b_rm_-rf.md"
    assert safe_name("...") == "upload.txt"


def test_stage_copies_inside_uploads_one_copy_per_content_and_name(tmp_path):
    src = tmp_path / "x.md"
    src.write_text("# digest\n")
    a, b = stage(src, "../../x.md", tmp_path / "idx"), stage(src, "x.md", tmp_path / "idx")
    root = (tmp_path / "idx" / "uploads").resolve()
    assert a.path.parent == root and b.path.parent == root
    assert a.path == b.path and a.new and not b.new  # the same upload again: no second copy
    assert a.path.name.endswith("_x.md") and a.path.read_text() == "# digest\n"
    src.write_text("# digest, changed\n")
    c = stage(src, "x.md", tmp_path / "idx")
    assert c.path != a.path and c.new and len(list(root.iterdir())) == 2


def _upload(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / "gradio" / name
    p.parent.mkdir(exist_ok=True)
    p.write_text(text)
    return p


def test_uploads_type_and_size_are_checked(fake, tmp_path):
    c = Controller(Settings.from_env(index_dir=str(tmp_path / "idx"), upload_max_mb=0.001))
    ok = _upload(tmp_path, "day.md", "# arXiv Daily Report - 14-Jul-2025\n")
    exe = _upload(tmp_path, "evil.exe", "MZ")
    big = _upload(tmp_path, "big.md", "x" * 5000)
    html = c.ingest_uploads([str(ok), str(exe), str(big)])
    assert "evil.exe: unsupported file type" in html and "big.md: file is" in html and "upload limit" in html
    assert len(fake.ingested) == 1 and [p.name.endswith("_day.md") for p in fake.ingested[0]] == [True]
    assert "3 new" in html


def test_malformed_upload_is_not_ingested_when_check_files_exists(fake, ctl, tmp_path, monkeypatch):
    def check_files(paths, settings=None):
        return [FileError(str(p), "no digest format recognised", 1) for p in paths if "bad" in p.name]
    monkeypatch.setattr(api, "check_files", check_files, raising=False)
    good = _upload(tmp_path, "good.md", "ok")
    bad = _upload(tmp_path, "bad.md", "garbage")
    html = ctl.ingest_uploads([str(good), str(bad)])
    assert [p.name.endswith("_good.md") for p in fake.ingested[0]] == [True]
    assert "bad.md:1: no digest format recognised" in html  # user's name, not the staged path
    assert not list((Path(ctl.settings.index_dir) / "uploads").glob("*_bad.md"))


def test_ingest_failures_are_listed_per_file(fake, ctl, tmp_path, monkeypatch):
    def ingest(paths, settings=None, progress=None):
        paths = list(paths)
        return IngestReport(files=1, failures=(FileError(str(paths[0]), "table row has 3 cells", 7),))
    monkeypatch.setattr(api, "ingest", ingest)
    html = ctl.ingest_uploads([str(_upload(tmp_path, "day.md", "x"))])
    assert "day.md:7: table row has 3 cells" in html and "1 problem(s)" in html


def test_non_local_host_requires_auth():
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", ("u", "p"))
    with pytest.raises(SystemExit, match="--auth"):
        check_bind("0.0.0.0", None)
    assert parse_auth("u:p:q") == ("u", "p:q")
    with pytest.raises(SystemExit):
        parse_auth("nopassword")


def test_rag_and_ui_handlers_do_not_import_gradio():
    code = ("import sys, rag.api, ui.controller, ui.render, ui.uploads, ui.app; "
            "assert 'gradio' not in sys.modules, 'gradio imported eagerly'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_build_app_has_the_three_tabs(tmp_path):
    from ui.app import build_app

    app = build_app(Settings.from_env(index_dir=str(tmp_path / "idx")))
    labels = {getattr(b, "label", None) for b in app.blocks.values()}
    assert {"Chat", "Library", "Eval"} <= labels
    import os
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_eval_tab_runs_on_sample_in_temp_index(monkeypatch, tmp_path):
    import eval as eval_pkg
    from ui.evaltab import run_eval_ui

    seen = {}

    class Rep:
        metrics = {"recall@5": 0.9}
        report_md = tmp_path / "report.md"
        plot = tmp_path / "plot.png"

    def fake_run_eval(**kw):
        seen.update(kw)
        Rep.report_md.write_text("| metric | value |\n|---|---|\n| recall@5 | 0.900 |\n")
        Rep.plot.write_bytes(b"\x89PNG")
        return Rep

    monkeypatch.setattr(eval_pkg, "run_eval", fake_run_eval)
    s = Settings.from_env(index_dir=str(tmp_path / "user-index"))
    md, png = run_eval_ui(s, limit=10)
    assert "recall@5 | 0.900" in md and png == str(Rep.plot)
    assert seen["temp_index"] is True and seen["limit"] == 10
    assert [Path(p).name for p in seen["corpus"]] == [p.name for p in api.sample_paths()]
    assert not (tmp_path / "user-index").exists()


def test_launch_serves_locally_with_upload_limit(fake, tmp_path):
    """In-process launch on a free port (conftest fails the session on any outbound connect)."""
    import json
    import socket
    import urllib.request

    from ui.app import launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemExit, match="without a login"):
        launch(Settings.from_env(index_dir=str(tmp_path / "i")), host="0.0.0.0", port=port)
    app = launch(Settings.from_env(index_dir=str(tmp_path / "i")), port=port, upload_max_mb=3,
                 prevent_thread_lock=True, quiet=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as r:
            config = json.loads(r.read())
        assert config["max_file_size"] == 3 * 1024 * 1024
        assert app.server_name == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200 and b"digestqa" in r.read()
    finally:
        app.close()


def test_launch_options_ship_css_head_and_local_fonts():
    from ui.app import launch_options

    opts = launch_options()
    assert ".dq-card" in opts["css"] and 'a[href^="#src-"]' in opts["head"]
    fonts = [*opts["theme"]._font, *opts["theme"]._font_mono]
    assert fonts and all(isinstance(f, str) for f in fonts), fonts  # system fonts only, nothing fetched


def test_card_date_says_digest_or_submitted():
    from rag.types import Source
    from ui.render import _date_label

    digest = Paper(paper_id="1", title="T", sources=(Source("a.md", "2025-11-20"), Source("b.md", None)),
                   published="2025-11-01")
    related = Paper(paper_id="t-x", title="R", sources=(Source("p.txt", None),), published="2025-08-28")
    assert _date_label(digest, None) == "digest 2025-11-20"
    assert _date_label(related, None) == "submitted 2025-08-28"
    assert _date_label(Paper(paper_id="2", title="U"), None) == "date unknown"


@pytest.mark.parametrize("turns", [
    [("Which paper was deployed in Douyin Search?", "LEMUR"), ("Who are its authors?", "Xintian Han"),
     ("What mechanism does it use to cut computational cost?", "memory bank")],
    [("哪篇论文在抖音搜索部署了？", "LEMUR"), ("它的作者是谁？", "Xintian Han"), ("该论文属于哪个 arXiv 分类？", "cs.IR")],
])
def test_ui_chat_follow_ups_with_the_real_pipeline(sample_settings, turns):
    ctl = Controller(sample_settings)
    state = []
    for question, expect in turns:
        *_, (messages, sources, _status, state, _box) = ctl.ask(question, state)
        assert expect in messages[-1]["content"], (question, messages[-1]["content"])
        assert "2511.10962" in sources
    assert [a.interpreted != "" for _, a in state] == [False, True, True]


def test_unsupported_sentences_are_marked_not_hidden():
    from dataclasses import replace as dc_replace

    from rag.types import Claim

    a = _answer("q", text="GenRec uses RQ-VAE [1]. It was trained on 4,000 GPUs.")
    a = dc_replace(a, claims=(Claim("GenRec uses RQ-VAE", (1,), 0.9, True),
                              Claim("It was trained on 4,000 GPUs.", (), 0.0, False)))
    html_ = render.answer_html(a, 1)
    assert "It was trained on 4,000 GPUs." in html_.split('class="dq-unsupported"')[0]  # still in the answer
    assert 'class="dq-unsupported"' in html_ and "(no citation)" in html_ and "(1)" in html_
