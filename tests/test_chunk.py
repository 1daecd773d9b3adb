"""chunk_paper / chunk_papers: fields, token windows, metadata, hashes, offline tokenizer."""
from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

from rag.chunk import (CL100K_PAT, CL100K_SPECIAL, TIKTOKEN_FILE, chunk_paper, chunk_papers,
                       count_tokens, date_int, encoding, sentence_pieces, split_text)
from rag.config import Settings
from rag.types import TEXT_FIELDS, Paper, Source

ROOT = Path(__file__).resolve().parents[1]
SEED002 = next((ROOT / "rag" / "data" / "sample").glob("002_*.txt")).read_text(encoding="utf-8")
GOV_ABSTRACT = re.search(r"Abstract: (Efforts over.*?)\n", SEED002).group(1)
ZH_SECTIONS = re.findall(r"(?:Motivation|Method|Result|Conclusion): (.*?)\n", SEED002)
SETTINGS = Settings(index_dir="/nonexistent-not-used", chunk_tokens=120, chunk_overlap=30)


def paper(**kw) -> Paper:
    base = dict(paper_id="2511.11010", arxiv_id="2511.11010",
                title="GovScape: A Public Multimodal Search System for 70 Million Pages of Government PDFs",
                authors=("Kyle Deeds", "Ying-Hsiang Huang"), abstract=GOV_ABSTRACT,
                tldr_zh="GovScape是一个支持多模态搜索的公共系统。", method_zh="".join(ZH_SECTIONS),
                categories=("cs.IR", "cs.DL"),
                sources=(Source(file="/d/002.txt", date=None), Source(file="/d/x.md", date="2025-11-14")))
    base.update(kw)
    return Paper(**base)


def test_tokenizer_matches_cl100k_constants():
    import tiktoken_ext.openai_public as oai

    src = inspect.getsource(oai.cl100k_base)
    assert CL100K_PAT in src  # the raw pattern literal, character for character
    assert set(CL100K_SPECIAL.values()) == {100257, 100258, 100259, 100260, 100276}
    assert encoding().encode("hello world") == [15339, 1917]
    assert encoding().n_vocab == 100277


