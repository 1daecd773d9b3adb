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


# ---------------------------------------------------------------- shared helpers for the answer path
# One definition each (question analysis, evidence scoring and citation checking all use these).

CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK = re.compile(f"[{CJK_CHARS}]")
CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
# English function words: never content on their own (question words included).
STOPWORDS = frozenset("""a an the of in on at to for from by with about as into onto over under and or but not no nor
is are was were be been being am do does did done has have had having can could should would will shall may might
must this that these those it its it's they them their there here what which who whom whose when where why how
whether if then than so such any some all each every both either neither other another more most much many few
i me my we our us you your he she his her one ones also only just very too again further once yes please
vs versus within without via per while whereas""".split())
_LATEX_SUP_ANY = re.compile(r"\$\s*[\^_]\s*\{?\s*([^{}$]*?)\s*\}?\s*\$")
_LATEX_FONT = re.compile(r"\\(?:textbf|textit|textrm|textsc|texttt|emph|mathbf|mathrm|mathcal|mathit)\{([^{}]*)\}")
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def has_cjk(text: str) -> bool:
    return bool(CJK.search(text or ""))


def language(text: str) -> str:
    """'zh' when the text contains Chinese characters, else 'en' (the language a question is answered in)."""
    return "zh" if has_cjk(text) else "en"


def stem(word: str) -> str:
    """Light English suffix stripping for matching (``representations`` ~ ``represent``): lowercase input."""
    for suf in ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if word.endswith(suf) and len(word) - len(suf) >= 4:
            return word[: -len(suf)]
    return word


def plain_latex(text: str) -> str:
    """``Align$^3$GR`` -> ``Align3GR`` (super/subscripts inline), case kept."""
    return _LATEX_SUP_ANY.sub(r"\1", text or "")


def norm(text: str) -> str:
    """Comparable text: LaTeX ``$^3$`` -> ``3``, ``\\%`` -> ``%``, NFKC (``³`` -> ``3``), lowercase."""
    text = _LATEX_SUP_ANY.sub(r"\1", unescape_latex(text or ""))
    return unicodedata.normalize("NFKC", text).lower()


def display(text: str) -> str:
    """Readable source text: ``Align$^3$GR`` -> ``Align³GR``, ``\\textbf{G}`` -> ``G``, ``\\%`` -> ``%``."""
    text = _LATEX_SUP_ANY.sub(lambda m: m.group(1).translate(_SUPERSCRIPT) if m.group(1).isdigit() else m.group(1),
                              text or "")
    return unescape_latex(_LATEX_FONT.sub(r"\1", text))
