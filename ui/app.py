"""Gradio web UI: Chat, Library and Eval tabs over :mod:`rag.api`.

gradio is imported lazily (inside functions) so importing :mod:`rag` never pays for it.
Run: ``python -m ui.app [--host H] [--port P] [--index DIR] [--auth user:pass]``.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from rag.config import Settings

from . import render
from .controller import TABLE_HEADERS, Controller
from .uploads import ALLOWED_SUFFIXES

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
EXAMPLES = [
    "which papers use RQ-VAE semantic IDs",
    "哪篇论文在抖音搜索部署了？",
    "Which papers study multimodal retrieval for e-commerce search?",
    "What is LAMIA and how does it differ from RQ-VAE?",
]
HEAD = """<script>
(function () {
  function openAncestors(el) {
    for (let p = el.parentElement; p; p = p.parentElement) { if (p.tagName === 'DETAILS') p.open = true; }
  }
  document.addEventListener('click', function (e) {
    const a = e.target.closest && e.target.closest('a[href^="#src-"], a[data-src]');
    if (!a) return;
    const id = a.getAttribute('data-src') || a.getAttribute('href').slice(1);
    const el = document.getElementById(id);
    e.preventDefault(); e.stopPropagation();
    if (!el) return;
    openAncestors(el);
    document.querySelectorAll('.dq-card.dq-active').forEach(function (c) { c.classList.remove('dq-active'); });
    el.classList.add('dq-active');
    el.scrollIntoView({behavior: 'smooth', block: 'start'});
  }, true);
})();
</script>"""


def _env_offline() -> None:
    """No analytics or telemetry; must run before gradio is imported."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _gradio():
    _env_offline()
    import gradio as gr

    return gr


def theme() -> Any:
    """A theme with system fonts only (the default one fetches web fonts)."""
    gr = _gradio()
    sans = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Noto Sans CJK SC", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]
    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate", font=sans, font_mono=mono)


def launch_options() -> dict[str, Any]:
    """css/head/theme to pass to ``Blocks.launch`` (gradio 6 takes them there)."""
    from .style import CSS

    return {"css": CSS, "head": HEAD, "theme": theme()}


class LoginThrottle:
    """Gradio auth with throttling: each wrong password costs a delay, and after ``limit`` wrong ones for a
    user within ``window`` seconds that user is refused (even with the right password) for a cool-down that
    doubles with each further failure (up to ``max_lock`` seconds); ``global_limit`` wrong passwords in the
    window, whatever the user names, refuse everyone the same way."""

    def __init__(self, user: str, password: str, limit: int = 5, window: float = 300.0, lock: float = 30.0,
                 max_lock: float = 900.0, delay: float = 1.0, global_limit: int = 50, clock=None):
        import threading
        import time

        self.user, self.password = user, password
        self.limit, self.window, self.lock, self.max_lock, self.delay = limit, window, lock, max_lock, delay
        self.global_limit = global_limit
        self.clock = clock or time.monotonic
        self.failures: dict[str, list[float]] = {}
        self._mutex = threading.Lock()

    def locked_for(self, user: str) -> float:
        """Seconds until ``user`` may try again (0 = now)."""
        now = self.clock()
        with self._mutex:
            waits = [self._wait(self.failures.get(user, []), self.limit, now),
                     self._wait(sorted(t for ts in self.failures.values() for t in ts), self.global_limit, now)]
        return max(waits)

    def _wait(self, times: list[float], limit: int, now: float) -> float:
        recent = [t for t in times if now - t < self.window]
        if len(recent) < limit:
            return 0.0
        cool = min(self.max_lock, self.lock * 2 ** (len(recent) - limit))
        return max(0.0, recent[-1] + cool - now)

    def check(self, user: str, password: str) -> bool:
        """True when the login is right and not throttled (records a failure otherwise)."""
        import hmac

        if self.locked_for(user) > 0:
            self._fail(user)
            return False
        ok = hmac.compare_digest(user.encode(), self.user.encode()) & \
            hmac.compare_digest(password.encode(), self.password.encode())
        if ok:
            with self._mutex:
                self.failures.pop(user, None)
            return True
        self._fail(user)
        return False

    def _fail(self, user: str) -> None:
        now = self.clock()
        with self._mutex:
            times = [t for t in self.failures.get(user, []) if now - t < self.window]
            self.failures[user] = times + [now]
            if len(self.failures) > 1000:  # bound the memory a flood of user names can take
                oldest = min(self.failures, key=lambda u: self.failures[u][-1])
                del self.failures[oldest]

    def gradio_auth(self):
        """An async callable for ``launch(auth=...)`` (a wrong password waits ``delay`` s, off the event loop)."""
        import asyncio

        async def auth(username: str, password: str) -> bool:
            if self.check(username, password):
                return True
            await asyncio.sleep(self.delay)
            return False

        return auth


