"""Shared fixtures: offline environment, an outbound-connection guard, the shared data dir and a sample index."""
from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Offline and deterministic: no telemetry, no hub, no LLM configured by whoever runs the tests.
for _k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DIGESTQA_INDEX", "DIGESTQA_CHROMA_URL", "DIGESTQA_EMBEDDER",
           "DIGESTQA_ANSWERER", "DIGESTQA_MODEL", "DIGESTQA_LLM_TIMEOUT", "DIGESTQA_CHROMA_TIMEOUT"):
    os.environ.pop(_k, None)
os.environ.update({"GRADIO_ANALYTICS_ENABLED": "False", "ORT_DISABLE_TELEMETRY": "1",
                   "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.paths import SEEDS, SHARED, is_required_skip, need_shared, strict  # noqa: E402

# ---------------------------------------------------------------- outbound connection guard

BLOCKED: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name that is not localhost


def _guarded(real):
    def connect(self, address):
        if not _is_local(address):
            BLOCKED.append(repr(address))
            raise OSError(f"digestqa tests: outbound connection to {address!r} blocked (tests are offline)")
        return real(self, address)
    return connect


socket.socket.connect = _guarded(_real_connect)
socket.socket.connect_ex = _guarded(_real_connect_ex)


@pytest.fixture(scope="session", autouse=True)
def no_outbound_connections():
    """Fail the session if anything in the test process tried to reach beyond 127.0.0.1."""
    yield
    assert not BLOCKED, f"outbound connections were attempted: {BLOCKED[:5]}"


# ---------------------------------------------------------------- data

@pytest.fixture
def shared_dir() -> Path:
    """../shared with its corpora, or the test is skipped naming the missing folder (fails in CI)."""
    need_shared("corpora")
    return SHARED


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    """The five seed digests (the bundled sample: present in every clone)."""
    return SEEDS


# ---------------------------------------------------------------- CI: no skips for missing parts

def _to_failure(rep) -> None:
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if strict() and is_required_skip(reason):
        rep.outcome = "failed"
        rep.longrepr = f"skipped where nothing may be skipped (DIGESTQA_NO_SKIP=1, as in CI): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped:
        _to_failure(rep)


def pytest_terminal_summary(terminalreporter):
    """Every skipped test by name, under its reason (pytest's -rs folds tests that skip in one helper)."""
    by_reason: dict[str, list[str]] = {}
    for rep in terminalreporter.stats.get("skipped", []):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        by_reason.setdefault(reason.removeprefix("Skipped: "), []).append(rep.nodeid)
    if not by_reason:
        return
    terminalreporter.section(f"skipped: {sum(map(len, by_reason.values()))} tests")
    for reason, ids in by_reason.items():
        terminalreporter.write_line(f"{len(ids)} skipped: {reason}")
        for nodeid in ids:
            terminalreporter.write_line(f"    {nodeid}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped:
        _to_failure(rep)


@pytest.fixture(scope="session")
def sample_settings(tmp_path_factory):
    """Settings for a temp index holding the bundled sample corpus (ingested once per session)."""
    from rag import api
    from rag.config import Settings

    s = Settings(index_dir=str(tmp_path_factory.mktemp("sample-index")), answerer="extractive")
    report = api.ingest(api.sample_paths(), s)
    assert report.ok, report.failures
    return s


@pytest.fixture
def tmp_settings(tmp_path):
    """Settings for an empty temp index."""
    from rag.config import Settings

    return Settings(index_dir=str(tmp_path / "index"), answerer="extractive")
