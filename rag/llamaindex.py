"""digestqa inside a llama-index app: a retriever over the index and a query engine that keeps citation checking.

- :class:`DigestRetriever` is a llama-index ``BaseRetriever``: a query returns one ``NodeWithScore`` per paper
  (the node id is the paper id; its text the paper's best passages; metadata: paper_id, arxiv_id, title, url,
  date, authors, categories, fields, rank), best first, from digestqa's hybrid retrieval (dense + BM25 by RRF).
  It works with llama-index's evaluators, postprocessors and query engines like any retriever.
- :class:`DigestQueryEngine` answers with any llama-index LLM (``llm=...``: OpenAI, OpenAILike, Ollama, a local
  model...), prompting it with digestqa's answer prompt (sources fenced as data), then resolves its ``[n]``
  markers against the retrieved papers exactly as digestqa does (``rag.cite``: citations with their evidence
  sentence and support, dropped numbers, per-sentence claims). Without ``llm`` it uses digestqa's own answerer
  (the offline extractive one unless an LLM is configured). ``response.metadata`` holds ``citations``,
  ``claims``, ``dropped_citations``, ``abstained`` and the full ``answer`` (``Answer.to_json()``).

    from rag.llamaindex import DigestRetriever, DigestQueryEngine
    engine = DigestQueryEngine(DigestRetriever(top_k=5), llm=my_llm)
    response = engine.query("which papers use RQ-VAE semantic IDs")
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from .config import Settings
from .types import Answer, Filters, Hit, Passage

_HIDDEN = ["passages", "rank", "fields", "paper_id"]  # kept out of what llama-index shows an LLM / embedder


def hit_node(hit: Hit) -> NodeWithScore:
    """One retrieved paper as a llama-index node (id = paper id; passages kept in metadata for citations)."""
    meta = {"paper_id": hit.paper_id, "arxiv_id": hit.arxiv_id or "", "title": hit.title, "url": hit.url or "",
            "date": hit.date or "", "authors": list(hit.authors), "categories": list(hit.categories),
            "fields": ", ".join(hit.fields), "rank": hit.rank,
            "passages": [{"chunk_id": p.chunk_id, "field": p.field, "lang": p.lang, "text": p.text,
                          "score": p.score} for p in hit.passages]}
    node = TextNode(id_=hit.paper_id, text="\n\n".join(p.text for p in hit.passages) or hit.title, metadata=meta,
                    excluded_llm_metadata_keys=list(_HIDDEN), excluded_embed_metadata_keys=list(_HIDDEN))
    return NodeWithScore(node=node, score=hit.score)


def node_hit(nws: NodeWithScore, rank: int) -> Hit:
    """The digestqa hit behind a node (a node from elsewhere becomes a one-passage hit)."""
    m = nws.node.metadata or {}
    passages = tuple(Passage(p["chunk_id"], p["field"], p["lang"], p["text"], p["score"])
                     for p in m.get("passages") or ())
    if not passages:
        passages = (Passage(nws.node.node_id, "text", "en", nws.node.get_content(), float(nws.score or 0.0)),)
    split = lambda v: tuple(v) if isinstance(v, (list, tuple)) else tuple(  # noqa: E731
        x.strip() for x in (v or "").split(",") if x.strip())
    return Hit(rank=rank, paper_id=m.get("paper_id") or nws.node.node_id, arxiv_id=m.get("arxiv_id") or None,
               title=m.get("title") or nws.node.node_id, score=float(nws.score or 0.0), passages=passages,
               date=m.get("date") or None, authors=split(m.get("authors")), categories=split(m.get("categories")))


class DigestRetriever(BaseRetriever):
    """digestqa's hybrid retrieval as a llama-index retriever (one node per paper, best first)."""

    def __init__(self, settings: Settings | None = None, filters: Filters | None = None, top_k: int | None = None,
                 mode: str = "hybrid", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settings = settings if settings is not None else Settings.from_env()
        f = filters or Filters()
        self._filters = replace(f, top_k=top_k) if top_k is not None else f
        self._mode = mode

    @property
    def settings(self) -> Settings:
        return self._settings

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        from . import api

        return [hit_node(h) for h in api.retrieve(query_bundle.query_str, self._settings, self._filters, self._mode)]


class DigestQueryEngine(BaseQueryEngine):
    """Answers with citations checked by digestqa (see the module doc)."""

    def __init__(self, retriever: BaseRetriever | None = None, llm: Any | None = None,
                 settings: Settings | None = None, **kwargs: Any) -> None:
        super().__init__(callback_manager=kwargs.pop("callback_manager", None))
        if settings is None:
            settings = retriever.settings if isinstance(retriever, DigestRetriever) else Settings.from_env()
        self._settings = settings
        self._retriever = retriever or DigestRetriever(settings)
        self._llm = llm

    def _get_prompt_modules(self) -> dict:
        return {}

    # -------------------------------------------------------------------------------------------- answering

    def _query(self, query_bundle: QueryBundle) -> Response:
        if self._llm is None:
            return self._own_answerer(query_bundle.query_str)
        t0 = time.perf_counter()
        nodes = self._retriever.retrieve(query_bundle)
        hits = [node_hit(n, i + 1) for i, n in enumerate(nodes)]
        t1 = time.perf_counter()
        text = self._llm.chat(self._messages(query_bundle.query_str, hits)).message.content or "" if hits else ""
        return self._response(query_bundle.query_str, text, hits, nodes, t0, t1)

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        if self._llm is None:
            return self._own_answerer(query_bundle.query_str)
        t0 = time.perf_counter()
        nodes = await self._retriever.aretrieve(query_bundle)
        hits = [node_hit(n, i + 1) for i, n in enumerate(nodes)]
        t1 = time.perf_counter()
        text = (await self._llm.achat(self._messages(query_bundle.query_str, hits))).message.content or "" \
            if hits else ""
        return self._response(query_bundle.query_str, text, hits, nodes, t0, t1)

    def _messages(self, question: str, hits: list[Hit]) -> list:
        from llama_index.core.llms import ChatMessage

        from .answer import messages, offline_helpers

        msgs = messages(question, hits, [], self._settings, **offline_helpers(question, self._settings))
        return [ChatMessage(role=m["role"], content=m["content"]) for m in msgs]

    def _response(self, question: str, text: str, hits: list[Hit], nodes: list[NodeWithScore], t0: float,
                  t1: float) -> Response:
        from .answer import finish
        from .types import CANNOT_ANSWER

        if not hits:
            text = f"{CANNOT_ANSWER}\nNo indexed paper matches the question."
        model = getattr(getattr(self._llm, "metadata", None), "model_name", None) or type(self._llm).__name__
        t2 = time.perf_counter()
        answer = finish(question, text, hits, "llm", model, self._settings,
                        f"llama-index LLM ({type(self._llm).__name__})",
                        {"retrieve": (t1 - t0) * 1000, "answer": (t2 - t1) * 1000, "total": (t2 - t0) * 1000})
        return to_response(answer, nodes)

    def _own_answerer(self, question: str) -> Response:
        from . import api

        f = getattr(self._retriever, "_filters", None)
        answer = api.ask(question, self._settings, f)
        return to_response(answer, [hit_node(h) for h in answer.sources])


def to_response(answer: Answer, nodes: list[NodeWithScore]) -> Response:
    """A digestqa Answer as a llama-index Response (source nodes in citation-number order)."""
    d = answer.to_json()
    meta = {"answer": d, "citations": d["citations"], "claims": d["claims"], "abstained": answer.abstained,
            "dropped_citations": d["dropped_citations"], "unsupported": d["unsupported"],
            "answerer": answer.answerer, "model": answer.model}
    return Response(response=answer.text, source_nodes=list(nodes), metadata=meta)
