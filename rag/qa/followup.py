"""Chat follow-ups: "it", "its", "they", "该论文", "它" refer to the papers the previous answers cited.

:func:`resolve` rewrites a follow-up so that it names those papers ("and who are its authors?" ->
"and who are LEMUR's authors?"); retrieval and the answerers then work on an ordinary question. The referent
is the set of papers cited by the most recent answer that cited any, so it carries across several turns as
long as each answer cites the paper it talks about.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..text import language
from ..types import Answer
from .render import short_title
from .terms import question_terms

_EN_POSSESSIVE = re.compile(r"\b(?:its|their)\b", re.I)
_EN_SAME = re.compile(r"\bthe\s+same\s+(\w+)\b", re.I)
_EN_NOUN = re.compile(r"\b(?:this|that|the|these|those)\s+(?:paper|papers|work|works|method|methods|model|"
                      r"models|approach|framework|system|study|one|ones)\b|\b(?:it|they|them)\b", re.I)
_ZH_POSSESSIVE = re.compile(r"它们的|它的|其(?![中他它余实次])")
_ZH_NOUN = re.compile(r"它们|它|该论文|该文|该方法|该模型|这篇论文|这篇文章|这篇|那篇|这些论文|这些|上述论文|上述方法|同一篇")
_ARXIV = re.compile(r"\b(\d{4}\.\d{4,5})\b")
_LINE_NAME = re.compile(r"^- (.+?) [(（](\d{4}\.\d{4,5}|no arXiv ID|无 arXiv ID)[)）]", re.M)
MAX_PAPERS = 5
SHORT_WORDS = 5


@dataclass(frozen=True)
class Resolved:
    question: str  # the question with its references replaced by paper names (unchanged if not a follow-up)
    papers: tuple[str, ...] = ()  # ids of the papers referred to
    followup: bool = False


def _turn_papers(turn) -> list[tuple[str, str]]:
    """(paper id, name) of the papers an earlier answer cited, in citation order."""
    if isinstance(turn, Answer):
        if turn.abstained:
            return []
        seen: dict[str, str] = {}
        for c in turn.citations:
            seen.setdefault(c.paper_id, short_title(c.title))
        return list(seen.items())
    _q, text = turn
    return [(pid if pid[0].isdigit() else name, name) for name, pid in _LINE_NAME.findall(text or "")]


def referents(history: list) -> list[tuple[str, str]]:
    """Papers of the most recent earlier answer that cited any (at most MAX_PAPERS)."""
    for turn in reversed(history):
        papers = _turn_papers(turn)
        if papers:
            return papers[:MAX_PAPERS]
    return []


def _name(names: list[str], lang: str) -> str:
    quoted = [n if len(n.split()) == 1 else f"“{n}”" for n in names]
    return (" 和 " if lang == "zh" else " and ").join(quoted)


def is_followup(question: str, names_paper: bool = False) -> bool:
    """A question that points back ("it", "its", "该论文") or is too short to stand alone ("and the venue?").
    One that names a paper (``names_paper``: the index knows it by that name) stands alone: its "it" is that
    paper; so does a short one with technical terms of its own."""
    if names_paper:
        return False
    if _EN_POSSESSIVE.search(question) or _EN_NOUN.search(question) or _EN_SAME.search(question) \
            or _ZH_POSSESSIVE.search(question) or _ZH_NOUN.search(question):
        return True
    words = len(question.split()) if language(question) == "en" else len(re.findall(r"[\u3400-\u9fff]", question)) // 2
    return words < SHORT_WORDS and not any(t.required for t in question_terms(question))


def resolve(question: str, history: list, names_paper=lambda q: False) -> Resolved:
    """The question with its references to earlier answers' papers spelled out. ``names_paper(question)``
    tells whether the question names an indexed paper itself."""
    if not history or not is_followup(question, names_paper(question)):
        return Resolved(question)
    papers = referents(history)
    if not papers:
        return Resolved(question)
    lang = language(question)
    name = _name([n for _, n in papers], lang)
    out = _rewrite(question, name, lang)
    if out == question:  # elliptic ("and the venue?", "作者呢？"): say what it is about
        out = f"{question.rstrip('?？ ')} ({name})?" if lang == "en" else f"{question.rstrip('?？ ')}（{name}）？"
    return Resolved(out, tuple(pid for pid, _ in papers), True)


def _rewrite(question: str, name: str, lang: str) -> str:
    if lang == "zh":
        out = _ZH_POSSESSIVE.sub(f"{name} 的", question, count=1)
        return _ZH_NOUN.sub(name, out, count=1) if out == question else out
    out = _EN_SAME.sub(lambda m: f"{m.group(0)} as {name}", question, count=1)
    if out == question:
        out = _EN_POSSESSIVE.sub(f"{name}'s", question, count=1)
    return _EN_NOUN.sub(name, out, count=1) if out == question else out
