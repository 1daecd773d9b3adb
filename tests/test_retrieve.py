"""Hybrid retrieval on the bundled sample: tokenizer, fusion, per-paper hits, pinning, filters."""
from __future__ import annotations

import pytest

from pathlib import Path

from rag import api
from rag.retrieve import hybrid_retriever, rrf, tokenize
from rag.types import Filters


def test_tokenizer_keeps_technical_tokens_whole():
    toks = tokenize("Which papers use RQ-VAE? NDCG@10 of 2508.15281v2 and Align$^3$GR")
    for t in ("rq-vae", "rqvae", "ndcg@10", "2508.15281", "align3gr"):
        assert t in toks
    assert tokenize("Align³GR") == ["align3gr"]
    assert "which" not in toks and "paper" not in toks


def test_tokenizer_chinese_bigrams_and_jieba():
    assert tokenize("抖音搜索") == ["抖音", "音搜", "搜索"]
    assert "抖音" in tokenize("抖音搜索部署", mode="jieba")
    assert tokenize("LEMUR在抖音") == ["lemur", "在抖", "抖音"]


def test_rrf_prefers_items_ranked_by_both():
    fused = rrf([[("a", 1.0), ("b", 0.9)], [("b", 5.0), ("c", 4.0)]], k=60)
    assert max(fused, key=fused.get) == "b"


def test_rq_vae_question_finds_quantization_papers(sample_settings):
    hits = api.retrieve("which papers use RQ-VAE semantic IDs", sample_settings, Filters(top_k=8))
    titles = " | ".join(h.title for h in hits)
    assert "MMGRec" in titles and "Q-BERT4Rec" in titles
    assert len({h.paper_id for h in hits}) == len(hits)  # one source per paper
    assert all(h.passages for h in hits)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


def test_chinese_question_finds_lemur_first(sample_settings):
    hits = api.retrieve("哪篇论文在抖音搜索部署了？", sample_settings)
    assert hits[0].arxiv_id == "2511.10962"
    assert any(p.lang == "zh" for p in hits[0].passages)


def test_arxiv_id_and_title_pin_the_paper_first(sample_settings):
    assert api.retrieve("what does 2506.03699 propose?", sample_settings)[0].arxiv_id == "2506.03699"
    hits = api.retrieve("Summarise Enhancing Group Recommendation using Soft Impute Singular Value Decomposition",
                        sample_settings)
    assert hits[0].arxiv_id == "2511.11172"
    moon = api.retrieve("What is MOON?", sample_settings)
    assert {h.arxiv_id for h in moon[:2]} == {"2511.11305", "2508.11999"}


def test_filters(sample_settings):
    cs_ir = api.retrieve("multimodal recommendation", sample_settings, Filters(category="cs.IR", top_k=10))
    assert cs_ir and all("cs.IR" in h.categories for h in cs_ir)
    dated = api.retrieve("recommendation", sample_settings, Filters(since="2025-12-01", until="2025-12-31", top_k=10))
    assert dated and all(h.date and "2025-12-01" <= h.date <= "2025-12-31" for h in dated)
    by_author = api.retrieve("search", sample_settings, Filters(author="bo zheng", top_k=10))
    assert by_author and all(any("Bo Zheng" in a for a in h.authors) for h in by_author)
    assert {h.arxiv_id for h in by_author} <= {"2512.03025", "2511.11305", "2508.11999"}


def test_each_mode_and_fusion(sample_settings):
    q = "Douyin search deployment"
    ranked = {m: [h.arxiv_id for h in api.retrieve(q, sample_settings, mode=m)] for m in ("dense", "bm25", "hybrid")}
    assert ranked["bm25"][0] == "2511.10962"  # the only paper naming Douyin
    assert "2511.10962" in ranked["dense"][:3]
    assert ranked["hybrid"][0] == "2511.10962"
    assert ranked["dense"] != ranked["bm25"]


def test_llama_index_retriever_adapter(sample_settings):
    from llama_index.core.schema import NodeWithScore

    nodes = hybrid_retriever(sample_settings).retrieve("LEMUR memory bank")
    assert nodes and isinstance(nodes[0], NodeWithScore)
    assert nodes[0].node.metadata["arxiv_id"] == "2511.10962"


def test_empty_index_returns_no_hits(tmp_settings):
    assert api.retrieve("anything", tmp_settings) == []


