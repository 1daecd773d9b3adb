"""Shared text helpers: title normalisation and IDs, arXiv ids, sentences, markers.

Parsers, merge, chunk and answer code all import these, so equal inputs give equal
keys everywhere (e.g. ``Align$^3$GR`` and ``Align³GR`` share one title id).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

_LATEX_SUP = re.compile(r"\$\s*\^\s*\{?\s*([^{}$]*?)\s*\}?\s*\$")
_LATEX_SUB = re.compile(r"\$\s*_\s*\{?\s*([^{}$]*?)\s*\}?\s*\$")
_SPACES = re.compile(r"\s+")
_VERSION = re.compile(r"v\d+$")
_MARKER = re.compile(r"[ \t]*<n>[ \t]*")
_SENT_END = ".!?。！？"
# English: split after . ! ? (optionally closing quote/bracket) + whitespace before a likely
# sentence start; Chinese: split right after 。！？; newlines always end a sentence.
_SPLIT_EN = re.compile(r"(?<=[.!?])[\"'”’)\]]?\s+(?=[\"'“‘(\[]?[A-Z0-9\u4e00-\u9fff])")
_SPLIT_ZH = re.compile(r"(?<=[。！？])[”’」』）]?")
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|et al|etc|vs|cf|Fig|Figs|Eq|Eqs|Sec|No|Dr|Mr|Ms|Prof|approx)\.|\b[A-Z]\.)$")
_LATEX_ESC = re.compile(r"\\([%&_#])")


def normalize_title(s: str) -> str:
    """Comparable form of a title: NFKC, LaTeX ^{x} -> x, lowercase, no punctuation."""
    s = _LATEX_SUP.sub(r"\1", s or "")
    s = _LATEX_SUB.sub(r"\1", s)
    s = unicodedata.normalize("NFKC", s).lower()
    s = "".join(" " if unicodedata.category(c)[0] in "PSZC" else c for c in s)
    return _SPACES.sub(" ", s).strip()


def title_id(title: str) -> str:
    """Stable paper id for records without an arXiv id: ``t-`` + 12 hex of sha1."""
    return "t-" + hashlib.sha1(normalize_title(title).encode("utf-8")).hexdigest()[:12]


def strip_version(arxiv_id: str) -> str:
    """``2512.02474v1`` -> ``2512.02474``; ``hep-th/9901001v2`` -> ``hep-th/9901001``."""
    return _VERSION.sub("", arxiv_id.strip())


def clean_markers(text: str) -> str:
    """Replace ``<n>`` line-break markers: a space after sentence punctuation, else a newline."""
    parts = [p.strip() for p in _MARKER.split(text or "")]
    out = ""
    for part in (p for p in parts if p):
        if not out:
            out = part
        else:
            out += (" " if out[-1] in _SENT_END else "\n") + part
    return out


def unescape_latex(text: str) -> str:
    r"""Minimal LaTeX unescape for display text: ``\%`` ``\&`` ``\_`` ``\#`` -> the bare char."""
    return _LATEX_ESC.sub(r"\1", text) if "\\" in text else text


def split_sentences(text: str) -> list[str]:
    """Split English and Chinese text into sentences (newlines and ``<n>`` also split)."""
    out: list[str] = []
    for line in clean_markers(text).split("\n"):
        for piece in _SPLIT_ZH.split(line):
            out.extend(_split_en(piece))
    return [s for s in (x.strip() for x in out) if s]


def _split_en(text: str) -> list[str]:
    """English split that re-joins pieces ending in a known abbreviation."""
    pieces = _SPLIT_EN.split(text)
    merged: list[str] = []
    for p in pieces:
        if merged and _ABBREV.search(merged[-1]):
            merged[-1] = merged[-1] + " " + p
        else:
            merged.append(p)
    return merged
