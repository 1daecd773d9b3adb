"""One typed Settings object for the whole pipeline."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 4  # bump when chunk text/metadata layout changes, and say why in SCHEMA_CHANGES
# What each schema version changed (an index built by an older one is re-embedded on the next
# ingest with this reason: see rag.ingest).
SCHEMA_CHANGES = {2: "metadata passages", 3: "dense vectors for English text only", 4: "text unwrapped"}


def schema_change(old: int) -> str:
    """Why an index built by schema ``old`` is rebuilt: the changes of every later version."""
    return ", ".join(SCHEMA_CHANGES[v] for v in range(old + 1, SCHEMA_VERSION + 1) if v in SCHEMA_CHANGES)


def _switch(value: str | None) -> str | None:
    """An on/off/auto environment value (1/true/yes = on, 0/false/no = off)."""
    if value is None:
        return None
    v = value.strip().lower()
    return "on" if v in ("1", "true", "yes", "on") else "off" if v in ("0", "false", "no", "off") else v


def _default_index_dir() -> str:
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("digestqa")) / "index")


class Settings(BaseModel):
    """Everything a run needs; build it with :meth:`Settings.from_env`."""

    model_config = ConfigDict(frozen=True)

    index_dir: str = Field(default_factory=_default_index_dir,
                           description="Data dir holding the Chroma index, catalogue and BM25 index "
                                       "(--index, DIGESTQA_INDEX).")
    chroma_url: str | None = Field(None, description="Chroma server URL; uses chromadb.HttpClient instead "
                                                     "of the embedded PersistentClient (--chroma-url, DIGESTQA_CHROMA_URL).")
    chroma_timeout: float = Field(60.0, gt=0, description="Seconds one request to the Chroma server may take "
                                                          "(connecting: at most 10 s); a server that does not "
                                                          "answer in time is reported, not waited for "
                                                          "(DIGESTQA_CHROMA_TIMEOUT).")
    embedder: str = Field("minilm-onnx", description="Embedding model: 'minilm-onnx' (offline default, English), "
                                                     "'e5-small-int4' or 'use-m-int8' (offline multilingual, extra "
                                                     "digestqa[multilingual]), 'openai:<model>' or "
                                                     "'st:<sentence-transformers name>' (DIGESTQA_EMBEDDER).")
    dense: Literal["auto", "en", "all"] = Field(
        "auto", description="Which passages get a dense vector: 'auto' = for the English-only MiniLM only English "
                            "text passages (Chinese text is mostly [UNK] to it and the metadata passage is not "
                            "prose; BM25 finds those), for other embedders every text passage; 'en' = only English "
                            "text passages; 'all' = every passage (DIGESTQA_DENSE).")
    glossary: Literal["auto", "on", "off"] = Field(
        "auto", description="The hand-written zh->en research glossary (rag/glossary.py), a fallback for Chinese "
                            "questions over English text when the embedder cannot bridge the languages: it adds the "
                            "English index words of the question's research terms to retrieval and lets the offline "
                            "answerer match them. 'auto' = on with the English-only MiniLM, off with a multilingual "
                            "embedder (measured: no gain with e5); 'on'/'off' force it (DIGESTQA_GLOSSARY).")
    chunk_tokens: int = Field(220, description="Max tokens (cl100k) per chunk; longer fields are split with overlap.")
    chunk_overlap: int = Field(40, description="Token overlap between consecutive windows of one field.")
    embed_batch: int = Field(32, description="Texts per embedding batch (length-sorted; 32 measured best on 2 cores).")
    top_k: int = Field(5, description="Papers (fused sources) handed to the answerer (--top-k).")
    candidates: int = Field(40, description="Chunks fetched from each of dense and BM25 before fusion.")
    rrf_k: int = Field(60, description="Reciprocal rank fusion constant.")
    bm25_tokenizer: str = Field("bigram", description="Chinese tokenisation for BM25: 'bigram' (CJK bigrams) or 'jieba'.")
    answer_dense: bool = Field(False, description="Let the offline answerer rank sentences by sentence-vector "
                                                  "similarity (the index's embedder) as well as by the question's "
                                                  "words (rag/qa/dense.py).")
    answerer: str = Field("auto", description="'auto' (LLM when OPENAI_API_KEY or OPENAI_BASE_URL is set, else "
                                              "extractive), 'llm' or 'extractive' (--answerer, DIGESTQA_ANSWERER).")
    model: str = Field("gpt-4o-mini", description="Chat model name for the LLM answerer (DIGESTQA_MODEL).")
    openai_api_key: str | None = Field(None, repr=False, description="API key (OPENAI_API_KEY); never printed.")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible endpoint (OPENAI_BASE_URL).")
    llm_timeout: float = Field(60.0, description="Budget in seconds until an LLM answer starts streaming: every "
                                                 "attempt, backoff wait and the server's prompt processing; it is "
                                                 "also the read timeout, so a server that accepts the connection "
                                                 "and stalls (before or during its answer) fails within it "
                                                 "(DIGESTQA_LLM_TIMEOUT).")
    llm_connect_timeout: float = Field(10.0, description="Seconds to connect to the LLM endpoint (per attempt, "
                                                         "within llm_timeout).")
    llm_stream_timeout: float = Field(300.0, description="Longest a streamed LLM answer may take once it started "
                                                         "(seconds).")
    llm_retries: int = Field(3, description="Retries of one LLM request on 429/408/5xx, timeouts and connection "
                                            "failures, with exponential backoff (or the server's Retry-After) "
                                            "within llm_timeout; never once the answer has started.")
    temperature: float = Field(0.0, description="Sampling temperature for the LLM answerer.")
    max_answer_tokens: int = Field(400, description="Max tokens the LLM may generate.")
    llm_context_tokens: int = Field(900, description="Token budget (cl100k) of the sources sent to the LLM: each "
                                                     "source's header, then its best sentences for the question "
                                                     "(small local models read ~100 prompt tokens/s on 2 cores).")
    upload_max_mb: float = Field(50.0, description="Largest upload the UI accepts, in MB.")
    max_file_mb: float = Field(64.0, description="Digest files larger than this are refused at ingest, in MB.")
    max_chunks_per_paper: int = Field(64, description="Most chunks one paper may make; a paper with more text "
                                                      "(e.g. a 50 MB abstract) is indexed up to this many "
                                                      "chunks, with a warning (real digest papers: at most 10 in 2,087).")

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        values = {
            "index_dir": env.get("DIGESTQA_INDEX"),
            "chroma_url": env.get("DIGESTQA_CHROMA_URL"),
            "chroma_timeout": env.get("DIGESTQA_CHROMA_TIMEOUT"),
            "embedder": env.get("DIGESTQA_EMBEDDER"),
            "dense": env.get("DIGESTQA_DENSE"),
            "glossary": _switch(env.get("DIGESTQA_GLOSSARY")),
            "answerer": env.get("DIGESTQA_ANSWERER"),
            "model": env.get("DIGESTQA_MODEL"),
            "llm_timeout": env.get("DIGESTQA_LLM_TIMEOUT"),
            "openai_api_key": env.get("OPENAI_API_KEY"),
            "openai_base_url": env.get("OPENAI_BASE_URL"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{k: v for k, v in values.items() if v is not None})

    @property
    def collection_name(self) -> str:
        """Derived from embedder + chunk settings, so a stale index is never reused."""
        return self.collection_name_at(SCHEMA_VERSION)

    def collection_name_at(self, version: int) -> str:
        """The collection name these settings had under schema ``version`` (before 3 the key
        had no ``dense`` part), to find an index an older digestqa built."""
        dense = f"|{self.dense}" if version >= 3 else ""
        key = f"{self.embedder}|{self.chunk_tokens}|{self.chunk_overlap}{dense}|v{version}"
        if self.bm25_tokenizer != "bigram":  # stored BM25 tokens depend on it
            key += f"|{self.bm25_tokenizer}"
        slug = re.sub(r"[^a-zA-Z0-9]+", "-", self.embedder).strip("-")[:40]
        return f"dq-{slug}-{self.chunk_tokens}-{self.chunk_overlap}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"

    def embeds(self, field: str, lang: str) -> bool:
        """Whether a passage of this field/language gets a dense vector (see ``dense``)."""
        if self.dense == "all":
            return True
        if field == "meta":
            return False
        return lang == "en" or (self.dense == "auto" and not self.embedder.startswith("minilm"))

    @property
    def uses_glossary(self) -> bool:
        """Whether the zh->en glossary is in use (see ``glossary``)."""
        if self.glossary == "auto":
            return self.embedder.startswith("minilm")
        return self.glossary == "on"

    def llm_choice(self) -> tuple[str, str]:
        """(answerer, reason) — which answerer will run and why, never silently."""
        if self.answerer == "extractive":
            return "extractive", "extractive answerer chosen explicitly"
        if self.answerer == "llm":
            return "llm", "LLM answerer chosen explicitly"
        if self.openai_base_url:
            return "llm", f"OPENAI_BASE_URL is set ({self.openai_base_url})"
        if self.openai_api_key:
            return "llm", "OPENAI_API_KEY is set"
        return "extractive", "offline: no OPENAI_API_KEY or OPENAI_BASE_URL"
