"""The bundled question sets: which corpus each one is asked over, and its split.

Four files under ``eval/sets/``, named ``<corpus>-<split>.jsonl``:

- ``sample-dev``: questions over the bundled sample (the five seed digests) that the answerer was tuned on;
- ``sample-test``: new questions over the same sample, written by someone who did not read the answerer;
  nothing was ever fitted to them;
- ``corpora-dev`` / ``corpora-test``: the same, over two real digest collections nobody here wrote
  (``../shared/corpora/arxiv_daily_report_table`` and ``daily_arxiv_ai_enhanced/data``, ingested together).

The ``test`` splits are the headline numbers. The corpora are not part of a plain clone: they live in the
project's shared data dir (``--shared DIR``, ``DIGESTQA_SHARED``, or ``../shared`` beside the checkout).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("dev", "test")
CORPORA: dict[str, tuple[str, ...]] = {
    "sample": (),  # the bundled sample (rag.api.sample_paths())
    "corpora": ("corpora/arxiv_daily_report_table", "corpora/daily_arxiv_ai_enhanced/data"),
}


@dataclass(frozen=True)
class QuestionSet:
    name: str  # "<corpus>-<split>"
    corpus: str
    split: str
    path: Path


def set_path(name: str) -> Path:
    """Path of a bundled set file (package data ``eval/sets/<name>.jsonl``)."""
    from importlib.resources import files

    return Path(str(files("eval") / "sets" / f"{name}.jsonl"))


def bundled_sets(corpora: tuple[str, ...] | None = None, splits: tuple[str, ...] | None = None) -> list[QuestionSet]:
    """Every bundled set, optionally only some corpora/splits, in a fixed order."""
    return [QuestionSet(f"{c}-{s}", c, s, set_path(f"{c}-{s}")) for c in CORPORA for s in SPLITS
            if (not corpora or c in corpora) and (not splits or s in splits)]


def find_shared(explicit: str | Path | None = None) -> Path | None:
    """The shared data dir: ``explicit``, ``DIGESTQA_SHARED``, else ``../shared`` beside the cwd or the source."""
    cands = [explicit, os.environ.get("DIGESTQA_SHARED")] if explicit or os.environ.get("DIGESTQA_SHARED") \
        else [Path.cwd().parent / "shared", Path(__file__).resolve().parents[2] / "shared"]
    for c in cands:
        if c and (Path(c) / "corpora").is_dir():
            return Path(c)
    return None


def corpus_paths(corpus: str, shared: Path | None) -> list[Path] | None:
    """Files/folders to ingest for ``corpus``; None when they are not on this machine."""
    from rag import api

    if corpus == "sample":
        return api.sample_paths()
    if shared is None:
        return None
    paths = [shared / rel for rel in CORPORA[corpus]]
    return paths if all(p.exists() for p in paths) else None
