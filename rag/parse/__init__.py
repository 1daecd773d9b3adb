"""Digest parsing: ``parse_file(path) -> ParseResult``; the format is detected from content.

One module per format (table_report, cs_digest, jsonl, paper_page, abstract_dump), each with
``parse(text, file) -> (papers, errors)``. parse_file never raises for bad input: problems
become one-line FileErrors naming the file (and line) and what to do.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Callable

from rag.parse import abstract_dump, cs_digest, jsonl, paper_page, table_report
from rag.parse.detect import FORMATS, detect_format
from rag.types import FileError, Paper, ParseResult

__all__ = ["parse_file", "parse_text", "detect_format", "FORMATS", "PARSERS", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 64 * 2**20
Parser = Callable[[str, str], "tuple[list[Paper], list[FileError]]"]
PARSERS: dict[str, Parser] = {
    "table_report": table_report.parse,
    "cs_digest": cs_digest.parse,
    "jsonl": jsonl.parse,
    "paper_page": paper_page.parse,
    "abstract_dump": abstract_dump.parse,
}
_GZIP_MAGIC = b"\x1f\x8b"


class _Refused(Exception):
    """A whole-file problem; its message becomes the FileError."""


def parse_file(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> ParseResult:
    """Parse one digest file; never raises for bad input (see module docstring)."""
    file = str(path)
    try:
        text = _decode(_read(Path(path), max_bytes))
    except _Refused as e:
        return _failed(file, str(e), getattr(e, "line", None))
    return parse_text(text, file)


def parse_text(text: str, file: str = "<text>") -> ParseResult:
    """Detect the format of already-decoded text and parse it."""
    if not text.strip():
        return _failed(file, "file is empty (or only whitespace); add digest content or remove it")
    try:
        fmt = detect_format(text)
    except RecursionError:
        return _failed(file, "content nested too deeply to read (e.g. JSON over ~1,000 levels deep); fix the file")
    if fmt is None:
        return _failed(file, "unrecognised digest format; supported formats: "
                       + ", ".join(FORMATS))
    try:
        papers, errors = PARSERS[fmt](text, file)
    except (Exception, RecursionError) as e:  # a parser bug must not stop a whole ingest
        return _failed(file, f"internal error in the {fmt} parser ({type(e).__name__}: {e}); "
                       "please report this file", fmt=fmt)
    return ParseResult(file=file, format=fmt, papers=tuple(papers), errors=tuple(errors))


def _failed(file: str, message: str, line: int | None = None, fmt: str = "") -> ParseResult:
    return ParseResult(file=file, format=fmt, papers=(), errors=(FileError(file, message, line),))


def _read(path: Path, max_bytes: int) -> bytes:
    """Bytes of the file (gunzipped if gzip), refusing missing, unreadable or oversize files."""
    if not path.exists():
        raise _Refused("file not found; check the path")
    if not path.is_file():
        raise _Refused("not a regular file (a directory?); pass a digest file")
    size = path.stat().st_size
    if size > max_bytes:
        raise _Refused(f"file is {_mb(size)}, over the {_mb(max_bytes)} limit; split it or "
                       "raise max_bytes")
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as e:
        raise _Refused(f"cannot read file ({e.strerror or e}); check permissions") from None
    return _gunzip(raw, max_bytes) if raw[:2] == _GZIP_MAGIC else raw


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    """Decompress at most max_bytes + 1 bytes so a gzip bomb is refused, not expanded."""
    d = zlib.decompressobj(wbits=47)  # 32 + 15: gzip/zlib header auto-detect
    out = bytearray()
    data = raw
    try:
        while data and len(out) <= max_bytes:
            out += d.decompress(data, max_bytes + 1 - len(out))
            data = d.unconsumed_tail
            if d.eof and d.unused_data[:2] == _GZIP_MAGIC:  # multi-member gzip
                data, d = d.unused_data, zlib.decompressobj(wbits=47)
    except zlib.error as e:
        raise _Refused(f"corrupt gzip file ({e}); re-create the .gz") from None
    if len(out) > max_bytes:
        raise _Refused(f"decompressed size exceeds the {_mb(max_bytes)} limit; split the file "
                       "or raise max_bytes")
    if not d.eof:
        raise _Refused("truncated gzip file (unexpected end of data); re-create the .gz")
    return bytes(out)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _utf16(raw: bytes) -> str | None:
    """The text of a UTF-16 file (with a BOM, or ASCII-range text with every other byte NUL), else None."""
    if raw[:2] in _UTF16_BOMS:
        codec = "utf-16"
    else:
        head = raw[:4096]
        even, odd = head[0::2], head[1::2]
        if len(head) < 4 or len(head) % 2:
            return None
        if odd.count(0) >= 0.9 * len(odd) and not even.count(0):
            codec = "utf-16-le"
        elif even.count(0) >= 0.9 * len(even) and not odd.count(0):
            codec = "utf-16-be"
        else:
            return None
    try:
        return raw.decode(codec).lstrip("\ufeff")
    except UnicodeDecodeError:
        return None


def _decode(raw: bytes) -> str:
    """UTF-8 text (BOM and CRLF tolerated; UTF-16 decoded); binary or invalid UTF-8 is refused with a line."""
    if not raw.strip():
        raise _Refused("file is empty (or only whitespace); add digest content or remove it")
    if b"\x00" in raw and (text := _utf16(raw)) is not None:
        if "\x00" not in text:
            return text.replace("\r\n", "\n").replace("\r", "\n")
    if b"\x00" in raw:
        raise _Refused("binary file (contains NUL bytes), not a text digest; pass a .md/.txt/"
                       ".jsonl(.gz) digest")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        err = _Refused(f"invalid UTF-8 at line {line} (byte {e.start}); re-save as UTF-8")
        err.line = line  # type: ignore[attr-defined]
        raise err from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"
