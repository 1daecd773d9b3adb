"""Optional LLM judge (``--judge``): correctness and faithfulness, only with a configured LLM."""
from __future__ import annotations

import json
import re
from typing import Any

from rag.config import Settings

PROMPT = """You grade an answer from a paper QA assistant.
Question: {question}
Answer: {answer}
Expected facts (regular expressions a correct answer matches): {facts}
The question is {answerable}.
Return JSON only: {{"correct": 0 or 1, "faithful": 0 or 1}} where correct = the answer answers the question
(or correctly declines when unanswerable) and faithful = it states nothing beyond what its citations would support."""


def unavailable_reason(settings: Settings) -> str | None:
    """Why the judge cannot run (None when it can)."""
    answerer, reason = settings.llm_choice()
    if answerer != "llm":
        return f"--judge needs an LLM (set OPENAI_API_KEY or OPENAI_BASE_URL); skipped: {reason}"
    return None


def _ask(client: Any, settings: Settings, rec: dict[str, Any]) -> dict[str, float]:
    msg = PROMPT.format(question=rec["question"], answer=rec["answer"] or "(empty)", facts=rec["facts"],
                        answerable="answerable" if rec["answerable"] else "NOT answerable from the corpus")
    resp = client.chat.completions.create(model=settings.model, temperature=0,
                                          messages=[{"role": "user", "content": msg}])
    text = resp.choices[0].message.content or ""
    m = re.search(r"\{.*\}", text, re.S)
    d = json.loads(m.group(0)) if m else {}
    return {"judge_correct": float(bool(d.get("correct"))), "judge_faithful": float(bool(d.get("faithful")))}


def judge_records(records: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """Add judge_* metrics to each record; returns {"message", "metrics"}."""
    reason = unavailable_reason(settings)
    if reason:
        return {"message": reason, "metrics": {}}
    from openai import OpenAI

    client = OpenAI(api_key=settings.openai_api_key or "none", base_url=settings.openai_base_url,
                    timeout=settings.llm_timeout, max_retries=settings.llm_retries)
    scores: dict[str, list[float]] = {"judge_correct": [], "judge_faithful": []}
    for rec in records:
        try:
            got = _ask(client, settings, rec)
        except Exception as e:  # noqa: BLE001 - a failing judge call skips that question
            rec["judge_error"] = f"{type(e).__name__}: {e}"
            continue
        rec["metrics"].update(got)
        for k, v in got.items():
            scores[k].append(v)
    metrics = {k: (sum(v) / len(v) if v else None) for k, v in scores.items()}
    return {"message": f"judged {len(scores['judge_correct'])}/{len(records)} with {settings.model}", "metrics": metrics}
