"""The CLI behaves like a Unix tool: a closed pipe ends it quietly, --help shows defaults, plurals are right,
no Gradio hints for Python callers; `ask --json` timings split the first-use load from retrieval."""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from rag import api, cli
from tests.paths import REPO


def run_cli(args, index, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIGESTQA_INDEX": str(index), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, timeout=600, **kw)


@pytest.mark.parametrize("args", [["papers", "--json"], ["papers"], ["stats", "--sources"]])
def test_closed_stdout_ends_quietly_like_sigpipe(sample_settings, args):
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first write (`digestqa papers | head -0`)
    try:
        p = run_cli(args, sample_settings.index_dir, stdout=w, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(w)
    assert p.returncode == 141, p.stderr
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr and "Exception ignored" not in p.stderr


def test_head_of_a_pipe(sample_settings):
    env = {**os.environ, "DIGESTQA_INDEX": sample_settings.index_dir, "PYTHONPATH": str(REPO)}
    p = subprocess.run(["bash", "-c", f'"{sys.executable}" -m rag.cli papers --json | head -n 2'], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.stdout.splitlines() == ["[", " {"] and p.stderr == "", p.stderr


def _options(parser: argparse.ArgumentParser, path: str = "digestqa"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif action.option_strings and action.nargs != 0 and action.dest != "help":
            yield path, action


def test_every_option_help_shows_its_default():
    missing = [f"{path} {'/'.join(a.option_strings)}" for path, a in _options(cli.build_parser())
               if "default" not in (a.help or "")]
    assert not missing, f"--help shows no default for: {missing}"
    checked = list(_options(cli.build_parser()))
    assert len(checked) > 20  # the walk reached the subcommands
    top_k = next(a for p, a in checked if p == "digestqa ask" and "--top-k" in a.option_strings)
    assert "(default: 5;" in top_k.help
    port = subprocess.run([sys.executable, "-m", "rag.cli", "ui", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=120).stdout
    assert re.search(r"--port PORT\s+port \(default: 7860\)", port)


def test_plural_forms(tmp_settings, capsys, seeds_dir):
    assert [cli.plural(n, "citation") for n in (0, 1, 2)] == ["0 citations", "1 citation", "2 citations"]
    assert cli.plural(1200, "paper") == "1,200 papers"
    source = (REPO / "rag" / "cli.py").read_text()
    assert not re.search(r"\}\s+(citations|papers|digests|passages|files)\b", source), "a count with a fixed plural"
    one = tmp_settings.index_dir + "-one"
    from dataclasses import replace

    from rag.parse import parse_file

    paper = parse_file(str(seeds_dir / "000_a9870319f13a72d6.txt")).papers[0]
    s = tmp_settings.model_copy(update={"index_dir": one})
    api.ingest_papers([replace(paper, sources=())], s, name="one")
    assert cli.main(["--index", one, "papers"]) == 0
    assert "1 paper (* = derived title)" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ui_prints_its_url_not_gradio_share_hints(tmp_path):
    port = _free_port()
    env = {**os.environ, "DIGESTQA_INDEX": str(tmp_path / "idx"), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ui", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()  # blocks until the server is up (or the process ends)
        assert f"digestqa UI on http://127.0.0.1:{port}/" in first, first
        time.sleep(2)  # anything Gradio would print after start-up
    finally:
        proc.terminate()
        out = first + proc.communicate(timeout=30)[0]
    assert "share=True" not in out and "public link" not in out.lower(), out


def test_ask_json_timings_split_load_from_retrieve(sample_settings):
    p = run_cli(["ask", "--json", "which papers use RQ-VAE semantic IDs"], sample_settings.index_dir,
                capture_output=True, text=True)
    t = json.loads(p.stdout)["timings_ms"]
    assert set(t) == {"load", "retrieve", "answer", "total"}
    assert t["load"] > t["retrieve"], t  # a fresh process: opening the index is the first ask's cost
    assert t["total"] == pytest.approx(t["load"] + t["retrieve"] + t["answer"], abs=0.5)
    api.ask("warm up", sample_settings)  # in one process (chat, ui, eval) only the first ask loads
    again = api.ask("which papers use RQ-VAE semantic IDs", sample_settings).timings_ms
    assert again["load"] < 5 and again["total"] == pytest.approx(again["retrieve"] + again["answer"] + again["load"])


def test_readme_using_it_commands_parse():
    """Every `digestqa ...` line of the README's "Using it" block (remove, stats --sources, ...) parses."""
    import shlex

    text = (REPO / "README.md").read_text(encoding="utf-8").split("## Using it", 1)[1]
    block = re.search(r"```bash\n(.+?)```", text, re.S).group(1)
    cmds = [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.startswith("digestqa ")]
    assert any(c.startswith("digestqa remove ") for c in cmds) and "digestqa stats --sources" in cmds
    parser = cli.build_parser()
    for cmd in cmds:
        parser.parse_args(shlex.split(cmd)[1:])  # SystemExit (a test failure) on anything unknown