def parse_auth(auth: str | tuple[str, str] | None) -> tuple[str, str] | None:
    """'user:pass' -> (user, pass); refuse malformed values with a clear error."""
    if auth is None or isinstance(auth, tuple):
        return auth
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise SystemExit("error: --auth must be 'user:pass' (both non-empty)")
    return user, password


def check_bind(host: str, auth: tuple[str, str] | None) -> None:
    """Binding beyond localhost needs a login."""
    if host not in LOCAL_HOSTS and auth is None:
        raise SystemExit(f"error: refusing to serve on {host} without a login; "
                         "pass --auth user:pass (or keep the default --host 127.0.0.1)")


# -- layout ------------------------------------------------------------------------------------
def _chat_tab(gr, ctl: Controller, status: Any) -> Any:
    turns = gr.State([])
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            chat = gr.Chatbot(label="Answers", height=520, elem_id="dq-chat", sanitize_html=True,
                              buttons=["copy"], placeholder="Ask about the papers in your digests. "
                              "Every claim cites its paper; click a [n] marker to see the source.")
            with gr.Row():
                box = gr.Textbox(placeholder="e.g. which papers use RQ-VAE semantic IDs", show_label=False,
                                 scale=5, elem_id="dq-question", autofocus=True, max_lines=4)
                ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="dq-ask")
            with gr.Row(elem_id="dq-examples"):
                ex_btns = [gr.Button(q, size="sm", variant="secondary") for q in EXAMPLES]
            with gr.Accordion("Filters", open=False, elem_id="dq-filters"):
                with gr.Row():
                    since = gr.Textbox(label="Since (YYYY-MM-DD)", placeholder="2025-11-01")
                    until = gr.Textbox(label="Until (YYYY-MM-DD)", placeholder="2025-12-31")
                with gr.Row():
                    category = gr.Dropdown(label="Category", choices=[""] + _safe(ctl.categories, []),
                                           value="", allow_custom_value=True)
                    author = gr.Textbox(label="Author contains", placeholder="e.g. Wang")
                top_k = gr.Slider(0, 20, value=0, step=1, elem_id="dq-topk",
                                  label=f"Papers to consult (top-k; 0 = automatic: {ctl.settings.top_k}, "
                                        "more for 'which papers' questions)")
            clear = gr.Button("New conversation", size="sm", variant="secondary")
            _export_row(gr, ctl, turns)
        with gr.Column(scale=2, min_width=360):
            gr.Markdown("### Sources")
            sources = gr.HTML(render.sources_panel_html([], {}), elem_id="dq-sources", js_on_load=None)
    inputs = [box, turns, since, until, category, author, top_k]
    outputs = [chat, sources, status, turns, box]
    for trigger in (ask_btn.click, box.submit):
        trigger(ctl.ask, inputs, outputs, concurrency_limit=4)
    for b, q in zip(ex_btns, EXAMPLES):
        b.click(lambda q=q: q, None, box).then(ctl.ask, inputs, outputs, concurrency_limit=4)
    clear.click(lambda: ([], render.sources_panel_html([], {}), ctl.status(), [], ""), None, outputs)
    return category


def _export_row(gr, ctl: Controller, turns: Any) -> None:
    """Copy the last answer as Markdown (numbered references, arXiv links) or its cited papers as BibTeX."""
    from . import whatsnew

    with gr.Accordion("Copy as Markdown / BibTeX", open=False, elem_id="dq-export"):
        with gr.Row():
            md_btn = gr.Button("Markdown", size="sm", elem_id="dq-export-md")
            bib_btn = gr.Button("BibTeX", size="sm", elem_id="dq-export-bib")
        out = gr.Code(label="Last answer (use the copy button)", language="markdown", lines=8, interactive=False,
                      elem_id="dq-export-out", buttons=["copy"])
    md_btn.click(lambda t: whatsnew.export_answer(ctl.settings, t, "md"), turns, out)
    bib_btn.click(lambda t: whatsnew.export_answer(ctl.settings, t, "bibtex"), turns, out)