def test_chinese_question_over_english_only_digest(tmp_settings, seeds_dir):
    from rag.glossary import english_prefixes, expand_prefixes

    assert set(english_prefixes("知识蒸馏用于搜索相关性")) == {"distill", "search", "relevan"}
    vocab = ["dist", "distillation", "distilled", "zebra"]
    assert expand_prefixes(["distill", "knowledge distill"], lambda p, n: [w for w in vocab if w.startswith(p)][:n]) \
        == ["distillation", "distilled", "knowledge distill"]
    api.ingest([seeds_dir / "001_855b5c13d526e93a.txt"], tmp_settings)  # English table, no zh text
    hits = api.retrieve("哪篇论文把知识蒸馏用于搜索相关性？", tmp_settings)
    assert "2510.11056" in [h.arxiv_id for h in hits[:2]]  # Two-Stage Distillation Framework for Search Relevance
    assert "2508.03628" in [h.arxiv_id for h in hits[:3]]  # LLMDistill4Ads, the other distillation paper


def test_glossary_setting_switches_the_expansion_off(tmp_settings, shared_dir):
    from rag.retrieve import search_chunks

    api.ingest([shared_dir / "seeds" / "001_855b5c13d526e93a.txt"], tmp_settings)  # English table, no zh text
    question = "哪篇论文把知识蒸馏用于搜索相关性？"
    on, _ = search_chunks(question, tmp_settings, Filters())
    off, _ = search_chunks(question, tmp_settings.model_copy(update={"glossary": "off"}), Filters())
    assert len(on) == 3 and len(off) == 2  # dense + BM25 (+ BM25 over the glossary's English words)
    assert on[0][0] == 0.5 and off[0][0] == 0.3  # MiniLM's dense side: English terms, or the raw question


@pytest.mark.parametrize("bucket", [2_000_000, 3])  # one sort, and term ranges of ~3 tokens at a time
def test_numpy_bm25_build_matches_bm25s_index(bucket, monkeypatch):
    import bm25s
    import numpy as np

    import rag.retrieve as retrieve_mod
    from rag.retrieve import build_bm25

    monkeypatch.setattr(retrieve_mod, "_BM25_BUCKET", bucket)

    corpus = [tokenize(t) for t in ("RQ-VAE semantic IDs for generative recommendation",
                                    "LEMUR 在抖音搜索部署 memory bank", "semantic search semantic retrieval",
                                    "unrelated text about radiance fields", "RQ-VAE codebooks RQ-VAE")]
    ours, ref = build_bm25(corpus), bm25s.BM25(k1=0.9, b=0.4)
    ref.index(corpus, show_progress=False)
    for query in (["rq-vae"], ["semantic", "search"], ["抖音"], ["radiance", "semantic"]):
        a_docs, a_scores = ours.retrieve([query], k=5, show_progress=False)
        b_docs, b_scores = ref.retrieve([query], k=5, show_progress=False)
        np.testing.assert_allclose(np.sort(a_scores[0]), np.sort(b_scores[0]), rtol=1e-5)
        assert list(a_docs[0][:1]) == list(b_docs[0][:1])

    def column(model, term):  # (docs, scores) of one term's column of the score matrix
        sc, c = model.scores, model.vocab_dict[term]
        a, z = sc["indptr"][c], sc["indptr"][c + 1]
        return list(sc["indices"][a:z]), sc["data"][a:z]

    for term in {t for doc in corpus for t in doc}:  # every posting list, doc ids and scores
        (a_ids, a_sc), (b_ids, b_sc) = column(ours, term), column(ref, term)
        assert a_ids == b_ids, term
        np.testing.assert_allclose(a_sc, b_sc, rtol=1e-6)


def test_batch_chunk_tokens_equal_plain_tokens():
    from rag.retrieve import chunk_tokens_texts, tokens_text
    from rag.types import Chunk

    def chunk(title, text):
        return Chunk("p:abstract:0", "p", "abstract", "en", text, f"{title}\n{text}", "h", {"title": title})

    chunks = [chunk("Align$^3$GR: Unified Alignment", "We propose Align$^3$GR with RQ-VAE."),
              chunk("LEMUR: End-to-end", "在抖音搜索部署 LEMUR, NDCG@10 +2%."), chunk("LEMUR: End-to-end", "Second window.")]
    assert chunk_tokens_texts(chunks, "bigram") == [tokens_text(c.embed_text, "bigram") for c in chunks]


def test_partial_until_date_covers_the_whole_month(sample_settings):
    hits = api.retrieve("recommendation", sample_settings, Filters(since="2025-12", until="2025-12", top_k=10))
    assert hits and all(h.date and h.date.startswith("2025-12") for h in hits)


