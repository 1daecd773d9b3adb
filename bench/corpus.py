"""Benchmark corpora: subsets of the scale corpus (first N unique papers) and the query set."""
from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "scale"
# --fields names -> what to keep of a daily-arXiv record ("abstract" is its "summary")
_AI_FIELDS = {"tldr_zh": "tldr", "motivation_zh": "motivation", "method_zh": "method",
              "result_zh": "result", "conclusion_zh": "conclusion"}
ALL_FIELDS = ("abstract", *_AI_FIELDS)


def day_files(corpus: Path) -> list[Path]:
    """The corpus's gzipped JSON Lines days, oldest first."""
    files = sorted(corpus.glob("*.jsonl.gz"))
    if not files:
        raise SystemExit(f"{corpus}: no *.jsonl.gz files; pass --corpus DIR with daily-arXiv jsonl.gz files")
    return files


def _records(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield line, json.loads(line)


def _trim(obj: dict, fields: tuple[str, ...]) -> dict:
    """Drop the text fields not benchmarked (so fewer chunks are embedded)."""
    if "abstract" not in fields:
        obj.pop("summary", None)
    ai = obj.get("AI")
    if isinstance(ai, dict):
        obj["AI"] = {k: v for k, v in ai.items()
                     if k not in _AI_FIELDS.values() or any(_AI_FIELDS[f] == k for f in fields if f in _AI_FIELDS)}
    return obj


def write_subset(corpus: Path, n: int, out: Path, fields: tuple[str, ...] = ALL_FIELDS) -> dict:
    """Write the lines of the first ``n`` unique papers (in day order) as jsonl.gz days into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    chosen: set[str] = set()
    files = lines = 0
    for day in day_files(corpus):
        keep = []
        for line, obj in _records(day):
            pid = str(obj.get("id", ""))
            if pid not in chosen and len(chosen) < n:
                chosen.add(pid)
            if pid in chosen:
                keep.append(line if fields == ALL_FIELDS else json.dumps(_trim(obj, fields), ensure_ascii=False) + "\n")
        if keep:
            _write_if_changed(out / day.name, gzip.compress("".join(keep).encode("utf-8"), mtime=0))
            files, lines = files + 1, lines + len(keep)
    return {"papers": len(chosen), "files": files, "lines": lines}


def _write_if_changed(path: Path, data: bytes) -> None:
    """Leave a day that already holds these bytes alone (as a user's old digests stay put: a grown
    subset then changes only the days that gained papers, not every file's mtime and gzip header)."""
    if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.write_bytes(data)


# ---------------------------------------------------------------- queries

def _phrase(text: str, words: int, rng: random.Random) -> str:
    toks = text.split()
    if len(toks) <= words:
        return " ".join(toks)
    start = rng.randrange(0, min(len(toks) - words, 40))
    return " ".join(toks[start:start + words])


def make_queries(papers: list, n: int = 50, seed: int = 7) -> list[dict]:
    """~n real queries from the indexed papers: titles, abstract phrases, Chinese TL;DR phrases, questions."""
    rng = random.Random(seed)
    pool = sorted(papers, key=lambda p: p.paper_id)
    rng.shuffle(pool)
    out: list[dict] = []
    kinds = ["title", "phrase", "zh", "title_question", "zh_question"]
    for i, p in enumerate(pool):
        if len(out) >= n:
            break
        q = _query(p, kinds[i % len(kinds)], rng)
        if q:
            out.append({"q": q, "kind": kinds[i % len(kinds)], "paper_id": p.paper_id})
    return out


def _query(p, kind: str, rng: random.Random) -> str | None:
    if kind == "title":
        return p.title
    if kind == "phrase" and p.abstract:
        return _phrase(p.abstract, 8, rng)
    if kind == "title_question":
        return f"Which paper proposes {p.title.split(':')[0]}?"
    zh = p.tldr_zh or p.method_zh or ""
    zh = re.sub(r"\s+", "", zh)
    if not zh:
        return None
    piece = zh[:18]
    return f"哪篇论文{piece}？" if kind == "zh_question" else piece