def test_tokenizer_loads_offline_from_bundled_file(tmp_path):
    """Fresh interpreter, empty TIKTOKEN_CACHE_DIR, sockets blocked: encoding still loads."""
    code = (
        "import socket\n"
        "def _no(*a, **k): raise RuntimeError('network used')\n"
        "socket.socket.connect = _no; socket.create_connection = _no; socket.getaddrinfo = _no\n"
        "from rag.chunk import encoding, count_tokens\n"
        "print(count_tokens('GovScape supports four primary forms of search.'))\n"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == count_tokens("GovScape supports four primary forms of search.")


def test_tokenizer_survives_unwritable_cache_dir(tmp_path):
    blocker = tmp_path / "a-file"  # a cache dir below a regular file cannot be created, even by root
    blocker.write_text("x")
    code = "from rag.chunk import encoding; print(encoding().encode('hello world'))"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(blocker / "sub"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[15339, 1917]"
    assert TIKTOKEN_FILE.exists()


def test_every_nonempty_field_is_a_chunk_with_lang():
    chunks = chunk_paper(paper(), Settings(index_dir="/x"))
    fields = [c.field for c in chunks]
    assert set(fields) == {"abstract", "tldr_zh", "method_zh", "meta"}
    for c in chunks:
        assert c.lang == TEXT_FIELDS[c.field] and c.metadata["lang"] == c.lang
    assert {c.lang for c in chunks if c.field.endswith("_zh")} == {"zh"}
    assert [c for c in chunks if c.field == "tldr_zh"][0].text == "GovScape是一个支持多模态搜索的公共系统。"


def test_windows_respect_token_limit_and_ids_unique():
    chunks = chunk_paper(paper(), SETTINGS)
    ab = [c for c in chunks if c.field == "abstract"]
    assert count_tokens(GOV_ABSTRACT) > SETTINGS.chunk_tokens and len(ab) >= 3
    assert all(count_tokens(c.text) <= SETTINGS.chunk_tokens for c in chunks)
    assert [c.chunk_id for c in ab] == [f"2511.11010:abstract:{i}" for i in range(len(ab))]
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    # windows cover the whole field, in order, at sentence boundaries
    assert ab[0].text.startswith("Efforts over the past three decades")
    assert ab[-1].text.endswith("https://www.govscape.net.")
    assert all(c.text[-1] in ".!?" for c in ab)
    words = set(re.findall(r"\w+", GOV_ABSTRACT))
    assert words == set().union(*(re.findall(r"\w+", c.text) for c in ab))


def _overlap(a: str, b: str) -> str:
    """Longest suffix of a that is a prefix of b."""
    for k in range(min(len(a), len(b)), 0, -1):
        if a.endswith(b[:k]):
            return b[:k]
    return ""


def test_windows_overlap_by_at_most_chunk_overlap():
    text = " ".join(f"Sentence number {i} talks about topic {i % 7} briefly." for i in range(60))
    parts = split_text(text, 60, 20)
    assert len(parts) > 4 and all(count_tokens(p) <= 60 for p in parts)
    for a, b in zip(parts, parts[1:]):
        ov = _overlap(a, b).strip()
        assert ov, f"no overlap between {a[-40:]!r} and {b[:40]!r}"
        assert count_tokens(ov) <= 20
    no_overlap = split_text(text, 60, 0)
    assert all(not _overlap(a, b).strip() for a, b in zip(no_overlap, no_overlap[1:]))


def test_chinese_split_at_sentence_marks():
    zh = "".join(ZH_SECTIONS)
    parts = split_text(zh, 80, 20)
    assert len(parts) > 5 and all(count_tokens(p) <= 80 for p in parts)
    # every window ends at a Chinese sentence or clause mark, never mid-phrase
    assert all(p[-1] in "。！？；，" for p in parts)
    assert sentence_pieces("第一句。第二句！Third one. 第四句？") == ["第一句。", "第二句！", "Third one. ", "第四句？"]


def test_short_fields_are_not_split_or_reencoded():
    assert split_text("短文本。", 10, 2) == ["短文本。"]
    assert split_text("A short abstract.", 220, 40) == ["A short abstract."]


def test_metadata_is_chroma_safe():
    p = paper(arxiv_id=None, paper_id="t-abc", categories=(), authors=(), sources=())
    for c in chunk_paper(p, SETTINGS) + chunk_paper(paper(), SETTINGS):
        for k, v in c.metadata.items():
            assert v is not None and isinstance(v, (str, int, float, bool)), (k, v)
        assert set(c.metadata) >= {"paper_id", "arxiv_id", "title", "field", "lang", "date", "date_int",
                                   "categories", "authors", "chunk"}
    c0 = chunk_paper(p, SETTINGS)[0]
    assert (c0.metadata["arxiv_id"], c0.metadata["date"], c0.metadata["date_int"]) == ("", "", 0)
    c1 = chunk_paper(paper(), SETTINGS)[0]
    assert c1.metadata["date"] == "2025-11-14" and c1.metadata["date_int"] == 20251114
    assert c1.metadata["categories"] == "cs.IR,cs.DL"
    assert c1.metadata["authors"] == "Kyle Deeds, Ying-Hsiang Huang"
    assert c1.embed_text == f"{c1.metadata['title']}\n{c1.text}"


def test_long_author_lists_are_capped():
    many = tuple(f"Author Number{i} (Some Very Long University Department of Things {i})" for i in range(60))
    meta = chunk_paper(paper(authors=many), SETTINGS)[0].metadata["authors"]
    assert len(meta) < 1000 and meta.startswith("Author Number0")
    few = ("Ann Lee (MIT)", "Bo Chen (Tsinghua University)")
    assert chunk_paper(paper(authors=few), SETTINGS)[0].metadata["authors"] == \
        "Ann Lee (MIT), Bo Chen (Tsinghua University)"


def test_content_hash_stable_and_sensitive():
    a = chunk_paper(paper(), SETTINGS)
    b = chunk_paper(paper(), SETTINGS)
    assert [c.content_hash for c in a] == [c.content_hash for c in b]
    changed = chunk_paper(paper(tldr_zh="GovScape是一个公共搜索系统。"), SETTINGS)
    diff = {c.chunk_id for c, d in zip(a, changed) if c.content_hash != d.content_hash}
    assert diff == {"2511.11010:tldr_zh:0"}
    retitled = chunk_paper(paper(title="GovScape"), SETTINGS)
    assert all(c.content_hash != d.content_hash for c, d in zip(a, retitled))
    redated = chunk_paper(paper(sources=(Source(file="/d/y.md", date="2025-12-01"),)), SETTINGS)
    assert all(c.content_hash != d.content_hash for c, d in zip(a, redated))


def test_date_int():
    assert date_int("2025-11-20") == 20251120 and date_int(None) == 0 and date_int("") == 0


def test_chunk_papers_keeps_order():
    ps = [paper(), paper(paper_id="2511.00001", arxiv_id="2511.00001", abstract="Tiny.", method_zh=None)]
    chunks = chunk_papers(ps, SETTINGS)
    assert chunks[-3].paper_id == "2511.00001" and chunks[0].paper_id == "2511.11010"
    assert [c.chunk_id for c in chunks if c.paper_id == "2511.00001"] == \
        ["2511.00001:abstract:0", "2511.00001:tldr_zh:0", "2511.00001:meta:0"]


def test_seed_corpus_chunks():
    from rag.merge import merge_papers
    from rag.parse import parse_file

    recs = [p for f in sorted((ROOT / "rag" / "data" / "sample").glob("*.txt")) for p in parse_file(f).papers]
    papers = merge_papers(recs)
    s = Settings(index_dir="/x")
    chunks = chunk_papers(papers, s)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    assert all(count_tokens(c.text) <= s.chunk_tokens for c in chunks)
    assert all(v is not None and not isinstance(v, (list, tuple, dict)) for c in chunks for v in c.metadata.values())
    by = {}
    for c in chunks:
        by.setdefault(c.paper_id, []).append(c)
    lemur = by["2511.10962"]
    assert {c.field for c in lemur} == {"abstract", "tldr_zh", "motivation_zh", "method_zh", "result_zh",
                                        "conclusion_zh", "meta"}
    gpsd = {c.field: c.text for c in by["2506.03699"]}
    assert "Comment: KDD'25" in gpsd["meta"] and "DOI: 10.1145/3711896.3737117" in gpsd["meta"]
    qbert = {c.field: c.text for c in by["2512.02474"]}
    assert "License: http://creativecommons.org/licenses/by/4.0/" in qbert["meta"] and "Score: 5.699" in qbert["meta"]
    assert all(c.lang == "zh" for c in lemur if c.field not in ("abstract", "meta"))
    assert any("抖音搜索" in c.text for c in lemur if c.field == "result_zh")
    mmq = {c.field for c in by["2508.15281"]}
    assert mmq == {"abstract", "tldr_en", "meta"}
    assert by["2508.15281"][0].embed_text.startswith("MMQ: Multimodal Mixture-of-Quantization")
    moon = by["2511.11305"][0].metadata
    assert moon["date"] == "2025-11-20" and moon["date_int"] == 20251120 and moon["categories"] == "cs.IR"


def test_batch_counts_equal_one_by_one_and_chunks_equal_per_paper(monkeypatch):
    """chunk_papers counts undecided texts in one threaded batch: same counts, same chunks."""
    import rag.chunk as chunk_mod

    from rag import api
    from rag.parse import parse_file

    papers = [p for f in api.sample_paths() for p in parse_file(str(f)).papers]
    texts = [t for p in papers for _, t in chunk_mod.field_texts(p)] * 3  # > 256: the threaded path
    monkeypatch.setattr(chunk_mod.os, "cpu_count", lambda: 3)
    assert len(texts) >= 256
    assert chunk_mod.count_many(texts) == [count_tokens(t) for t in texts]
    batch = chunk_papers(papers, SETTINGS)
    assert [c.chunk_id for c in batch] == [c.chunk_id for p in papers for c in chunk_paper(p, SETTINGS)]
    assert [c.text for c in batch] == [c.text for p in papers for c in chunk_paper(p, SETTINGS)]
    assert any(c.chunk_id.endswith(":1") for c in batch)  # some field was long enough to be split


def test_batched_splitting_equals_one_by_one_on_real_days(shared_dir):
    """split_many (counts made in threaded batches, sentences before splitting and windows after)
    gives exactly split_text's windows, on two real days with hundreds of long abstracts."""
    from rag.merge import merge_papers
    from rag.parse import parse_file

    days = sorted((shared_dir / "corpora" / "scale").glob("*.jsonl.gz"))[:2]
    papers = merge_papers([p for f in days for p in parse_file(str(f)).papers])
    batch = chunk_papers(papers, SETTINGS)
    single = [c for p in papers for c in chunk_paper(p, SETTINGS)]
    assert [(c.chunk_id, c.text, c.content_hash) for c in batch] == \
        [(c.chunk_id, c.text, c.content_hash) for c in single]
    assert sum(c.chunk_id.endswith(":abstract:1") for c in batch) > 100  # many abstracts were split
    assert any(c.chunk_id.endswith(":2") for c in batch)  # and some in three windows
    assert all(count_tokens(c.text) <= SETTINGS.chunk_tokens for c in batch)