def test_pinned_papers_equal_a_scan_of_every_title(sample_settings):
    """The n-gram lookup pins exactly what comparing the question with every title would."""
    import json
    from pathlib import Path

    from rag.retrieve import _ARXIV_ID, pinned_papers
    from rag.store import open_store
    from rag.text import normalize_title, plain_latex

    st = open_store(sample_settings)
    try:
        rows = st.title_rows()
        root = Path(__file__).resolve().parents[1]
        questions = [json.loads(line)["question"] for line in (root / "eval" / "sets" / "sample-dev.jsonl").read_text().splitlines()
                     if line.strip()]
        questions += [f"what does {t} report?" for _, _, t in rows] + [f"compare {a} and {b}" for _, a, _ in rows[:5]
                                                                        for _, b, _ in rows[5:8]]

        def scan(question):
            ids = {m.group(1) for m in _ARXIV_ID.finditer(question)}
            q, first, rest = f" {normalize_title(plain_latex(question))} ", [], []  # Align^3GR ~ Align$^3$GR
            for pid, arxiv_id, title in rows:
                norm = normalize_title(title)
                short = normalize_title(title.split(":")[0]) if ":" in title else ""
                if arxiv_id in ids or pid in ids:
                    first.insert(0, pid)
                elif (len(norm) > 12 and f" {norm} " in q) or (len(short) >= 3 and f" {short} " in q):
                    rest.append(pid)
            return list(dict.fromkeys(first + rest))

        pinned = 0
        for q in questions:
            assert pinned_papers(st, q) == scan(q), q
            pinned += bool(scan(q))
        assert pinned > len(rows)  # the check saw many pins, not only empty lists
    finally:
        st.close()


def test_bm25_scores_equal_bm25s_and_search_respects_allowed(sample_settings):
    import numpy as np
    import pytest

    from rag.retrieve import _bm25, bm25_scores, bm25_search
    from rag.store import open_store

    st = open_store(sample_settings)
    try:
        model, ids, _ = _bm25(st)
        for q in ("RQ-VAE semantic IDs", "抖音 搜索 部署", "knowledge distillation relevance model"):
            toks = [t for t in tokenize(q) if t in model.vocab_dict]
            ours = bm25_scores(model, toks)
            np.testing.assert_allclose(ours, model.get_scores(toks), rtol=1e-5, atol=1e-6)
            hits = bm25_search(st, q, sample_settings, 10, None)
            assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True) and hits
            assert hits[0][1] == pytest.approx(float(ours.max()))
            allowed = {cid for cid, _ in hits[1:]}
            assert [c for c, _ in bm25_search(st, q, sample_settings, 10, allowed)] == [c for c, _ in hits[1:]]
    finally:
        st.close()


def test_typed_names_are_technical_words_capitalised_inside_a_sentence_or_latin_in_chinese():
    from rag.retrieve import _typed_names

    assert _typed_names("Which platform was Congrats evaluated on?") == ["Congrats"]
    assert _typed_names("What does GR4AD do? Where is it used") == ["GR4AD"]  # sentence-initial words are not names
    assert _typed_names("Congrats（图结构生成式重排）在哪个平台上线？ab") == ["Congrats"]  # Latin in Chinese; 2 letters: no
    assert _typed_names("how does the model work") == []


def test_a_list_question_about_a_rare_name_sees_every_paper_holding_it(tmp_settings):
    from rag import api
    from rag.types import Filters, Paper

    filler = [Paper(f"2601.{i:05d}", f"Generative recommendation deployed online, variant {i}", arxiv_id=f"2601.{i:05d}",
                    abstract="We deploy a generative recommendation model online in production and report online "
                             f"A/B gains for papers and users of variant {i}.") for i in range(24)]
    topics = ["protein folding", "graph coloring", "speech enhancement", "robot grasping", "tax law", "river floods"]
    named = [Paper(f"2602.{i:05d}", f"A study of {t}", arxiv_id=f"2602.{i:05d}",
                   abstract=f"We study {t} with classical tools and report experiments on public benchmarks. "
                            "Some of the data came from Kuaishou.")
             for i, t in enumerate(topics)]
    assert api.ingest_papers(filler + named, tmp_settings, name="t").ok
    s = tmp_settings.model_copy(update={"top_k": 2})
    question = "Which papers were deployed online at Kuaishou?"
    ranked = {h.paper_id for h in api.retrieve(question, s, Filters(top_k=10))}
    assert not {p.paper_id for p in named} <= ranked  # the ranking alone cuts some of them off
    ans = api.ask(question, s)
    assert {p.paper_id for p in named} <= {h.paper_id for h in ans.sources}
    assert {p.paper_id for p in named} <= {c.paper_id for c in ans.citations}
    assert [h.rank for h in ans.sources] == list(range(1, len(ans.sources) + 1))


