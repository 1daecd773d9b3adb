"""The README's sync / watch / export / MCP / llama-index sections kept true: every command parses with the real
CLI parser, and the llama-index example runs as written against an index."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from rag.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("### Pulling new digests", "### Watches", "### Exports", "### MCP server", "### From a llama-index app")


def _section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split(title, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


def test_readme_workflow_commands_parse():
    cmds = []
    for title in SECTIONS:
        for block in re.findall(r"```bash\n(.+?)```", _section(title), re.S):
            cmds += [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.startswith("digestqa ")]
    assert len(cmds) >= 10
    parser = build_parser()
    for cmd in cmds:
        args = parser.parse_args(shlex.split(cmd)[1:])  # SystemExit (a test failure) on anything unknown
        assert args.command in ("sync", "watch", "ask", "papers"), cmd


def test_readme_llamaindex_example_runs(sample_settings):
    code = re.search(r"```python\n(.+?)```", _section("### From a llama-index app"), re.S).group(1)
    env = {**os.environ, "DIGESTQA_INDEX": sample_settings.index_dir, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) >= 6 and "2512.02474" in "\n".join(lines[:5]) and "2511.10962" in lines[-1]
