"""Shared text helpers: title normalisation and IDs, arXiv ids, sentences, markers, unwrapping.

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


ID_KEY, TITLE_KEY = 0, 1  # kinds of rag.store title keys


def title_keys(paper_id: str, arxiv_id: str | None, title: str | None) -> list[tuple[str, int]]:
    """The keys a question can name a paper by: its paper id and arXiv id (``ID_KEY``), its normalised
    title when longer than 12 characters and the short name before a colon ("lemur" for "LEMUR: ...")
    when 3+ characters (``TITLE_KEY``); each once."""
    title = title or ""
    ids = [(k, ID_KEY) for k in dict.fromkeys(k for k in (paper_id, arxiv_id) if k)]
    norm = normalize_title(title)
    short = normalize_title(title.split(":")[0]) if ":" in title else ""
    phrases = dict.fromkeys(p for p, ok in ((norm, len(norm) > 12), (short, len(short) >= 3)) if ok)
    return ids + [(p, TITLE_KEY) for p in phrases]


def title_id(title: str) -> str:
    """Stable paper id for records without an arXiv id: ``t-`` + 12 hex of sha1."""
    return "t-" + hashlib.sha1(normalize_title(title).encode("utf-8")).hexdigest()[:12]


def strip_version(arxiv_id: str) -> str:
    """``2512.02474v1`` -> ``2512.02474``; ``hep-th/9901001v2`` -> ``hep-th/9901001``."""
    return _VERSION.sub("", arxiv_id.strip())


def clean_markers(text: str) -> str:
    """Replace ``<n>`` line markers (seed 003's summaries) by a space: they separate sentences that
    already end in punctuation, and one inside a sentence must not split it."""
    return " ".join(p for p in (p.strip() for p in _MARKER.split(text or "")) if p)


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


# ---------------------------------------------------------------- unwrapping hard line wraps
#
# Digest text keeps its source's line breaks. Measured on every shared corpus file: arXiv abstracts
# in JSON Lines (scale days) are either hard-wrapped at <= 80 columns (3,168 of 23,010), with a new
# paragraph's first line indented two spaces, or one line per paragraph (946); 3,226 abstracts and
# 325 comments had 52,173 + 435 breaks inside a sentence. In the wrapped ones, 1,881 unindented
# breaks follow a full stop only because the next word did not fit, and 46 lines end in a hyphen:
# 35 dashes, 3 suspended hyphens, 1 dash before a capital, 7 compounds broken at the hyphen, no
# word split. Authors' own breaks inside a paragraph (daily .md/.jsonl, table rows) are indented
# too; the LLM-written Chinese fields break only after 。 or before list items ("2. ...").

_SENT_FINAL = re.compile(r"[.!?。！？…][\"'”’)\]」』）]*$")
_LIST_ITEM = re.compile(r"(?:\d{1,2}[.)．、](?!\d)|[（(](?:\d{1,2}|[ivx]{1,4}|[a-z])[)）]|[-*•·–]\s)")
_LIST_LEAD = re.compile(r"[:;：；]$")
_CJK_CHARS = "\u2e80-\u9fff\u3000-\u303f\uf900-\ufaff\uff00-\uffef"
_CJK = re.compile(f"[{_CJK_CHARS}]")
_SUSPENDED = re.compile(r"(?:and|or|nor)\b")


def line_closes(line: str, next_line: str) -> bool:
    """Whether a line break after ``line`` (stripped) can end a unit rather than split a sentence:
    ``line`` ends a sentence (``. ! ? 。 ！ ？ …`` + closing quote/bracket), or ``next_line``
    (stripped) starts a list item (``1.`` ``2)`` ``(3)`` ``- ``) after a line ending in ``: ;`` or
    in Chinese text. Anything else is a break inside a sentence, i.e. a hard wrap."""
    if _SENT_FINAL.search(line):
        return True
    return bool(_LIST_ITEM.match(next_line)) and bool(_LIST_LEAD.search(line) or _CJK.match(line[-1:]))


def _join(left: str, right: str) -> str:
    """The text that replaces a wrap between two lines: nothing between Chinese text (no spaces
    in Chinese); nothing after a word-final hyphen when the next word starts lower-case or with a
    digit (a compound broken at its hyphen: ``cross-`` + ``model``), except before and/or/nor (a
    suspended hyphen: ``voxel- or mesh-based``); else one space. The hyphen is always kept: no
    word split by a wrap was found in the corpora, only compounds, dashes and suspended hyphens."""
    if _CJK.match(left[-1:]) or _CJK.match(right[:1]):
        return ""
    if left.endswith("-") and left[-2:-1].isalnum() and (right[:1].islower() or right[:1].isdigit()) \
            and not _SUSPENDED.match(right):
        return ""
    return " "


def unwrap(text: str, one_line: bool = False) -> str:
    """Undo hard line wraps: join the lines of a paragraph, keep real paragraph/list breaks.

    A text none of whose line breaks splits a sentence (see :func:`line_closes`) keeps every
    break (one per paragraph or list item, blank lines as one blank line). Otherwise the text was
    hard-wrapped, and a break is kept only where it is a blank line, or where it closes and the
    next line is indented (arXiv's paragraph start) or the text is Chinese; every other break is
    joined (see :func:`_join`). Lines are stripped. ``one_line`` joins every break (titles).
    Idempotent; a text without a newline is returned unchanged.
    """
    if "\n" not in text:
        return text
    lines = text.split("\n")
    wrapped = one_line or _has_wrap(lines)
    out: list[str] = []
    prev, blank = "", False
    for raw in lines:
        line = raw.strip()
        if not line:
            blank = True
            continue
        if prev:
            if one_line:
                out.append(_join(prev, line))
            elif blank:
                out.append("\n\n")
            elif not wrapped or (line_closes(prev, line)
                                 and (raw[:1].isspace() or _CJK.match(prev[-1:]))):
                out.append("\n")
            else:
                out.append(_join(prev, line))
        out.append(line)
        prev, blank = line, False
    return "".join(out)


def _has_wrap(lines: list[str]) -> bool:
    """Whether a break between two non-blank lines splits a sentence."""
    prev = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            prev = ""
            continue
        if prev and not line_closes(prev, line):
            return True
        prev = line
    return False


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


_CARET = re.compile(r"(?<=\w)\^\{?(\w{1,3})\}?")  # Align^3GR, x^{2} typed without LaTeX dollars


def plain_latex(text: str) -> str:
    """``Align$^3$GR`` / ``Align^3GR`` -> ``Align3GR`` (super/subscripts inline), case kept."""
    return _CARET.sub(r"\1", _LATEX_SUP_ANY.sub(r"\1", text or ""))


def norm(text: str) -> str:
    """Comparable text: LaTeX ``$^3$`` (or ``^3``) -> ``3``, ``\\%`` -> ``%``, NFKC (``³`` -> ``3``), lowercase."""
    text = _CARET.sub(r"\1", _LATEX_SUP_ANY.sub(r"\1", unescape_latex(text or "")))
    return unicodedata.normalize("NFKC", text).lower()


def display(text: str) -> str:
    """Readable source text: ``Align$^3$GR`` -> ``Align³GR``, ``\\textbf{G}`` -> ``G``, ``\\%`` -> ``%``."""
    text = _LATEX_SUP_ANY.sub(lambda m: m.group(1).translate(_SUPERSCRIPT) if m.group(1).isdigit() else m.group(1),
                              text or "")
    return unescape_latex(_LATEX_FONT.sub(r"\1", text))


_PERSON = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+\b")


def person_names(text: str) -> set[str]:
    """Runs of capitalised words that may be a person's name ("Chongming Gao"), normalised like
    :func:`author_set` (callers keep only those that are someone's name in an author list)."""
    return {" ".join(p.lower().split()) for p in _PERSON.findall(text)}


def author_set(authors: str) -> set[str]:
    """Normalised names of an author string ("A (Org), B; C"): lowercase, affiliations dropped."""
    names = re.split(r"[,;]|\band\b", re.sub(r"\([^()]*\)", " ", authors or ""))
    return {" ".join(n.lower().split()) for n in names if len(n.strip()) > 2}
