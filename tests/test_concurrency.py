"""Several asks at once (as the UI serves them) give exactly the answers asked one at a time."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from eval.questions import load_questions
from rag import api

THREADS = 8
ASKS = 200


def _fingerprint(a):
    return a.text, tuple((c.n, c.paper_id, c.evidence) for c in a.citations), a.abstained


def test_eight_threads_answer_like_one(sample_settings):
    questions = [q.question for q in load_questions()][:40]
    sequential = {q: _fingerprint(api.ask(q, sample_settings)) for q in questions}
    work = [questions[i % len(questions)] for i in range(ASKS)]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda q: (q, _fingerprint(api.ask(q, sample_settings))), work))
    differ = [q for q, fp in results if fp != sequential[q]]
    assert not differ, f"{len(differ)} of {ASKS} concurrent answers differ, e.g. {differ[:3]}"
    assert sum(not fp[2] for fp in sequential.values()) > len(questions) // 2  # real answers, not abstentions
