"""Pure HTML rendering for the UI (no gradio import). Every digest string is HTML-escaped here."""
from __future__ import annotations

import html
import re
from typing import Mapping, Sequence

from rag.types import Answer, Citation, Hit, Paper

ZH_FIELDS: tuple[tuple[str, str], ...] = (
    ("tldr_zh", "TL;DR"), ("motivation_zh", "动机 Motivation"), ("method_zh", "方法 Method"),
    ("result_zh", "结果 Result"), ("conclusion_zh", "结论 Conclusion"),
)
FIELD_LABELS = {"abstract": "abstract", "tldr_en": "English summary", **dict(ZH_FIELDS)}
_CITE = re.compile(r"\[(\d+(?:\s*[,，]\s*\d+)*)\]")


def esc(text: object) -> str:
    """HTML-escape any value (None -> empty)."""
    return html.escape("" if text is None else str(text), quote=True)


def card_id(turn: int, n: int) -> str:
    """DOM id of source card ``n`` of chat turn ``turn`` (1-based)."""
    return f"src-{turn}-{n}"


def _cite_link(turn: int, n: int) -> str:
    return f'<a class="dq-cite" href="#{card_id(turn, n)}" data-src="{card_id(turn, n)}" title="Show source {n}">[{n}]</a>'


def linkify_citations(escaped: str, turn: int, known: set[int]) -> str:
    """Turn ``[n]`` / ``[1, 2]`` markers of already-escaped text into links to source cards."""
    def repl(m: re.Match) -> str:
        nums = [int(x) for x in re.split(r"\s*[,，]\s*", m.group(1))]
        if not all(n in known for n in nums):
            return m.group(0)
        return "".join(_cite_link(turn, n) for n in nums)
    return _CITE.sub(repl, escaped)


def _paragraphs(escaped: str) -> str:
    """Newlines -> <br> so the chat message stays one HTML block (no markdown parsing inside)."""
    return escaped.strip().replace("\r", "").replace("\n", "<br>")


def answer_html(answer: Answer, turn: int) -> str:
    """The assistant chat message for a finished answer; sentences its cited sources do not support (or that
    cite nothing) are marked in the text and listed under it, never hidden."""
    known = {c.n for c in answer.citations}
    flagged = {c.text for c in answer.unsupported}
    body = _paragraphs("".join(
        _flag(linkify_citations(esc(seg), turn, known), bad) for seg, bad in _segments(answer.text, flagged)))
    if answer.abstained:
        return ('<div class="dq-answer dq-abstained"><div class="dq-badge">Not answerable from the indexed '
                f'digests</div><div>{body}</div></div>')
    warn = ""
    if answer.unsupported:
        items = "".join(f"<li>{esc(c.text)}{' (no citation)' if not c.cites else ''}</li>"
                        for c in answer.unsupported)
        warn = (f'<div class="dq-unsupported"><div class="dq-badge">Not supported by the cited sources '
                f'({len(answer.unsupported)}): check before use</div><ul>{items}</ul></div>')
    interpreted = (f'<div class="dq-interpreted">Answered as: {esc(answer.interpreted)}</div>'
                   if answer.interpreted else "")
    return f'<div class="dq-answer">{interpreted}{body}{warn}</div>'


def _flag(html_: str, bad: bool) -> str:
    if not bad or not html_.strip():
        return html_
    return f'<span class="dq-flagged" title="not backed by the cited source">{html_}</span>'


