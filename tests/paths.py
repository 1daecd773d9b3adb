"""Where the tests find their data, and the one way a test says it needs something the machine lacks.

- ``SEEDS``: the five seed digests. They ship inside the package as the bundled sample (byte-identical to
  ``../shared/seeds``; ``test_bundled_sample_is_the_shared_seeds`` checks that where ../shared exists), so
  tests that only read seeds run on a plain clone too.
- ``SHARED``: ``../shared`` beside the repo (CI has it, a user's clone does not); ``DIGESTQA_SHARED``
  overrides it. Tests that read ``corpora/`` call :func:`need_shared`.
- :func:`need_system`: chromium, a CJK font, llama-cpp-python.

Every such skip reason starts with ``needs ../shared`` or ``needs system:``. With ``DIGESTQA_NO_SKIP=1``
(``.ci/run`` sets it) ``tests/conftest.py`` turns those skips into failures: in CI nothing may be skipped.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DIGESTQA_SHARED") or REPO.parent / "shared")
SEEDS = REPO / "rag" / "data" / "sample"
SHARED_PREFIX = "needs ../shared"
SYSTEM_PREFIX = "needs system:"
NO_SKIP_ENV = "DIGESTQA_NO_SKIP"


def strict() -> bool:
    """True in CI (``DIGESTQA_NO_SKIP=1``): a missing shared folder or system part fails the test."""
    return os.environ.get(NO_SKIP_ENV, "") not in ("", "0")


def seed(prefix: str) -> Path:
    """The seed digest whose name starts with ``prefix`` (e.g. "003")."""
    found = sorted(SEEDS.glob(prefix + "_*.txt"))
    assert found, f"seed {prefix} missing under {SEEDS} (the bundled sample ships with the package)"
    return found[0]


def need_shared(*parts: str) -> Path:
    """``SHARED/parts...``, or skip the test naming the missing folder."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        missing = SHARED if not SHARED.is_dir() else path
        rel = "/".join(("..", "shared", *parts))
        pytest.skip(f"{SHARED_PREFIX}: {rel} is missing ({missing} does not exist; a plain clone has no "
                    f"../shared, CI does)")
    return path


def need_system(ok: bool, what: str, fix: str) -> None:
    """Skip (fail in CI) when a system part is missing: ``what`` it is, ``fix`` how to get it."""
    if not ok:
        pytest.skip(f"{SYSTEM_PREFIX} {what} is missing; {fix}")


def is_required_skip(reason: str) -> bool:
    """A skip that CI must not have (see ``strict``)."""
    reason = reason.removeprefix("Skipped: ")
    return reason.startswith((SHARED_PREFIX, SYSTEM_PREFIX))