def test_a_name_joined_to_a_year_is_the_same_name(tmp_settings):
    from rag import api
    from rag.types import Paper

    filler = [Paper(f"2601.{i:05d}", f"Speech translation accepted paper {i}", arxiv_id=f"2601.{i:05d}",
                    abstract=f"We translate speech with accepted methods, variant {i}.", comment="Accepted at a venue")
              for i in range(20)]
    joined = Paper("2602.00001", "Think-Clip-Sample for long videos", arxiv_id="2602.00001",
                   abstract="We sample clips of long videos.", comment="Accepted by ICASSP2026")
    spaced = Paper("2602.00002", "Layer-aware experts", arxiv_id="2602.00002",
                   abstract="We add LoRA experts.", comment="Accepted by ICASSP 2026")
    assert api.ingest_papers([*filler, joined, spaced], tmp_settings, name="t").ok
    ans = api.ask("Which papers were accepted at ICASSP 2026?", tmp_settings.model_copy(update={"top_k": 2}))
    assert {"2602.00001", "2602.00002"} <= {c.paper_id for c in ans.citations}


def test_a_question_about_the_authors_other_papers_retrieves_them(tmp_settings):
    from rag import api
    from rag.types import Paper

    filler = [Paper(f"2601.{i:05d}", f"Retrieval algorithms evolved by LLMs, part {i}", arxiv_id=f"2601.{i:05d}",
                    abstract=f"We evolve retrieval algorithms with language models, part {i}.",
                    authors=(f"Person {chr(65 + i)}",)) for i in range(12)]
    named = Paper("2602.16932", "RankEvolve: Automating the Discovery of Retrieval Algorithms", arxiv_id="2602.16932",
                  abstract="We discover retrieval algorithms.", authors=("Jinming Nian", "Fangchen Li", "Yi Fang"))
    theirs = Paper("2410.14567", "ELOQ: Resources for Out-of-Scope Questions", arxiv_id="2410.14567",
                   abstract="We detect questions a knowledge base cannot answer.",
                   authors=("Zhiyuan Peng", "Jinming Nian", "Yi Fang"))
    assert api.ingest_papers([*filler, named, theirs], tmp_settings, name="t").ok
    ans = api.ask("Do the RankEvolve authors have another paper in these digests?", tmp_settings)
    assert [c.paper_id for c in ans.citations] == ["2410.14567"]
    assert ans.sources[0].paper_id == "2602.16932"


def test_a_list_asking_where_papers_were_accepted_looks_through_their_comments(tmp_settings):
    from rag import api
    from rag.types import Paper

    filler = [Paper(f"2601.{i:05d}", f"Papers accepted by reviewers, study {i}", arxiv_id=f"2601.{i:05d}",
                    abstract=f"We study which papers reviewers accepted at conferences, study {i}.")
              for i in range(16)]
    quiet = [Paper("2602.00001", "Semantic IDs for music", arxiv_id="2602.00001", abstract="We tokenize songs.",
                   comment="Proceedings of the ACM Web Conference 2025"),
             Paper("2602.00002", "Masked fine-tuning", arxiv_id="2602.00002", abstract="We mask parameters.",
                   comment="Accepted at SIGIR 2025")]
    assert api.ingest_papers([*filler, *quiet], tmp_settings, name="t").ok
    s = tmp_settings.model_copy(update={"top_k": 2})
    ans = api.ask("Which papers were accepted at 2025 conferences?", s)
    assert {"2602.00001", "2602.00002"} <= {c.paper_id for c in ans.citations}
    assert "Web Conference 2025" in ans.text and "SIGIR 2025" in ans.text


