"""The README's test command on a plain clone: shared-data tests skip by name (fail in CI), optional system
parts never stop scripts/test.sh, and a missing compiler is one line."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_TESTS = ["tests/test_parse_corpora.py::test_table_corpus_zero_errors_and_counts",
                "tests/test_cli.py::test_ingest_papers_stats_and_exit_codes",
                "tests/test_parse_detect_text.py::test_detect_corpora_files"]


def pytest_run(args: list[str], tmp_path: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "DIGESTQA_SHARED": str(tmp_path / "no-shared"), "DIGESTQA_NO_SKIP": "0", **env}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=REPO,
                          env=full, capture_output=True, text=True, timeout=600)


def test_without_shared_the_whole_suite_collects(tmp_path):
    r = pytest_run(["--collect-only"], tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"\d+ tests collected", r.stdout) and "error" not in r.stdout.lower().split("collected")[-1]


def test_without_shared_its_tests_skip_by_name_and_fail_in_ci(tmp_path):
    r = pytest_run(SHARED_TESTS + ["tests/test_parse_errors.py"], tmp_path)
    assert r.returncode == 0, r.stdout[-3000:]
    assert re.search(r"\d+ passed, 3 skipped", r.stdout), r.stdout[-2000:]
    assert "3 skipped: needs ../shared: ../shared/corpora is missing" in r.stdout
    assert str(tmp_path / "no-shared") in r.stdout
    for nodeid in SHARED_TESTS:  # each skipped test is named
        assert f"    {nodeid}\n" in r.stdout
    ci = pytest_run(SHARED_TESTS, tmp_path, DIGESTQA_NO_SKIP="1")
    assert ci.returncode == 1 and re.search(r"\b3 (failed|errors)\b", ci.stdout), ci.stdout[-2000:]
    assert ci.stdout.count("skipped where nothing may be skipped (DIGESTQA_NO_SKIP=1, as in CI)") >= 3


def test_ci_script_requires_shared_and_forbids_skips():
    ci = (REPO / ".ci" / "run").read_text()
    assert "DIGESTQA_NO_SKIP=1" in ci and "bash scripts/test.sh" in ci and "../shared/corpora" in ci
    assert ci.count("eval --require-all") == 2  # the eval gate skips no question set either


# ---------------------------------------------------------------- scripts/test.sh, function by function

def _bin_with(tmp_path: Path, tools: list[str]) -> Path:
    """A PATH dir holding only these tools (so e.g. no compiler and no apt-get is visible)."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for tool in tools:
        real = next((Path(p) / tool for p in os.environ["PATH"].split(os.pathsep) if (Path(p) / tool).exists()), None)
        assert real, tool
        (d / tool).symlink_to(real)
    return d


def test_sh(snippet: str, path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    script = f'source "{REPO / "scripts" / "test.sh"}"; WHEELS="{tmp_path / "wheels"}"; PATH="{path}"; {snippet}'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)


test_sh.__test__ = False  # a helper, not a test


def test_test_sh_has_no_set_e_and_is_a_library_when_sourced(tmp_path):
    text = (REPO / "scripts" / "test.sh").read_text()
    assert not re.search(r"^\s*set -[a-z]*e", text, re.M), "set -e would abort before pytest on a missing part"
    r = test_sh("echo sourced", _bin_with(tmp_path, ["ls", "head"]), tmp_path)
    assert r.returncode == 0 and r.stdout == "sourced\n", r.stderr  # sourcing ran nothing


def test_no_compiler_and_no_cached_wheel_is_one_clear_line(tmp_path):
    r = test_sh("llama_wheel; echo rc=$?", _bin_with(tmp_path, ["ls", "head", "mkdir"]), tmp_path)
    assert r.stdout == "rc=1\n"
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert "no C/C++ compiler" in r.stderr and "llama.cpp server tests skip" in r.stderr


def test_a_cached_wheel_needs_no_compiler(tmp_path):
    (tmp_path / "wheels").mkdir()
    whl = tmp_path / "wheels" / "llama_cpp_python-0.3.99-py3-none-linux_x86_64.whl"
    whl.write_bytes(b"")
    r = test_sh("llama_wheel", _bin_with(tmp_path, ["ls", "head"]), tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == str(whl) and r.stderr == ""


def test_no_apt_get_is_one_line_and_not_an_abort(tmp_path):
    # no chromium, no fc-list (so no CJK font), no apt-get: say so once, return 0
    r = test_sh("system_parts; echo rc=$?", _bin_with(tmp_path, ["id"]), tmp_path)
    assert r.stdout == "rc=0\n"
    assert len(r.stderr.splitlines()) == 1 and "no apt-get" in r.stderr
    assert "chromium fonts-noto-cjk" in r.stderr and "browser tests skip" in r.stderr


def test_every_python_package_is_installed_by_pip():
    """`pip install .` ships only the packages pyproject lists: a new sub-package must be listed (rag.qa was
    not, and the Quickstart's `digestqa ask` failed with ModuleNotFoundError)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for top in ("rag", "ui", "eval", "prompts", "bench")
             for p in (REPO / top).rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
