"""Load and validate an eval question file (JSON Lines).

Each line: ``{"id", "question", "lang", "kind", "must", "gold", "facts", "answerable"}``.
A malformed file is rejected as a whole with every problem as ``FILE:LINE: problem``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

KINDS = ("fact", "list", "attribution", "related", "crosslingual", "metadata", "unanswerable", "disambiguation",
         "multipart", "compare")
LANGS = ("en", "zh")
FIELDS = ("id", "question", "lang", "kind", "must", "gold", "facts", "answerable")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    lang: str
    kind: str
    must: tuple[str, ...]
    gold: tuple[str, ...]
    facts: tuple[str, ...]
    answerable: bool

    def to_json(self) -> dict:
        return {"id": self.id, "question": self.question, "lang": self.lang, "kind": self.kind,
                "must": list(self.must), "gold": list(self.gold), "facts": list(self.facts),
                "answerable": self.answerable}


class QuestionFileError(ValueError):
    """Raised with every problem of a question file, one ``FILE:LINE: problem`` per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def default_questions_path() -> Path:
    """The default question file: the bundled sample's dev set (package data ``eval/sets/sample-dev.jsonl``)."""
    from .sets import set_path

    return set_path("sample-dev")


def _check_str_list(obj: dict, key: str) -> list[str]:
    val = obj.get(key)
    if not isinstance(val, list) or not all(isinstance(x, str) and x.strip() for x in val):
        return [f"'{key}' must be a list of non-empty strings"]
    return []


def _check_ref(ref: str) -> str | None:
    for alt in ref.split("|"):
        alt = alt.strip()
        if alt.lower().startswith("title:"):
            if not alt[6:].strip():
                return f"empty title ref {ref!r}"
        elif not alt:
            return f"empty ref in {ref!r}"
    return None


def _check_facts(facts: list) -> list[str]:
    out = []
    for f in facts:
        try:
            re.compile(f)
        except re.error as e:
            out.append(f"fact {f!r} is not a valid regular expression ({e})")
    return out


def _check_types(obj: dict) -> list[str]:
    probs = [f"missing field '{k}'" for k in FIELDS if k not in obj]
    if probs:
        return probs
    for k in ("id", "question"):
        if not isinstance(obj[k], str) or not obj[k].strip():
            probs.append(f"'{k}' must be a non-empty string")
    if obj["lang"] not in LANGS:
        probs.append(f"'lang' must be one of {', '.join(LANGS)} (got {obj['lang']!r})")
    if obj["kind"] not in KINDS:
        probs.append(f"'kind' must be one of {', '.join(KINDS)} (got {obj['kind']!r})")
    if not isinstance(obj["answerable"], bool):
        probs.append("'answerable' must be true or false")
    for k in ("must", "gold", "facts"):
        probs += _check_str_list(obj, k)
    return probs


def _check_semantics(obj: dict) -> list[str]:
    probs = [p for r in obj["must"] + obj["gold"] if (p := _check_ref(r))]
    probs += _check_facts(obj["facts"])
    if obj["kind"] == "unanswerable" and obj["answerable"]:
        probs.append("kind 'unanswerable' needs \"answerable\": false")
    if not obj["answerable"] and (obj["must"] or obj["facts"]):
        probs.append("an unanswerable question cannot have 'must' refs or 'facts' (put related papers in 'gold')")
    if obj["answerable"] and not (obj["must"] or obj["facts"]):
        probs.append("an answerable question needs at least one 'must' ref or 'fact'")
    if obj["kind"] == "multipart" and len(obj["facts"]) < 2:
        probs.append("a multipart question needs one fact regex per part (at least 2)")
    return probs


def validate_record(obj: object) -> list[str]:
    """Problems of one parsed line (empty when valid)."""
    if not isinstance(obj, dict):
        return ["line is not a JSON object"]
    probs = _check_types(obj)
    unknown = sorted(set(obj) - set(FIELDS))
    probs += [f"unknown field '{k}'" for k in unknown]
    return probs or _check_semantics(obj)


def _to_question(obj: dict) -> Question:
    return Question(id=obj["id"], question=obj["question"], lang=obj["lang"], kind=obj["kind"],
                    must=tuple(obj["must"]), gold=tuple(obj["gold"]), facts=tuple(obj["facts"]),
                    answerable=obj["answerable"])


def parse_lines(lines: list[str], name: str) -> list[Question]:
    """Validate every line; raise :class:`QuestionFileError` listing all problems."""
    problems: list[str] = []
    out: list[Question] = []
    seen: dict[str, int] = {}
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{name}:{no}: invalid JSON ({e.msg} at column {e.colno})")
            continue
        probs = validate_record(obj)
        if not probs and obj["id"] in seen:
            probs = [f"duplicate id '{obj['id']}' (first on line {seen[obj['id']]})"]
        problems += [f"{name}:{no}: {p}" for p in probs]
        if not probs:
            seen[obj["id"]] = no
            out.append(_to_question(obj))
    if not out and not problems:
        problems.append(f"{name}: no questions in file")
    if problems:
        raise QuestionFileError(problems)
    return out


def load_questions(path: str | Path | None = None) -> list[Question]:
    """Read and validate a question file (default: the bundled set)."""
    p = Path(path) if path else default_questions_path()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise QuestionFileError([f"{p}: cannot read question file ({e})"]) from e
    return parse_lines(text.splitlines(), str(p))
