"""Markdown tables for ``python -m bench.embedders report`` (from bench/results/embedders-*.json)."""
from __future__ import annotations


def _f(v, nd: int = 3) -> str:
    return "—" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def xling_table(doc: dict) -> list[str]:
    if not doc:
        return []
    any_ = next(iter(doc.values()))
    lines = [f"Cross-lingual: {any_['papers']} papers (English title + abstract indexed), query = the paper's "
             f"Chinese TL;DR ({any_.get('queries', any_['papers'])} queries); target = that paper", "",
             "| config | query | mode | hit@1 | hit@5 | MRR | ms/query |", "|---|---|---|---|---|---|---|"]
    for cfg, r in doc.items():
        for key, m in r["results"].items():
            variant, mode = key.split("/")
            q = "zh, Latin removed" if variant == "q_nolatin" else "zh as-is"
            lines.append(f"| {cfg} | {q} | {mode} | {_f(m['hit@1'])} | {_f(m['hit@5'])} | {_f(m['mrr'])} | "
                         f"{_f(m['ms_per_query'], 0)} |")
    lines += ["", "| config | ingest s | chunks | peak RSS MB |", "|---|---|---|---|"]
    lines += [f"| {c} | {_f(r['ingest_s'], 0)} | {r['chunks']} | {_f(r['peak_rss_mb'], 0)} |" for c, r in doc.items()]
    return lines


def sample_table(doc: dict) -> list[str]:
    if not doc:
        return []
    any_ = next(iter(doc.values()))
    keys = ("hit@1", "hit@5", "mrr", "citation_recall", "citation_precision", "fact_recall", "language_match")
    lines = [f"Bundled eval (eval/questions.jsonl over the sample, extractive answerer): all {any_['n']} "
             f"questions | the {any_['n_zh']} lang=zh questions", "",
             "| config | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for part in ("overall", "zh"):
        for cfg, r in doc.items():
            lines.append(f"| {cfg} ({'all' if part == 'overall' else 'zh'}) | "
                         + " | ".join(_f(r[part].get(k)) for k in keys) + " |")
    return lines


def scifact_table(doc: dict) -> list[str]:
    if not doc:
        return []
    any_ = next(iter(doc.values()))
    lines = [f"BEIR SciFact ({any_['docs']} abstracts: all judged + the first others; {any_['queries']} test queries)", "",
             "| config | dense nDCG@10 | dense R@100 | hybrid nDCG@10 | hybrid R@100 | BM25 nDCG@10 | ingest s | "
             "peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for cfg, r in doc.items():
        d, h, b = r["results"]["dense"], r["results"]["hybrid"], r["results"]["bm25"]
        lines.append(f"| {cfg} | {_f(d['ndcg@10'])} | {_f(d['recall@100'])} | {_f(h['ndcg@10'])} | "
                     f"{_f(h['recall@100'])} | {_f(b['ndcg@10'])} | {_f(r['ingest_s'], 0)} | {_f(r['peak_rss_mb'], 0)} |")
    return lines


def speed_table(doc: dict) -> list[str]:
    if not doc:
        return []
    base = {k.split("#")[1] if "#" in k else "1": r for k, r in doc.items() if k.split("#")[0] == "minilm"}
    n = next(iter(doc.values()))["texts"]
    lines = [f"Throughput ({n} SciFact abstracts, title + full text; each configuration in a fresh process, "
             "rounds alternate)", "",
             "| config | round | texts/s | vs MiniLM (same round) | CPU s/text | query ms | load s | RSS loaded MB | "
             "peak RSS MB |", "|---|---|---|---|---|---|---|---|---|"]
    for key, r in doc.items():
        cfg, _, rnd = key.partition("#")
        ref = base.get(rnd or "1")
        ratio = r["texts_per_s"] / ref["texts_per_s"] if ref else None
        lines.append(f"| {cfg} | {rnd or 1} | {_f(r['texts_per_s'], 1)} | {_f(ratio, 2)} | {_f(r['cpu_s_per_text'], 3)} | "
                     f"{_f(r['query_ms'], 1)} | {_f(r['load_s'], 2)} | {_f(r['rss_loaded_mb'], 0)} | "
                     f"{_f(r['peak_rss_mb'], 0)} |")
    return lines


def print_report(docs: dict) -> None:
    for part, fn in (("xling", xling_table), ("sample", sample_table), ("scifact", scifact_table),
                     ("speed", speed_table)):
        lines = fn(docs.get(part) or {})
        if lines:
            print("\n".join(lines) + "\n")