def _whatsnew_tab(gr, ctl: Controller) -> Any:
    """Per watch: the papers matching it since a date, and a per-week count plot over the indexed dates."""
    from . import whatsnew

    choices = whatsnew.watch_choices(ctl.settings)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            pick = gr.Dropdown(label="Watch", choices=choices, value=choices[0] if choices else None,
                               elem_id="dq-watch-pick")
            since = gr.Textbox(label="Since (YYYY-MM-DD; empty = last 7 indexed days)", elem_id="dq-watch-since")
            show = gr.Button("Show what's new", variant="primary", elem_id="dq-watch-show")
            new_phrase = gr.Textbox(label="New watch (any language)", placeholder="e.g. semantic IDs / 生成式推荐",
                                    elem_id="dq-watch-new")
            with gr.Row():
                add = gr.Button("Add watch", size="sm", elem_id="dq-watch-add")
                remove = gr.Button("Remove selected", size="sm", variant="secondary", elem_id="dq-watch-remove")
            status = gr.HTML("", elem_id="dq-watch-status", js_on_load=None)
        with gr.Column(scale=3):
            plot = gr.Plot(label="Matching papers per week", elem_id="dq-watch-plot")
            listing = gr.HTML("", elem_id="dq-watch-list", js_on_load=None)

    def do_show(phrase, since_value):
        return whatsnew.matches_html(ctl.settings, phrase, since_value), whatsnew.week_figure(ctl.settings, phrase)

    def do_add(phrase, since_value):
        html, opts, chosen = whatsnew.add_watch(ctl.settings, phrase)
        shown = do_show(chosen, since_value) if chosen else ("", None)
        return html, gr.Dropdown(choices=opts, value=chosen or None), "", *shown

    def do_remove(phrase):
        html, opts = whatsnew.remove_watch(ctl.settings, phrase)
        return html, gr.Dropdown(choices=opts, value=opts[0] if opts else None)

    show.click(do_show, [pick, since], [listing, plot], concurrency_limit=2)
    pick.change(do_show, [pick, since], [listing, plot], concurrency_limit=2)
    add.click(do_add, [new_phrase, since], [status, pick, new_phrase, listing, plot], concurrency_limit=1)
    remove.click(do_remove, pick, [status, pick], concurrency_limit=1)
    return pick


def _safe(fn, default):
    """Call ``fn`` and fall back to ``default`` when the index is not ready yet."""
    try:
        return fn()
    except Exception:
        return default


def _library_tab(gr, ctl: Controller) -> tuple[Any, Any, Any]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            gr.Markdown("### Add digests\nSupported: " + " ".join(f"`{s}`" for s in ALLOWED_SUFFIXES)
                        + f" · up to {ctl.settings.upload_max_mb:g} MB each")
            files = gr.File(file_count="multiple", file_types=list(ALLOWED_SUFFIXES), label="Digest files",
                            elem_id="dq-upload")
            ingest_btn = gr.Button("Ingest", variant="primary", elem_id="dq-ingest")
            report = gr.HTML("", elem_id="dq-report", js_on_load=None)
            stats = gr.HTML(_safe(ctl.stats_html, ""), elem_id="dq-stats", js_on_load=None)
        with gr.Column(scale=3):
            search = gr.Textbox(label="Search papers", placeholder="title, author or arXiv ID (newest 500 shown)",
                                elem_id="dq-search")
            table = gr.Dataframe(value=_safe(ctl.table, []), headers=TABLE_HEADERS, interactive=False,
                                 wrap=True, max_height=560, elem_id="dq-table",
                                 column_widths=["12%", "36%", "21%", "11%", "11%", "9%"])

    seen = gr.State(0)  # finished ingest jobs this page has shown (its table is refreshed when it moves)
    timer = gr.Timer(1.0)

    def do_ingest(uploads):  # answers at once: the ingest runs as a job (ui/jobs.py), the timer follows it
        return ctl.submit_uploads(uploads), None

    def poll(query, shown):
        finished = ctl.finished_jobs()
        if finished == shown:
            return ctl.jobs_html() or gr.skip(), gr.skip(), gr.skip(), shown
        return ctl.jobs_html(), ctl.stats_html(), ctl.table(query), finished

    ingest_btn.click(do_ingest, [files], [report, files], concurrency_limit=None)
    timer.tick(poll, [search, seen], [report, stats, table, seen], concurrency_limit=None, show_progress="hidden")
    search.change(ctl.table, search, table)
    return search, table, stats


