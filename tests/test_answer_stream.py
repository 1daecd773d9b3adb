"""answer_stream end to end with retrieval stubbed by hand-made hits; the LLM path talks HTTP to FakeLLM."""
from __future__ import annotations

import pytest

import rag.retrieve
from rag import answer as answer_mod
from rag.answer import LLMError, answer_stream
from rag.config import Settings
from rag.types import CANNOT_ANSWER, Answer, Filters
from tests.fakes import INJECTION, FakeLLM, douyin_hits, hit, passage, rqvae_hits


@pytest.fixture
def retrieval(monkeypatch):
    """Stub retrieval: returns the hits you set and records the queries it got."""
    state = {"hits": rqvae_hits(), "queries": []}

    def fake(question, settings, filters, mode="hybrid"):
        state["queries"].append(question)
        return list(state["hits"])

    monkeypatch.setattr(rag.retrieve, "retrieve_hits", fake)
    return state


@pytest.fixture
def fake_llm():
    with FakeLLM() as server:
        yield server


def run(question, settings, history=()):
    items = list(answer_stream(question, settings, Filters(), list(history)))
    assert isinstance(items[-1], Answer) and all(isinstance(i, str) for i in items[:-1])
    return items[:-1], items[-1]


def llm_settings(server, **kw):
    return Settings(index_dir="/nonexistent", openai_base_url=server.base_url, llm_retries=kw.pop("retries", 0),
                    llm_timeout=kw.pop("timeout", 5.0), **kw)


def test_extractive_answer_fields(retrieval):
    s = Settings(index_dir="/nonexistent", answerer="auto")
    deltas, a = run("Which papers use RQ-VAE semantic IDs?", s)
    assert a.answerer == "extractive" and a.model is None and a.embedder == s.embedder
    assert a.reason.startswith("offline") and not a.abstained
    assert "".join(deltas).strip() == a.text and len(deltas) > 1
    assert a.sources == tuple(retrieval["hits"])
    assert {c.paper_id for c in a.citations} <= {h.paper_id for h in a.sources}
    assert set(a.timings_ms) == {"retrieve", "answer", "total"}
    assert a.timings_ms["total"] >= a.timings_ms["answer"] >= 0


def test_extractive_abstains_with_sentinel(retrieval):
    _, a = run("What BLEU score does Q-BERT4Rec get on WMT14?", Settings(index_dir="/x", answerer="extractive"))
    assert a.abstained and a.text.startswith(CANNOT_ANSWER) and a.citations == ()
    assert a.to_json()["abstained"] is True


def _lemur_hits():
    return [hit(1, "LEMUR: Large scale End-to-end MUltimodal Recommendation", "2511.10962", passage(
        "We propose LEMUR, a multimodal recommender trained end to end, with a memory bank mechanism. After one "
        "month of deployment in Douyin Search, LEMUR has led to a 0.81% improvement in QAUC."),
        passage("arXiv: 2511.10962. Authors: Xintian Han; Honggang Chen. Comment: KDD 2026. Submitted: 2025-11-13.",
                "meta"), authors=("Xintian Han", "Honggang Chen"))] + douyin_hits()[2:]


@pytest.mark.parametrize("turns", [
    [("Which paper was deployed in Douyin Search?", "LEMUR"), ("And who are its authors?", "Xintian Han"),
     ("When was it submitted?", "2025-11-13"), ("Which venue accepted the paper?", "KDD 2026")],
    [("哪篇论文部署在抖音搜索？", "LEMUR"), ("它的作者是谁？", "Xintian Han"), ("该论文是什么时候提交的？", "2025-11-13")],
])
def test_chat_follow_ups_keep_the_paper_across_turns(retrieval, turns):
    retrieval["hits"] = _lemur_hits()
    s = Settings(index_dir="/x", answerer="extractive")
    history = []
    for i, (q, expect) in enumerate(turns):
        _, a = run(q, s, history)
        assert expect in a.text and [c.arxiv_id for c in a.citations] == ["2511.10962"], (q, a.text)
        assert (a.interpreted != "") is (i > 0) and (i == 0 or "LEMUR" in retrieval["queries"][-1])
        history.append(a)


def test_a_question_naming_its_own_subject_is_not_a_follow_up(retrieval):
    retrieval["hits"] = _lemur_hits()
    s = Settings(index_dir="/x", answerer="extractive")
    _, first = run("Which paper was deployed in Douyin Search?", s)
    _, a = run("Who wrote GovScape?", s, [first])
    assert a.interpreted == "" and retrieval["queries"][-1] == "Who wrote GovScape?"


def test_follow_up_history_may_be_plain_question_answer_pairs(retrieval):
    retrieval["hits"] = _lemur_hits()
    history = [("Which paper was deployed in Douyin Search?", "- LEMUR (2511.10962): deployed in Douyin [1]")]
    _, a = run("And its QAUC?", Settings(index_dir="/x", answerer="extractive"), history)
    assert retrieval["queries"][-1] == "And LEMUR's QAUC?" and "0.81%" in a.text


def test_llm_streams_and_resolves_citations(retrieval, fake_llm):
    fake_llm.responder = lambda req: "Q-BERT4Rec uses residual vector quantization [1]. Junk [0] [99] [1-1000]."
    deltas, a = run("Which papers use RQ-VAE semantic IDs?", llm_settings(fake_llm))
    assert len(deltas) > 1 and "".join(deltas) == a.text
    assert a.answerer == "llm" and a.model == "fake-model" and "OPENAI_BASE_URL" in a.reason
    assert [c.arxiv_id for c in a.citations] == ["2512.02474"]
    assert {0, 99, 1000} <= set(a.dropped_citations)
    req = fake_llm.requests[-1]
    assert req["stream"] is True and req["messages"][0]["role"] == "system"
    assert "[1] Q-BERT4Rec" in req["messages"][-1]["content"]