def test_catalogue_from_before_title_keys_is_upgraded_and_read_only_copy_still_pins(sample_settings, tmp_path, capsys):
    """An index built before the title-key table: a read-only open pins by scanning every title, a writable
    open builds the table once (with a note), and both pin exactly what the fresh table pins."""
    import shutil
    import sqlite3

    from rag.retrieve import forget_store, pinned_papers
    from rag.store import Store, open_store

    st = open_store(sample_settings)
    titles = [t for _, _, t in st.title_rows()]
    questions = [f"Who wrote {t}?" for t in titles] + [f"compare {a} with {b}" for _, a, _ in st.title_rows()[:4]
                                                        for _, b, _ in st.title_rows()[4:6]]
    fresh = [pinned_papers(st, q) for q in questions]
    st.close()
    assert sum(map(bool, fresh)) >= len(titles)
    old = tmp_path / "old"
    shutil.copytree(sample_settings.index_dir, old)
    s = sample_settings.model_copy(update={"index_dir": str(old)})
    db = sqlite3.connect(Store(s, readonly=True).db_path)
    with db:
        db.execute("DROP TABLE title_keys")
        db.execute("DELETE FROM meta WHERE key IN ('title_keys', 'title_words')")
    db.close()
    ro = Store(s, readonly=True)  # (as a read-only mount opens it)
    assert not ro.title_keys_ready()
    assert [pinned_papers(ro, q) for q in questions] == fresh
    ro.close()
    forget_store(s)
    capsys.readouterr()
    rw = Store(s)
    assert "indexing the titles of" in capsys.readouterr().err
    assert rw.title_keys_ready() and [pinned_papers(rw, q) for q in questions] == fresh
    rw.close()
    Store(s).close()
    assert "indexing the titles" not in capsys.readouterr().err  # once


def test_term_lookup_in_the_catalogue_equals_the_segments_vocabulary(sample_settings, tmp_path):
    """BM25 term ids come from the catalogue's term table (no whole-vocabulary dict per process): the same
    ids, prefix lists and scores as the segment files' own vocabulary; a catalogue whose terms disagree
    with the segment files is not used for lookups."""
    import shutil
    import sqlite3

    from rag.retrieve import SegmentedBM25, _bm25, bm25_search
    from rag.store import Store, _load_bm25_cached, open_store

    st = open_store(sample_settings)
    try:
        model = _bm25(st)[0]
        assert model._lookup is not None
        vocab = dict(model.vocab_dict)
        words = sorted(vocab)
        probe = words[::7] + ["no-such-term", "", "抖音", words[-1]]
        assert model.term_ids(probe) == {t: vocab[t] for t in probe if t in vocab}
        plain = SegmentedBM25(model.segs, vocab)  # the segments' own vocabulary
        for prefix in ("distill", "rec", "semantic", "zzz", "搜"):
            assert model.prefixed(prefix, 6) == plain.prefixed(prefix, 6) == [w for w in words if w.startswith(prefix)][:6]
        for q in ("RQ-VAE semantic IDs", "抖音 搜索 部署", "knowledge distillation relevance model"):
            assert bm25_search(st, q, sample_settings, 10, None)
    finally:
        st.close()
    other = tmp_path / "ix"
    shutil.copytree(sample_settings.index_dir, other)
    s = sample_settings.model_copy(update={"index_dir": str(other)})
    db = sqlite3.connect(Store(s, readonly=True).db_path)
    with db:
        db.execute("UPDATE terms SET id = id + 1000000")  # as if another catalogue had been put next to them
    db.close()
    _load_bm25_cached.cache_clear()
    st = Store(s, readonly=True)
    try:
        model = st.load_bm25()[0]
        assert model._lookup is None and model.term_ids(probe) == {t: vocab[t] for t in probe if t in vocab}
    finally:
        st.close()


def test_df_lower_bound_from_offsets_never_exceeds_the_live_count(tmp_path, seeds_dir, monkeypatch):
    """SegmentedBM25.df_at_least (used to skip common words without decoding them) is <= df, and equal when
    no position is dead; with dead positions (a file re-ingested as a new segment) it stays a lower bound."""
    from rag import delta, retrieve
    from rag.config import Settings
    from rag.store import open_store

    monkeypatch.setattr(delta, "_FULL_SHARE", float("inf"))  # an incremental update: earlier copies go dead
    monkeypatch.setattr(retrieve, "_BM25_MERGE_FACTOR", 0)
    monkeypatch.setattr(retrieve, "_BM25_MERGE_SHARE", float("inf"))
    s = Settings(index_dir=str(tmp_path / "ix"), answerer="extractive")
    files = sorted(Path(seeds_dir).glob("*.txt"))
    assert api.ingest(files, s).ok
    st = open_store(s)
    model = retrieve._bm25(st)[0]
    cols = range(0, len(model.segs[0]["indptr"]) - 1, 37)
    assert model.alive.all() and all(model.df_at_least(c) == model.df(c) for c in cols)
    st.close()
    api.remove([files[-1]], settings=s)  # its papers' chunks go dead in the BM25 files
    st = open_store(s)
    model = retrieve._bm25(st)[0]
    assert not model.alive.all()  # some positions are dead: the bound is tested where it differs
    assert all(model.df_at_least(c) <= model.df(c) for c in cols)
    st.close()