def _segments(text: str, flagged: set[str]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, flagged) in order: the answer's sentences whose marker-free text is a
    flagged claim are their own pieces, everything else (other sentences, whitespace) stays as it is."""
    from rag.cite import _sentences, strip_markers

    if not flagged:
        return [(text, False)]
    out, pos = [], 0
    for s in _sentences(text):
        at = text.find(s, pos)
        if at < 0 or strip_markers(s) not in flagged:
            continue
        out += [(text[pos:at], False), (s, True)]
        pos = at + len(s)
    return out + [(text[pos:], False)]


def streaming_html(partial: str) -> str:
    """The assistant chat message while deltas arrive."""
    return f'<div class="dq-answer dq-streaming">{_paragraphs(esc(partial))}<span class="dq-caret">▍</span></div>'


def error_html(message: str) -> str:
    return f'<div class="dq-answer dq-error"><b>Error:</b> {esc(message)}</div>'


def user_html(question: str) -> str:
    return f'<div class="dq-question">{_paragraphs(esc(question))}</div>'


def _mark_in(text: str, passage: str) -> str:
    """Escaped ``text`` with the first occurrence of ``passage`` wrapped in <mark>."""
    needle = passage.strip().strip("…").strip()
    i = text.find(needle) if len(needle) >= 12 else -1
    if i < 0:
        return esc(text)
    return esc(text[:i]) + "<mark>" + esc(needle) + "</mark>" + esc(text[i + len(needle):])


def _field_block(label: str, text: str, passage: str) -> str:
    return f'<div class="dq-field"><div class="dq-label">{esc(label)}</div><div>{_mark_in(text, passage)}</div></div>'


def _en_pane(paper: Paper | None, passage: str) -> str:
    if paper and paper.abstract:
        blocks = _field_block("Abstract", paper.abstract, passage)
        if paper.tldr_en:
            blocks += _field_block("English summary", paper.tldr_en, passage)
        return blocks
    if paper and paper.tldr_en:
        return _field_block("English summary", paper.tldr_en, passage)
    return '<div class="dq-empty">No English abstract in the indexed digests.</div>'


def _zh_pane(paper: Paper | None, passage: str) -> str:
    blocks = [_field_block(label, getattr(paper, name), passage)
              for name, label in ZH_FIELDS if paper is not None and getattr(paper, name)]
    return "".join(blocks) or '<div class="dq-empty">No Chinese TL;DR or summary in the indexed digests.</div>'


def _toggle(uid: str, paper: Paper | None, passage: str) -> str:
    """CSS-only toggle between the English abstract and the Chinese TL;DR/summary."""
    zh_first = bool(paper and not paper.abstract and not paper.tldr_en and paper.tldr_zh)
    en_checked, zh_checked = ("", " checked") if zh_first else (" checked", "")
    return (f'<div class="dq-toggle">'
            f'<input type="radio" class="dq-r-en" name="{uid}" id="{uid}-en"{en_checked}>'
            f'<label for="{uid}-en">English abstract</label>'
            f'<input type="radio" class="dq-r-zh" name="{uid}" id="{uid}-zh"{zh_checked}>'
            f'<label for="{uid}-zh">中文 TL;DR / 摘要</label>'
            f'<div class="dq-pane dq-pane-en">{_en_pane(paper, passage)}</div>'
            f'<div class="dq-pane dq-pane-zh">{_zh_pane(paper, passage)}</div></div>')


def _authors(authors: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(authors[:limit])
    more = f" + {len(authors) - limit} more" if len(authors) > limit else ""
    return esc(shown + more) if shown else "authors not given"


def _title_link(title: str, arxiv_id: str | None) -> str:
    if not arxiv_id:
        return f'<span class="dq-title">{esc(title)}</span> <span class="dq-noid">(no arXiv ID)</span>'
    url = f"https://arxiv.org/abs/{arxiv_id}"
    return (f'<a class="dq-title" href="{esc(url)}" target="_blank" rel="noopener noreferrer">{esc(title)}</a>'
            f' <a class="dq-arxiv" href="{esc(url)}" target="_blank" rel="noopener noreferrer">arXiv:{esc(arxiv_id)}</a>')


def _date_label(paper: Paper | None, hit: Hit | None) -> str:
    """'digest 2025-11-20' when a digest dated it, else 'submitted 2025-08-28', else unknown."""
    digest = sorted(s.date for s in paper.sources if s.date) if paper else []
    if digest:
        return f"digest {esc(digest[0])}"
    submitted = (paper.published if paper else None) or (hit.date if hit else None)
    return f"submitted {esc(submitted)}" if submitted else "date unknown"


def _meta(paper: Paper | None, hit: Hit | None) -> str:
    authors = paper.authors if paper else (hit.authors if hit else ())
    cats = paper.categories if paper else (hit.categories if hit else ())
    parts = [f'<span class="dq-authors">{_authors(authors)}</span>', f"<span>{_date_label(paper, hit)}</span>"]
    if cats:
        parts.append(f'<span>{esc(", ".join(cats))}</span>')
    return '<div class="dq-meta">' + " · ".join(parts) + "</div>"


def _highlighted(passage: str, sentence: str) -> str:
    """The passage with its supporting sentence marked (the whole passage marked if it is not found)."""
    at = passage.find(sentence) if sentence else -1
    if at < 0:
        return f"<mark>{esc(passage)}</mark>"
    end = at + len(sentence)
    return f'{esc(passage[:at])}<mark class="dq-evidence">{esc(sentence)}</mark>{esc(passage[end:])}'


def citation_card(c: Citation, turn: int, paper: Paper | None, hit: Hit | None) -> str:
    """One source card: title + arXiv link, authors, date, the supporting sentence highlighted in its passage
    with its support score, EN/ZH toggle."""
    cid = card_id(turn, c.n)
    label = FIELD_LABELS.get(c.field, c.field)
    support = (f'<div class="dq-support"><div class="dq-label">Supporting sentence ({esc(label)}, support '
               f'{c.evidence_support:.2f})</div><div class="dq-passage">{_highlighted(c.passage, c.evidence)}'
               f'</div></div>')
    return (f'<div class="dq-card" id="{cid}" data-paper="{esc(c.paper_id)}" data-arxiv="{esc(c.arxiv_id or "")}">'
            f'<div class="dq-head"><span class="dq-n">[{c.n}]</span>{_title_link(c.title, c.arxiv_id)}</div>'
            f'{_meta(paper, hit)}{support}{_toggle(cid + "-lang", paper, c.passage)}</div>')


def _other_hit(h: Hit) -> str:
    return (f'<li>{_title_link(h.title, h.arxiv_id)} <span class="dq-score">score {h.score:.3f}</span>'
            f' <span class="dq-fields">({esc(", ".join(h.fields))})</span></li>')


def turn_sources_html(answer: Answer, turn: int, papers: Mapping[str, Paper]) -> str:
    """Cards for every citation of one answer, then the uncited retrieved papers."""
    hits = {h.paper_id: h for h in answer.sources}
    cards = [citation_card(c, turn, papers.get(c.paper_id), hits.get(c.paper_id))
             for c in sorted(answer.citations, key=lambda c: c.n)]
    cited = {c.paper_id for c in answer.citations}
    others = [h for h in answer.sources if h.paper_id not in cited]
    html_ = "".join(cards) or '<div class="dq-empty">No sources cited.</div>'
    if others:
        html_ += ('<details class="dq-others"><summary>Also retrieved (not cited): '
                  f'{len(others)}</summary><ul>{"".join(_other_hit(h) for h in others)}</ul></details>')
    return html_


def sources_panel_html(turns: Sequence[tuple[str, Answer]], papers: Mapping[str, Paper]) -> str:
    """All turns' source cards, newest first; earlier turns collapsed (so old [n] links still resolve)."""
    if not turns:
        return ('<div class="dq-sources"><div class="dq-empty">Sources appear here. Click a '
                '<span class="dq-cite-demo">[n]</span> marker in an answer to jump to its paper.</div></div>')
    parts = []
    for i in range(len(turns), 0, -1):
        question, answer = turns[i - 1]
        body = turn_sources_html(answer, i, papers)
        head = f'Q{i}: {esc(question)}'
        open_attr = " open" if i == len(turns) else ""
        parts.append(f'<details class="dq-turn" id="turn-{i}"{open_attr}><summary>{head}</summary>{body}</details>')
    return '<div class="dq-sources">' + "".join(parts) + "</div>"


def status_html(info: Mapping[str, object], answer: Answer | None = None) -> str:
    """Status line: answerer/model/embedder in use and why (+ timings of the last answer)."""
    model = f" ({esc(info.get('model'))})" if info.get("model") else ""
    bits = [f"<b>Answerer:</b> {esc(info.get('answerer'))}{model}",
            f"<b>Embedder:</b> {esc(info.get('embedder'))}",
            f"<b>Why:</b> {esc(info.get('reason'))}",
            f"<b>Index:</b> <code>{esc(info.get('index_dir'))}</code>"]
    if answer is not None:
        t = answer.timings_ms or {}
        total = (t.get("total") or sum(v for k, v in t.items() if k != "load")) + t.get("load", 0.0) if t else None
        took = f" in {total:.0f} ms" if total else ""
        bits.append(f"<b>Last answer:</b> {esc(answer.answerer)}{took}"
                    + (f" — {esc(answer.reason)}" if answer.reason and answer.reason != info.get("reason") else ""))
    return '<div class="dq-status">' + " · ".join(bits) + "</div>"
