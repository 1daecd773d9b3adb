"""Bad input never raises: one-line FileErrors naming file (and line); good records still come through."""
from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from rag.parse import parse_file, parse_text
from rag.types import FileError
from tests.paths import seed

DATA = Path(__file__).resolve().parent / "data"
SEED0 = seed("000")


def only_error(result) -> FileError:
    assert result.papers == () and len(result.errors) == 1
    err = result.errors[0]
    assert "\n" not in str(err) and str(err).startswith(err.file)
    return err


def test_nonexistent_path(tmp_path):
    err = only_error(parse_file(tmp_path / "nope.md"))
    assert err.file.endswith("nope.md") and "not found" in err.message and err.line is None


def test_directory_is_refused(tmp_path):
    assert "not a regular file" in only_error(parse_file(tmp_path)).message


@pytest.mark.parametrize("content", [b"", b"  \n\n\t\n"])
def test_empty_file(tmp_path, content):
    f = tmp_path / "empty.md"
    f.write_bytes(content)
    assert "empty" in only_error(parse_file(f)).message


def test_binary_file(tmp_path):
    f = tmp_path / "image.md"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert "binary" in only_error(parse_file(f)).message


def test_invalid_utf8_names_line(tmp_path):
    f = tmp_path / "latin1.md"
    f.write_bytes("# arXiv Daily Report - 04-Dec-2025\n\nline three\ncaf\u00e9\n".encode("latin-1"))
    err = only_error(parse_file(f))
    assert err.line == 4 and "line 4" in err.message and "re-save as UTF-8" in err.message
    assert str(err).startswith(f"{f}:4: ")


def test_unknown_format_lists_supported():
    err = only_error(parse_file(DATA / "prose.txt"))
    assert "unrecognised" in err.message
    for name in ("table_report", "cs_digest", "jsonl", "paper_page", "abstract_dump"):
        assert name in err.message


def test_oversize_refused_without_reading(tmp_path):
    f = tmp_path / "big.md"
    f.write_bytes(SEED0.read_bytes())
    err = only_error(parse_file(f, max_bytes=1000))
    assert "over the 1000 bytes limit" in err.message and str(f.stat().st_size) in err.message
    assert parse_file(f, max_bytes=10**6).errors == ()


def test_real_100mb_sparse_file_refused_fast(tmp_path):
    f = tmp_path / "huge.jsonl"
    with f.open("wb") as fh:  # sparse: 100 MB on paper, nothing on disk
        fh.truncate(100 * 2**20)
    t = time.perf_counter()
    err = only_error(parse_file(f))
    assert time.perf_counter() - t < 1.0
    assert "100.0 MB" in err.message and "64.0 MB limit" in err.message


def test_gzip_decompressed_limit(tmp_path):
    f = tmp_path / "bomb.jsonl.gz"
    f.write_bytes(gzip.compress(b"{}\n" * 200_000))  # 600 KB unpacked, ~1 KB packed
    err = only_error(parse_file(f, max_bytes=100_000))
    assert "decompressed size exceeds" in err.message


def test_gzip_roundtrip_and_corrupt(tmp_path):
    good = tmp_path / "2026-01-05_x.jsonl.gz"
    good.write_bytes(gzip.compress((DATA / "jsonl_truncated_and_placeholders.jsonl").read_bytes()))
    r = parse_file(good)
    assert r.format == "jsonl" and [p.paper_id for p in r.papers] == ["2601.00001", "2601.00003"]
    assert r.papers[0].sources[0].date == "2026-01-05"  # date from the file NAME only
    bad = tmp_path / "cut.jsonl.gz"
    bad.write_bytes(good.read_bytes()[:-30])
    assert "gzip" in only_error(parse_file(bad)).message


def test_truncated_table_row_keeps_other_rows():
    r = parse_file(DATA / "table_pipes_and_truncated.md")
    assert r.format == "table_report"
    assert [str(e) for e in r.errors] == [
        f"{DATA / 'table_pipes_and_truncated.md'}:6: truncated table row: the row never closes "
        "with an '| author |' cell; complete or remove the row"]
    first, wrapped = r.papers
    assert first.title == "Pipes | Inside: A Test Paper"
    assert first.abstract == "We compare A | B and report P(x | y) = 0.5 on 3 datasets."
    assert first.authors == ("Ada Lovelace (Analytical Engines, London)", "Alan Turing")
    assert first.sources[0].date == "2026-03-07" and first.sources[0].line == 5
    assert wrapped.paper_id == "2603.00003" and wrapped.sources[0].line == 7
    assert wrapped.abstract == "First paragraph of the abstract.\nSecond paragraph with 12% gains."
    assert wrapped.authors == ("Grace Hopper",)


def test_truncated_json_line_keeps_other_records():
    r = parse_file(DATA / "jsonl_truncated_and_placeholders.jsonl")
    assert r.format == "jsonl" and len(r.errors) == 1
    err = r.errors[0]
    assert err.line == 2 and "invalid JSON" in err.message and "\n" not in str(err)
    first, third = r.papers
    assert (first.paper_id, third.paper_id, third.arxiv_id) == ("2601.00001", "2601.00003", "2601.00003")
    assert first.tldr_zh == "这是第一篇论文的中文摘要，介绍了一个新方法。"
    # placeholders dropped: "Motivation analysis unavailable", "Error", quota message, ""
    assert (first.motivation_zh, first.method_zh, first.result_zh, first.conclusion_zh) == (None,) * 4
    # "Skip", "N/A", rate-limit message, "Summary generation failed" dropped; real text kept
    assert (third.tldr_zh, third.motivation_zh, third.result_zh, third.conclusion_zh) == (None,) * 4
    assert third.method_zh == "方法：提出三阶段训练。"
    assert third.comment == "NeurIPS 2025" and third.categories == ("cs.CL", "cs.AI")
    assert ("license", "CC BY 4.0") in third.extra and third.sources[0].line == 4
    assert third.sources[0].date is None  # no date in this file name


def test_parser_crash_becomes_error(monkeypatch):
    from rag import parse as P

    def boom(text, file):
        raise RuntimeError("kaboom")
    monkeypatch.setitem(P.PARSERS, "jsonl", boom)
    r = parse_text('{"id": "2601.00001", "title": "x"}\n', "f.jsonl")
    assert r.papers == () and "internal error in the jsonl parser" in r.errors[0].message


def test_crlf_and_bom_tolerated(tmp_path):
    f = tmp_path / "win.md"
    f.write_bytes(b"\xef\xbb\xbf" + SEED0.read_bytes().replace(b"\n", b"\r\n"))
    r = parse_file(f)
    assert r.errors == () and len(r.papers) == 4
    assert r.papers[0].authors == ("Haofeng Huang", "Ling Gai")


def test_single_truncated_json_line_is_reported_as_jsonl(tmp_path):
    f = tmp_path / "cut.jsonl"
    f.write_text('{"id": "2601.00001", "title": "Cut', encoding="utf-8")
    r = parse_file(f)
    assert r.format == "jsonl" and r.papers == ()
    assert [(e.line, "invalid JSON" in e.message) for e in r.errors] == [(1, True)]
