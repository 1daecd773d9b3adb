"""The "What's new" view (papers matching a watch, per-week counts) and the chat's Markdown/BibTeX export, as plain
Python over :mod:`rag.api` (no gradio import here; :mod:`ui.app` lays them out)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from rag import api
from rag.config import Settings

from .render import esc


def watch_choices(settings: Settings) -> list[str]:
    try:
        return [w.phrase for w in api.watches(settings)]
    except Exception:  # noqa: BLE001 - an unreadable state file: shown as no watches, the error on use
        return []


def add_watch(settings: Settings, phrase: str) -> tuple[str, list[str], str]:
    """(status html, watch choices, the phrase now selected)."""
    try:
        w = api.add_watch(phrase or "", settings)
    except ValueError as e:
        return f'<div class="dq-err">{esc(e)}</div>', watch_choices(settings), ""
    return f'<div class="dq-ok">Watching “{esc(w.phrase)}”.</div>', watch_choices(settings), w.phrase


def remove_watch(settings: Settings, phrase: str) -> tuple[str, list[str]]:
    ok = bool(phrase) and api.remove_watch(phrase, settings)
    msg = f"Removed “{esc(phrase)}”." if ok else "Choose a watch first."
    return f'<div class="{"dq-ok" if ok else "dq-warn"}">{msg}</div>', watch_choices(settings)


def _since(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"since date {value!r} is not YYYY-MM-DD (e.g. 2026-01-20)") from None


def matches_html(settings: Settings, phrase: str, since: str | None) -> str:
    """The papers matching ``phrase`` dated on/after ``since`` (default: the last 7 indexed days), newest first."""
    from rag.watch import default_since

    if not (phrase or "").strip():
        return '<div class="dq-warn">Add a watch (any language), then pick it here.</div>'
    try:
        start = _since(since) or default_since(settings)
        found = api.whats_new(phrase, start, None, settings).get(" ".join(phrase.split()), [])
    except ValueError as e:
        return f'<div class="dq-err">{esc(e)}</div>'
    found = sorted(found, key=lambda m: (m.date or "", m.score), reverse=True)
    head = (f'<div class="dq-wn-head"><b>{len(found)}</b> paper{"" if len(found) == 1 else "s"} matching '
            f'“{esc(phrase)}” since {esc(start or "the first digest")}</div>')
    items = []
    for m in found:
        title = f'<a href="{esc(m.url)}" target="_blank" rel="noopener">{esc(m.title)}</a>' if m.url else esc(m.title)
        items.append(f'<li class="dq-wn-item" data-paper="{esc(m.paper_id)}"><div>{title} '
                     f'<span class="dq-wn-meta">{esc(m.arxiv_id or m.paper_id)} · {esc(m.date or "")}</span></div>'
                     f'<div class="dq-wn-sentence">{esc(m.field)}: “{esc(m.sentence)}”</div>'
                     f'<div class="dq-wn-why">why: {esc(m.why)}</div></li>')
    return f'<div class="dq-whatsnew" id="dq-wn-list">{head}<ol>{"".join(items)}</ol></div>'


def week_figure(settings: Settings, phrase: str) -> Any:
    """A matplotlib bar chart: matching papers per week over every indexed week (None without a watch)."""
    if not (phrase or "").strip():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = api.watch_weeks(phrase, settings)
    fig, ax = plt.subplots(figsize=(8, 2.8), dpi=100)
    if weeks:
        labels = [w for w, _, _ in weeks]
        ax.bar(range(len(weeks)), [m for _, m, _ in weeks], color="#4f46e5")
        step = max(1, len(weeks) // 10)
        ax.set_xticks(range(0, len(weeks), step), labels[::step], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("papers")
    ax.set_title(f"Papers matching “{phrase}” per week", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def export_answer(settings: Settings, turns: Sequence[tuple[str, Any]] | None, fmt: str) -> str:
    """The last answer of the chat as Markdown (``fmt`` "md") or its cited papers as BibTeX ("bibtex")."""
    if not turns:
        return "Ask a question first."
    answer = turns[-1][1]
    if fmt == "md":
        return api.answer_markdown(answer, settings)
    return api.answer_bibtex(answer, settings) or "% the answer cites no paper"
