"""The llama-index integration: DigestRetriever under llama-index's own RetrieverEvaluator gives the numbers of
`digestqa eval --retrieval-only`, and DigestQueryEngine keeps digestqa's citation checking with any LLM."""
from __future__ import annotations

import pytest

from rag import api
from rag.config import Settings
from rag.llamaindex import DigestQueryEngine, DigestRetriever, node_hit
from tests.test_llm_server import llama_server  # noqa: F401  (the module-scoped llama.cpp server fixture)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _expected_ids(questions, settings: Settings) -> list[tuple[str, list[str]]]:
    """(question, paper ids its `must` refs name) for every question the retrieval metrics score."""
    from eval.harness import build_catalogue
    from eval.metrics import ref_matches

    cat = build_catalogue(settings)
    items = [{"paper_id": p.paper_id, "arxiv_id": p.arxiv_id, "title": p.title} for p in api.papers(settings)]
    out = []
    for q in questions:
        if not q.answerable or not q.must:
            continue
        ids = [it["paper_id"] for it in items if any(ref_matches(r, it, cat) for r in q.must)]
        out.append((q.question, ids or ["<no such paper>"]))  # a ref that names nothing is a miss, as in eval
    return out


def test_retriever_evaluator_matches_digestqa_eval_retrieval_only(sample_settings, tmp_path):
    from llama_index.core.evaluation import RetrieverEvaluator

    from eval.harness import RETRIEVAL_ONLY_TOP_K, run_eval
    from eval.questions import load_questions
    from eval.sets import set_path

    path = set_path("sample-dev")
    rep = run_eval(path, sample_settings, tmp_path / "eval", retrieval_only=True, sample_if_empty=False)
    pairs = _expected_ids(load_questions(path), sample_settings)
    assert len(pairs) > 50

    def mean(metric: str, k: int) -> float:
        ev = RetrieverEvaluator.from_metric_names([metric], retriever=DigestRetriever(sample_settings, top_k=k))
        return sum(ev.evaluate(q, ids).metric_vals_dict[metric] for q, ids in pairs) / len(pairs)

    hit5, mrr = mean("hit_rate", 5), mean("mrr", RETRIEVAL_ONLY_TOP_K)
    assert hit5 == pytest.approx(rep.metrics["hit@5"], abs=1e-9), (hit5, rep.metrics["hit@5"])
    assert mrr == pytest.approx(rep.metrics["mrr"], abs=1e-9), (mrr, rep.metrics["mrr"])
    assert 0.5 < mrr <= 1.0


def test_retriever_nodes_carry_paper_metadata(sample_settings):
    nodes = DigestRetriever(sample_settings, top_k=3).retrieve("which papers use RQ-VAE semantic IDs")
    assert 1 <= len(nodes) <= 3
    hits = api.retrieve("which papers use RQ-VAE semantic IDs", sample_settings, api.Filters(top_k=3))
    assert [n.node.node_id for n in nodes] == [h.paper_id for h in hits]
    for n, h in zip(nodes, hits):
        m = n.node.metadata
        assert m["title"] == h.title and m["arxiv_id"] == (h.arxiv_id or "") and m["url"] == (h.url or "")
        assert n.score == pytest.approx(h.score) and h.passages[0].text in n.node.get_content()
        assert node_hit(n, h.rank) == h  # lossless: the engine cites exactly what digestqa would
        assert "passages" not in n.node.get_content(metadata_mode="llm")


def _scripted(reply):
    """A llama-index CustomLLM whose reply is ``reply(prompt)`` (unit test; the real server test is below)."""
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata

    class Scripted(CustomLLM):
        prompts: list = []

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="scripted")

        def complete(self, prompt: str, formatted: bool = False, **kw) -> CompletionResponse:
            self.prompts.append(prompt)
            return CompletionResponse(text=reply(prompt))

        def stream_complete(self, prompt: str, formatted: bool = False, **kw):
            yield self.complete(prompt)

    return Scripted()


def test_query_engine_checks_citations_of_any_llm(sample_settings):
    import re

    def reply(prompt: str) -> str:  # cite LEMUR by the number the prompt gives it
        n = re.search(r"^\[(\d+)\] LEMUR", prompt, re.M).group(1)
        return f"LEMUR was deployed in Douyin Search and cut query change rate decay by 0.843% [{n}]. " \
               f"It won the 2031 Nobel prize in chemistry for protein folding [{n}][7]."

    llm = _scripted(reply)
    engine = DigestQueryEngine(DigestRetriever(sample_settings, top_k=3), llm=llm)
    r = engine.query("Which paper was deployed in Douyin Search?")
    meta = r.metadata
    assert r.response.startswith("LEMUR was deployed") and meta["answerer"] == "llm" and meta["model"] == "scripted"
    assert 7 in meta["dropped_citations"], "a marker with no source is dropped"
    [c] = meta["citations"]
    assert c["paper_id"] == r.source_nodes[c["n"] - 1].node.node_id == "2511.10962"
    assert "0.843" in c["evidence"] and c["evidence_support"] > 0
    nobel = [x for x in meta["claims"] if "Nobel" in x["text"]]
    assert nobel and not nobel[0]["supported"]
    prompt = llm.prompts[-1]
    assert "<sources>" in prompt and "LEMUR" in prompt and "CANNOT_ANSWER" in prompt  # digestqa's prompt


def test_query_engine_without_llm_is_digestqa_answerer(sample_settings):
    q = "哪篇论文在抖音搜索部署了？"
    r = DigestQueryEngine(DigestRetriever(sample_settings)).query(q)
    a = api.ask(q, sample_settings)
    assert r.response == a.text and r.metadata["answerer"] == "extractive"
    assert [c["paper_id"] for c in r.metadata["citations"]] == [c.paper_id for c in a.citations]
    assert [n.node.node_id for n in r.source_nodes] == [h.paper_id for h in a.sources]


@pytest.mark.slow
def test_query_engine_real_llm(llama_server, sample_settings):
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model="SmolLM2", api_base=llama_server, api_key="not-needed", is_chat_model=True,
                     max_tokens=48, timeout=300, max_retries=0, temperature=0.0)
    engine = DigestQueryEngine(DigestRetriever(sample_settings, top_k=2), llm=llm)
    r = engine.query("Which papers use RQ-VAE semantic IDs?")
    meta = r.metadata
    assert meta["answerer"] == "llm" and r.response.strip() == meta["answer"]["answer"]
    ids = [n.node.node_id for n in r.source_nodes]
    assert len(ids) == 2
    for c in meta["citations"]:  # whatever a 135M model writes, every kept citation is one of the sources
        assert 1 <= c["n"] <= 2 and c["paper_id"] == ids[c["n"] - 1]
    assert all(0.0 <= c["support"] <= 1.0 for c in meta["citations"])