def test_llm_history_is_sent_as_messages(retrieval, fake_llm):
    run("And MMGRec?", llm_settings(fake_llm), [("Which papers use RQ-VAE?", "Q-BERT4Rec [1].")])
    roles = [m["role"] for m in fake_llm.requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


def test_llm_abstention_gets_a_note(retrieval, fake_llm):
    fake_llm.responder = lambda req: CANNOT_ANSWER
    deltas, a = run("哪篇论文在抖音搜索部署了？", llm_settings(fake_llm))
    assert a.abstained and a.text.startswith(CANNOT_ANSWER + "\n") and "没有答案" in a.text
    assert "".join(deltas).strip() == a.text


def test_sdk_retries_429_then_succeeds(retrieval, fake_llm):
    fake_llm.statuses = [429, 503]
    fake_llm.responder = lambda req: "Residual vector quantization [1]."
    _, a = run("Which papers use RQ-VAE semantic IDs?", llm_settings(fake_llm, retries=2))
    assert len(fake_llm.requests) == 3 and [c.n for c in a.citations] == [1]
    gaps = [b - a for a, b in zip(fake_llm.times, fake_llm.times[1:])]
    assert all(g >= 0.3 for g in gaps)  # exponential backoff between attempts, not a tight loop


def test_rate_limit_after_retries_is_a_clear_error(retrieval, fake_llm):
    fake_llm.statuses = [429, 429]
    with pytest.raises(LLMError, match=r"rate-limiting \(HTTP 429\) \(2 attempts\)"):
        run("Which papers use RQ-VAE?", llm_settings(fake_llm, retries=1))
    assert len(fake_llm.requests) == 2


def test_wrong_key_is_a_clear_error(retrieval, fake_llm):
    fake_llm.statuses = [401]
    with pytest.raises(LLMError, match="rejected the API key.*OPENAI_API_KEY"):
        run("Which papers use RQ-VAE?", llm_settings(fake_llm, openai_api_key="sk-wrong"))


def test_unreachable_endpoint_no_fallback(retrieval):
    s = Settings(index_dir="/x", openai_base_url="http://127.0.0.1:9/v1", llm_retries=0, llm_timeout=2.0)
    with pytest.raises(LLMError) as err:
        run("Which papers use RQ-VAE semantic IDs?", s)
    msg = str(err.value)
    assert msg.startswith("cannot reach the LLM at http://127.0.0.1:9/v1")
    assert "unset OPENAI_BASE_URL or use --answerer extractive" in msg


def test_injection_in_sources_never_reaches_the_llm(retrieval, fake_llm):
    retrieval["hits"] = [hit(1, "ShopRec: Session Recommendation", "2501.00001",
                             passage(f"ShopRec improves NDCG by 3.1%. {INJECTION}"))]
    fake_llm.responder = lambda req: "ShopRec improves NDCG by 3.1% [1]."
    _, a = run("How much does ShopRec improve NDCG?", llm_settings(fake_llm))
    system = fake_llm.requests[-1]["messages"][0]["content"]
    user = fake_llm.requests[-1]["messages"][-1]["content"]
    assert INJECTION not in system and "never an instruction" in system
    assert "ShopRec improves NDCG by 3.1%." in user.split("<sources>")[1].split("</sources>")[0]
    assert INJECTION not in user  # instruction-like sentences are not evidence (the extractive answerer agrees)
    assert [c.n for c in a.citations] == [1]


def test_no_sources_llm_not_called(retrieval, fake_llm):
    retrieval["hits"] = []
    _, a = run("Which papers use RQ-VAE?", llm_settings(fake_llm))
    assert a.abstained and fake_llm.requests == [] and a.answerer == "llm"


def test_errors_map_to_messages():
    assert "did not respond within the 60 s budget" in str(answer_mod.llm_error(
        __import__("openai").APITimeoutError(request=__import__("httpx").Request("POST", "http://x")),
        Settings(index_dir="/x", openai_base_url="http://x")))


def test_list_questions_widen_retrieval_for_the_extractive_answerer(retrieval, monkeypatch):
    seen = []
    monkeypatch.setattr(rag.retrieve, "retrieve_hits",
                        lambda q, s, f, mode="hybrid": seen.append(f.top_k) or rqvae_hits())
    s = Settings(index_dir="/x", answerer="extractive", top_k=5)
    run("Which papers use RQ-VAE semantic IDs?", s)
    run("What does LAMIA learn?", s)
    list(answer_stream("Which papers use RQ-VAE?", s, Filters(top_k=3), []))
    assert seen == [10, None, 3]


def test_digest_date_questions_filter_retrieval_to_that_date(monkeypatch):
    seen = []
    monkeypatch.setattr(rag.retrieve, "retrieve_hits",
                        lambda q, s, f, mode="hybrid": seen.append((f.since, f.until)) or rqvae_hits())
    s = Settings(index_dir="/x", answerer="extractive")
    run("Which papers were listed in the arXiv Daily Report of 04-Dec-2025?", s)
    run("2025年12月4日的日报收录了哪些论文？", s)
    run("Which papers use RQ-VAE semantic IDs?", s)  # no date
    run("What did Q-BERT4Rec report on 2025-12-04?", s)  # not a list question
    list(answer_stream("Which papers were listed on 2025-12-04?", s, Filters(since="2025-01-01"), []))
    assert seen == [("2025-12-04", "2025-12-04"), ("2025-12-04", "2025-12-04"), (None, None), (None, None),
                    ("2025-01-01", None)]
