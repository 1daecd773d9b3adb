"""Upload safety: type and size checks, sanitised copies under <index_dir>/uploads/."""
from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from rag.embed import file_sha256
from rag.types import FileError

ALLOWED_SUFFIXES = (".txt", ".md", ".jsonl", ".json", ".gz")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Staged:
    """An accepted upload: its original display name and the sanitised copy."""

    name: str
    path: Path
    new: bool = True  # False: the same upload was staged before (this is its copy)


def safe_name(name: str) -> str:
    """Basename only, safe charset, no leading dots; never empty."""
    base = re.split(r"[\\/]", name)[-1]
    base = _UNSAFE.sub("_", base).lstrip(".-_")
    return base[:120] or "upload.txt"


def check_upload(src: Path, name: str, max_mb: float) -> FileError | None:
    """Refuse unsupported types, empty files and files over ``max_mb``."""
    if not name.lower().endswith(ALLOWED_SUFFIXES):
        return FileError(name, f"unsupported file type; upload one of {' '.join(ALLOWED_SUFFIXES)}")
    if not src.is_file():
        return FileError(name, "upload not found on the server; upload it again")
    size = src.stat().st_size
    if size == 0:
        return FileError(name, "file is empty; upload a digest with at least one paper")
    if size > max_mb * 1024 * 1024:
        return FileError(name, f"file is {size / 1048576:.1f} MB, over the {max_mb:g} MB upload limit; "
                               "ingest it with the `digestqa ingest` command instead")
    return None


def stage(src: Path, name: str, index_dir: str | Path) -> Staged:
    """Copy an upload to <index_dir>/uploads/<content hash>_<sanitised name>.

    The same file uploaded again (same content and name) maps to the same copy, which is not written
    again: its ingest is then skipped as unchanged and adds no second source. The tag goes in front so
    the original name (date, suffixes) stays intact for format detection.
    """
    clean = safe_name(name)
    root = (Path(index_dir) / "uploads").resolve()
    root.mkdir(parents=True, exist_ok=True)
    dest = (root / f"{file_sha256(src)[:16]}_{clean}").resolve()
    if dest.parent != root:  # defence in depth: never write outside uploads/
        raise ValueError(f"{name}: refusing to write outside {root}")
    if dest.is_file():
        return Staged(name=name, path=dest, new=False)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return Staged(name=name, path=dest)


def display_name(upload: object) -> tuple[Path, str]:
    """(server temp path, original file name) of a gradio upload value (path str or file object)."""
    path = Path(getattr(upload, "name", None) or getattr(upload, "path", None) or str(upload))
    orig = getattr(upload, "orig_name", None) or path.name
    return path, str(orig)
