"""The What's new view and the chat export, through the real rag.api on the sample index (no browser)."""
from __future__ import annotations

import bibtexparser

from rag import api
from ui import whatsnew


def test_whats_new_view_lists_matches_and_plots_weeks(sample_settings):
    s = sample_settings
    html, choices, chosen = whatsnew.add_watch(s, "semantic IDs")
    try:
        assert "Watching" in html and "semantic IDs" in choices and chosen == "semantic IDs"
        page = whatsnew.matches_html(s, "semantic IDs", "2000-01-01")
        for m in api.whats_new("semantic IDs", "2000-01-01", None, s)["semantic IDs"]:
            assert f'data-paper="{m.paper_id}"' in page
        assert "2508.15281" in page and "why:" in page
        assert "YYYY-MM-DD" in whatsnew.matches_html(s, "semantic IDs", "last week")
        fig = whatsnew.week_figure(s, "semantic IDs")
        bars = fig.axes[0].patches
        assert len(bars) == len(api.watch_weeks("semantic IDs", s)) and sum(b.get_height() for b in bars) >= 2
        assert "<script" not in whatsnew.matches_html(s, "<script>alert(1)</script>", "2000-01-01")
    finally:
        whatsnew.remove_watch(s, "semantic IDs")
    assert "semantic IDs" not in whatsnew.watch_choices(s)


def test_export_last_answer_as_markdown_and_bibtex(sample_settings):
    a = api.ask("哪篇论文在抖音搜索部署了？", sample_settings)
    turns = [("哪篇论文在抖音搜索部署了？", a)]
    md = whatsnew.export_answer(sample_settings, turns, "md")
    assert "**References**" in md and "https://arxiv.org/abs/2511.10962" in md
    lib = bibtexparser.parse_string(whatsnew.export_answer(sample_settings, turns, "bibtex"))
    assert not lib.failed_blocks and "2511.10962" in {e.fields_dict["eprint"].value for e in lib.entries}
    assert whatsnew.export_answer(sample_settings, [], "md") == "Ask a question first."


def test_app_builds_with_the_new_views(sample_settings):
    from ui.app import build_app

    app = build_app(sample_settings)
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert {"dq-watch-pick", "dq-watch-plot", "dq-watch-list", "dq-export-md", "dq-export-bib"} <= ids
