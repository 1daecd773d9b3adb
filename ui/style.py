"""Stylesheet for the UI (a Python module so it ships without package-data config)."""

CSS = """
/* digestqa UI */
.dq-header { display: flex; align-items: baseline; gap: 14px; padding: 4px 2px 2px; }
.dq-header h1 { margin: 0; font-size: 1.6rem; letter-spacing: -0.01em; }
.dq-header span { color: var(--body-text-color-subdued); }
.dq-status { font-size: 0.82rem; color: var(--body-text-color-subdued); padding: 6px 10px;
  border: 1px solid var(--border-color-primary); border-radius: 8px; background: var(--background-fill-secondary); }
.dq-status code { font-size: 0.78rem; }
.dq-answer { line-height: 1.55; }
.dq-answer .dq-cite, .dq-cite-demo { display: inline-block; font-size: 0.78em; font-weight: 600; padding: 0 5px;
  margin: 0 1px; border-radius: 6px; background: #e0e7ff; color: #3730a3 !important; text-decoration: none !important;
  vertical-align: 1px; cursor: pointer; }
.dq-answer .dq-cite:hover { background: #c7d2fe; }
.dq-abstained .dq-badge { display: inline-block; font-size: 0.8em; font-weight: 600; padding: 1px 8px;
  border-radius: 999px; background: #fef3c7; color: #92400e; margin-bottom: 6px; }
.dq-error { color: #b91c1c; }
.dq-flagged { background: #fef3c7; text-decoration: underline dotted #b45309; }
.dq-job { font-size: 0.9em; margin: 4px 0; }
.dq-running { color: #3730a3; }
.dq-queued { color: #6b7280; }
.dq-caret { animation: dq-blink 1s steps(2) infinite; color: #6366f1; }
@keyframes dq-blink { 50% { opacity: 0; } }
.dq-sources { max-height: 760px; overflow-y: auto; padding-right: 4px; text-align: left; }
.dq-sources details.dq-turn { margin-bottom: 10px; }
.dq-sources details.dq-turn > summary { cursor: pointer; font-weight: 600; color: var(--body-text-color-subdued);
  padding: 4px 0; }
.dq-card { text-align: left; border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px; margin: 8px 0;
  background: var(--background-fill-primary); transition: box-shadow .3s, border-color .3s; scroll-margin-top: 8px; }
.dq-card.dq-active { border-color: #6366f1; box-shadow: 0 0 0 3px rgba(99,102,241,.28); }
.dq-head { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; text-align: left; justify-content: flex-start; }
.dq-n { font-weight: 700; color: #4f46e5; }
.dq-title { font-weight: 600; text-align: left; }
.dq-head a.dq-title { flex: 1 1 60%; }
a.dq-arxiv { font-size: 0.8em; color: #4f46e5; white-space: nowrap; }
.dq-noid { font-size: 0.8em; color: var(--body-text-color-subdued); }
.dq-meta { font-size: 0.82em; color: var(--body-text-color-subdued); margin: 3px 0 6px; }
.dq-label { font-size: 0.75em; text-transform: uppercase; letter-spacing: .04em; color: var(--body-text-color-subdued);
  margin-bottom: 2px; }
.dq-support { border-left: 3px solid #facc15; padding: 4px 8px; margin: 6px 0; font-size: 0.9em; }
.dq-support .dq-passage { color: #555; }
.dq-unsupported { border-left: 3px solid #f97316; background: #fff7ed; padding: 4px 8px; margin-top: 8px; font-size: 0.9em; }
.dq-unsupported .dq-badge { font-weight: 600; color: #9a3412; }
.dq-interpreted { color: #666; font-size: 0.85em; font-style: italic; margin-bottom: 4px; }
.dq-support mark { background: #fef08a; color: #111; }
.dq-pane mark { background: #fef9c3; border-bottom: 2px solid #facc15; }
mark { background: #fef08a; color: inherit; padding: 0 1px; border-radius: 2px; }
.dq-toggle { font-size: 0.88em; }
.dq-toggle input { position: absolute; opacity: 0; pointer-events: none; }
.dq-toggle label { display: inline-block; padding: 2px 10px; margin: 4px 4px 4px 0; border-radius: 999px;
  border: 1px solid var(--border-color-primary); cursor: pointer; font-size: 0.85em; }
.dq-toggle input:checked + label { background: #4f46e5; color: #fff; border-color: #4f46e5; }
.dq-pane { display: none; max-height: 260px; overflow-y: auto; padding: 4px 2px; }
.dq-r-en:checked ~ .dq-pane-en, .dq-r-zh:checked ~ .dq-pane-zh { display: block; }
.dq-field { margin-bottom: 6px; }
.dq-empty { color: var(--body-text-color-subdued); font-style: italic; padding: 6px 0; }
.dq-others { font-size: 0.85em; margin-top: 6px; }
.dq-others li { margin: 3px 0; }
.dq-score, .dq-fields { color: var(--body-text-color-subdued); font-size: 0.9em; }
.dq-report .dq-ok { color: #166534; background: #dcfce7; padding: 6px 10px; border-radius: 8px; margin: 6px 0; }
.dq-report .dq-err { color: #991b1b; background: #fee2e2; padding: 6px 10px; border-radius: 8px; margin: 6px 0; }
.dq-report .dq-warn { color: #92400e; }
.dq-stats { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; margin-top: 8px; }
.dq-stat { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 8px; overflow: hidden; }
.dq-stat-v { font-weight: 700; font-size: 1.05em; overflow-wrap: anywhere; }
.dq-stat-k { font-size: 0.75em; color: var(--body-text-color-subdued); text-transform: uppercase; }
#dq-examples button { font-size: 0.8em; }
#dq-table td, #dq-table th, #dq-table span { font-family: var(--font); font-size: 0.88rem; }
.dq-stats-info { font-size: 0.78em; color: var(--body-text-color-subdued); margin-top: 6px; overflow-wrap: anywhere; }
"""

# What's new view (ui/whatsnew.py)
CSS += """
.dq-whatsnew ol { padding-left: 1.4em; }
.dq-wn-item { margin: 0 0 .8em 0; }
.dq-wn-meta { color: #64748b; font-size: .85em; }
.dq-wn-sentence { font-size: .92em; margin-top: .15em; }
.dq-wn-why { color: #64748b; font-size: .8em; }
"""
