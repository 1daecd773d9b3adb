"""An index built by the previous schema still opens and answers; the next ingest re-embeds it.

The old index is real: built here by the current code with SCHEMA_VERSION set back to 3 and the
parsers' unwrapping turned off (what schema 3 stored), then opened with the current code.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from rag import api, config, ingest
from rag.cli import main
from rag.config import Settings
from rag.store import _chroma_client, open_store, older_collections
from tests.test_unwrap import wraps_inside_sentences

OLD = 3
SENTENCES = ("Speech synthesis systems still struggle to convey emotion and speaker identity at once. "
             "We present Marco-Voice, a multifunctional speech synthesis system that integrates voice "
             "cloning and emotion-controllable synthesis within a unified framework. Experiments "
             "demonstrate that our system achieves substantial improvements in both objective and "
             "subjective metrics.")


def _wrapped_digest(path: Path) -> Path:
    """Three records as arXiv's feed has them: abstracts wrapped at 79 columns, a new paragraph
    indented two spaces (one wrap falls after a hyphen); a Chinese TL;DR with a wrap."""
    rows = [{"id": f"2508.0203{i}", "title": f"Marco-Voice Technical Report part {i}",
             "authors": ["A. Author"], "categories": ["cs.SD"],
             "summary": textwrap.fill(SENTENCES, 79) + f"\n  Part {i} of the report releases code and a "
                        "cross-\nmodel emotion corpus for voice cloning research.",
             "AI": {"tldr": "Marco-Voice是一个集成声音克隆和情感控制的\n语音合成系统。"}}
            for i in range(3)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def old_index(tmp_path, monkeypatch):
    """(settings, paths, old collection name) of an index built as schema 3 built it."""
    paths = [*api.sample_paths(), _wrapped_digest(tmp_path / "2025-08-05_AI_enhanced_Chinese.jsonl")]
    s = Settings(index_dir=str(tmp_path / "idx"), answerer="extractive")
    with monkeypatch.context() as m:
        m.setattr(config, "SCHEMA_VERSION", OLD)
        m.setattr("rag.parse.common.unwrap_fields", lambda fields: fields)
        m.setattr("rag.parse.abstract_dump.unwrap", lambda text, one_line=False: text)
        report = api.ingest(paths, s)
        assert report.ok and not report.notes, report
        name = s.collection_name
    assert name != s.collection_name
    return s, paths, name


def _chunk_texts(s: Settings) -> list[str]:
    st = open_store(s)
    try:
        return [t for (t,) in st.db.execute("SELECT text FROM chunks")]
    finally:
        st.close()


def _collections(s: Settings) -> set[str]:
    return {getattr(c, "name", c) for c in _chroma_client(None, str(Path(s.index_dir) / "chroma")).list_collections()}


def test_old_index_answers_then_next_ingest_re_embeds_it(old_index, monkeypatch, capfd):
    s, paths, old_name = old_index
    assert older_collections(s) == [(OLD, old_name)]
    before = api.stats(s)
    papers_before = {p.paper_id: p for p in api.papers(s)}
    assert before["schema"] == OLD and before["collection"] == old_name and before["papers"] == 39
    assert any(wraps_inside_sentences(t) for t in _chunk_texts(s))  # the old text is wrapped

    # the old index opens and answers, saying an upgrade is pending
    assert main(["--index", s.index_dir, "ask", "Which system integrates voice cloning and emotion control?"]) == 0
    out = capfd.readouterr()
    assert f"built by schema {OLD}" in out.err and "re-embeds its 39 papers (text unwrapped)" in out.err
    assert "Marco-Voice" in out.out and "ingesting the bundled sample" not in out.err

    # an interrupted upgrade loses nothing: the old index still answers, the next ingest resumes
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(ingest, "_sync_chunks", interrupted)
        with pytest.raises(KeyboardInterrupt):
            api.ingest(paths, s)
    assert api.stats(s)["schema"] == OLD and api.stats(s)["papers"] == 39 and old_name in _collections(s)

    # the next ingest (same files, unchanged) re-embeds every paper with unwrapped text
    assert main(["--index", s.index_dir, "ingest", "--quiet", *map(str, paths)]) == 0
    out = capfd.readouterr().out
    assert f"note: index schema {OLD} -> {config.SCHEMA_VERSION}: re-embedding 39 papers (text unwrapped)" in out
    assert f"files: {len(paths)} ({len(paths)} unchanged, skipped)" in out
    after = api.stats(s)
    assert after["schema"] == config.SCHEMA_VERSION and after["collection"] == s.collection_name
    assert after["papers"] == 39 and after["sources"] == before["sources"]
    papers_after = {p.paper_id: p for p in api.papers(s)}
    assert papers_after.keys() == papers_before.keys()
    voice = papers_after["2508.02030"]
    assert voice.abstract == (SENTENCES + "\nPart 0 of the report releases code and a cross-model emotion "
                              "corpus for voice cloning research.")  # one paragraph break kept
    assert voice.tldr_zh == "Marco-Voice是一个集成声音克隆和情感控制的语音合成系统。"
    assert not [t for t in _chunk_texts(s) if wraps_inside_sentences(t)]
    # the stale collection is gone: catalogue, BM25 files and vectors
    assert older_collections(s) == [] and old_name not in _collections(s)
    assert not list(Path(s.index_dir).glob(f"*{old_name}*"))
    st = open_store(s)
    try:
        assert st.embedded_count() == st.vector_count() > 0
    finally:
        st.close()
    answer = api.ask("Which system integrates voice cloning and emotion control?", s)
    assert answer.sources and answer.sources[0].paper_id.startswith("2508.0203")
    assert not [p.text for h in answer.sources for p in h.passages if wraps_inside_sentences(p.text)]
    again = api.ingest(paths, s)
    assert not again.notes and again.chunks_added == 0 and again.files_skipped == len(paths)


def test_upload_report_shows_the_upgrade_note():
    from rag.types import IngestReport
    from ui.controller import ingest_report_html

    html = ingest_report_html(IngestReport(files=1, notes=("index schema 3 -> 4: re-embedding 2 papers <x>",)),
                              ["a.md"], [])
    assert "index schema 3 -&gt; 4: re-embedding 2 papers &lt;x&gt;" in html


def test_an_index_with_chromas_default_search_list_gets_the_larger_one_on_open(tmp_path):
    """Chroma's default ef_search (100) made dense top-40 results differ between processes; an index built
    with it is given SEARCH_EF the first time a (writable) store opens its collection."""
    from rag.store import SEARCH_EF

    s = Settings(index_dir=str(tmp_path / "index"), answerer="extractive")
    assert api.ingest(api.sample_paths()[:1], s).ok
    store = open_store(s)
    name, path = store.collection_name, str(store.chroma_path)
    assert store.collection.configuration["hnsw"]["ef_search"] == SEARCH_EF  # a new index has it
    store.close()
    _chroma_client(None, path).get_collection(name).modify(configuration={"hnsw": {"ef_search": 100}})
    assert _chroma_client(None, path).get_collection(name).configuration["hnsw"]["ef_search"] == 100
    store = open_store(s)
    assert store.collection.configuration["hnsw"]["ef_search"] == SEARCH_EF
    assert api.ask("Which papers use RQ-VAE semantic IDs?", s).citations
    store.close()