def _eval_tab(gr, ctl: Controller) -> None:
    from .evaltab import describe_eval, run_eval_ui

    gr.Markdown(describe_eval())
    with gr.Row():
        limit = gr.Slider(0, 100, value=0, step=5, label="Questions to run (0 = the whole set)", scale=3)
        run = gr.Button("Run eval on the bundled sample", variant="primary", elem_id="dq-eval-run", scale=1)
    with gr.Row(equal_height=False):
        out = gr.Markdown(elem_id="dq-eval-report")
        plot = gr.Image(label="Eval plot", type="filepath", interactive=False, elem_id="dq-eval-plot")

    def do_eval(n, progress=gr.Progress()):
        return run_eval_ui(ctl.settings, int(n or 0), lambda d, t, m: progress((d, t or None), desc=m))

    run.click(do_eval, limit, [out, plot], concurrency_limit=1)


def build_app(settings: Settings | None = None) -> Any:
    """The gradio Blocks app (pass :func:`launch_options` to its ``launch``)."""
    gr = _gradio()
    ctl = Controller(settings or Settings.from_env())
    with gr.Blocks(title="digestqa", analytics_enabled=False) as app:
        gr.HTML('<div class="dq-header"><h1>digestqa</h1><span>Ask your arXiv digests — every claim cites '
                'its paper.</span></div>', js_on_load=None)
        status = gr.HTML(ctl.status(), elem_id="dq-status", js_on_load=None)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                category = _chat_tab(gr, ctl, status)
            with gr.Tab("Library", id="library"):
                search, table, stats = _library_tab(gr, ctl)
            with gr.Tab("What's new", id="whatsnew"):
                _whatsnew_tab(gr, ctl)
            with gr.Tab("Eval", id="eval"):
                _eval_tab(gr, ctl)
        app.load(lambda q: _on_load(gr, ctl, q), search, [table, stats, category])
    return app


def _on_load(gr, ctl: Controller, query: str) -> tuple[Any, str, Any]:
    """Fresh table, stats and category choices for every page load (the index may have changed)."""
    ctl.refresh()
    choices = [""] + _safe(ctl.categories, [])
    return _safe(lambda: ctl.table(query), []), _safe(ctl.stats_html, ""), gr.Dropdown(choices=choices)


def launch(settings: Settings | None = None, host: str = "127.0.0.1", port: int = 7860,
           auth: str | tuple[str, str] | None = None, upload_max_mb: float | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False) -> Any:
    """Serve the UI (localhost unless ``host`` is given; a non-local host requires ``auth``)."""
    creds = parse_auth(auth)
    check_bind(host, creds)
    settings = settings or Settings.from_env()
    if upload_max_mb is not None:
        settings = settings.model_copy(update={"upload_max_mb": float(upload_max_mb)})
    app = build_app(settings)
    app.queue(default_concurrency_limit=2)
    login = LoginThrottle(*creds).gradio_auth() if creds else None
    app.launch(server_name=host, server_port=port, auth=login, max_file_size=f"{settings.upload_max_mb:g}mb",
               ssr_mode=False, mcp_server=False, pwa=False, share=False, inbrowser=False, show_error=True,
               enable_monitoring=False, footer_links=[], prevent_thread_lock=prevent_thread_lock, quiet=quiet,
               **launch_options())
    return app


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ui.app", description="digestqa web UI")
    ap.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--index", default=None, help="index directory (default: DIGESTQA_INDEX or user data dir)")
    ap.add_argument("--auth", default=None, help="user:pass (required with a non-local --host)")
    ap.add_argument("--upload-max-mb", type=float, default=None)
    ap.add_argument("--sample", action="store_true", help="ingest the bundled sample if the index is empty")
    a = ap.parse_args(argv)
    check_bind(a.host, parse_auth(a.auth))
    settings = Settings.from_env(index_dir=a.index)
    if a.sample:
        from rag import api

        api.ensure_sample(settings)
    launch(settings, host=a.host, port=a.port, auth=a.auth, upload_max_mb=a.upload_max_mb)


if __name__ == "__main__":
    main()
