"""Terms of a question and where they occur in source text.

A question's terms, by kind:

- ``strong``: technical or named tokens kept whole (``RQ-VAE``, ``Align³GR``, ``NDCG@10``, ``2508.15281``, ``BLEU``);
- ``phrase``: a quoted string ("Attention Is All You Need", 《…》);
- ``name``: a capitalised word inside the question (``Douyin``, ``Zheng``);
- ``date``: a full date, matched by its ISO form;
- ``weak``: other content words (stemmed);
- ``cjk``: Chinese content as character bigrams (``span`` = the question positions they cover);
- ``common``: a strong term so frequent in the index that it says little (matched like strong, not required).

Matching (:func:`find`) works on :func:`rag.text.norm` text: whole tokens (hyphens optional), an acronym part
expanded to word initials (``RQ`` -> "residual quantization"), stem prefixes for weak words.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..text import CJK_CHARS, CJK_RUN, STOPWORDS, norm, plain_latex, stem

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9@.+_'’\-/³²]*[A-Za-z0-9+%³²]|[A-Za-z0-9]")
_WORDS = re.compile(r"[a-z][a-z]+")
_QUOTED = re.compile(r"[\"“”「」《》『』]([^\"“”「」《》『』]{3,200})[\"“”「」《》『』]|(?<![A-Za-z])'([^']{6,200})'(?![A-Za-z])")
# Chinese function words and question words (general Chinese, not tuned to any question).
_ZH_FUNCTION = ("可以", "哪些", "哪篇", "哪几篇", "哪个", "哪一篇", "哪一", "什么", "是否", "如何", "怎么", "怎样", "多少",
                "有没有", "有哪些", "请问", "一下", "这篇", "那篇", "它们", "他们", "我们", "分别", "以及", "还有", "并且",
                "其中", "之间", "哪里", "哪家", "哪位", "是谁", "为什么", "吗", "呢")
_ZH_STOP_CHARS = "的了在是有和与及或中上下把被对为其这那哪个篇些啥嘛吧呀用于从到也都就还并而且所"
# Words that refer to the sources themselves ("which papers use ...", "哪些论文使用了 ..."): never content.
FRAME_WORDS = frozenset("""paper papers work works study studies article articles preprint preprints publication
publications digest digests arxiv use uses using used kind kinds type types sort give tell called named""".split())
_ZH_FRAME = ("论文", "文章", "文献", "工作", "使用", "采用", "利用", "用到", "用了")
WEAK_PREFIX = 7  # plain words match by this many letters of their stem (industrial ~ industry, evaluated ~ evaluation)
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DATES = (
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), lambda g: (g[0], g[1], g[2])),
    (re.compile(r"\b(\d{1,2})[- ]([A-Za-z]{3})[a-z]*[- ,]+(\d{4})\b"), lambda g: (g[2], _MONTHS.get(g[1].lower()[:3]), g[0])),
    (re.compile(r"\b([A-Za-z]{3})[a-z]*\.? (\d{1,2}),? (\d{4})\b"), lambda g: (g[2], _MONTHS.get(g[0].lower()[:3]), g[1])),
    (re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?"), lambda g: (g[0], g[1], g[2])),
    # a month: "2025 年 4 月", "April 2025", "Apr. 2025" (matched as the YYYY-MM prefix of ISO dates)
    (re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月(?:份)?"), lambda g: (g[0], g[1], None)),
    (re.compile(r"\b(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
                r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?,? (\d{4})\b", re.I),
     lambda g: (g[1], _MONTHS.get(g[0].lower()[:3]), None)),
)


@dataclass(frozen=True)
class Term:
    """One unit of the question that evidence can cover."""

    text: str  # as the user wrote it
    key: str  # normalised form matched against normalised text
    kind: str  # strong | phrase | name | date | weak | cjk | common
    acronym: str = ""  # first all-caps part of a compound, expandable to word initials
    span: tuple[int, ...] = ()  # cjk: the question character positions this bigram stands for
    shared: bool = False  # held by many papers of the index ("KG"): a paper's text defining it does not name it

    @property
    def required(self) -> bool:
        """Terms that say what the question is about: evidence must contain them. (Capitalised names are
        weighed heavily but not required: "Daily Report" or "Chinese" in a question need not be in the text.)"""
        return self.kind in ("strong", "phrase", "date")


def date_terms(question: str) -> tuple[list[Term], str]:
    """Dates (full, or a month of a year) as ISO-keyed terms, and the question with them blanked out."""
    out = []
    for rx, parts in _DATES:
        for m in rx.finditer(question):
            y, mo, d = parts(m.groups())
            if mo:
                key = f"{int(y):04d}-{int(mo):02d}" + (f"-{int(d):02d}" if d else "")
                out.append(Term(m.group(0), key, "date"))
                question = question.replace(m.group(0), " ")
    return out, question


def quoted_terms(question: str) -> tuple[list[Term], str]:
    """Quoted strings (titles, exact phrases) as phrase terms, and the question without them."""
    out = []
    for m in _QUOTED.finditer(question):
        text = (m.group(1) or m.group(2)).strip()
        if len(text.split()) >= 2 or CJK_RUN.search(text):
            out.append(Term(text, norm(text), "phrase"))
    return out, _QUOTED.sub(" ", question) if out else question


def _is_strong(tok: str) -> bool:
    """Digits, @, superscripts, inner capitals (RQ-VAE, LoRA, BLEU): a technical or named token."""
    if any(c.isdigit() for c in tok) or "@" in tok or "³" in tok:
        return True
    letters = [c for c in tok if c.isalpha()]
    return len(letters) >= 2 and any(c.isupper() for c in tok[1:])


def _acronym_part(tok: str) -> str:
    """``RQ`` of ``RQ-VAE``: the compound's first part when it is 2-5 capital letters, else ''."""
    first = tok.split("-")[0]
    return first.lower() if 2 <= len(first) <= 5 and first.isalpha() and first.isupper() else ""


def _spelled(key: str, tok: str) -> str:
    """An all-capitals word of 3-5 letters ("RAG", "LLMs") may be written out in the text: its letters."""
    core = tok[:-1] if tok.endswith("s") and tok[:-1].isupper() else tok
    return key if 3 <= len(core) <= 5 and core.isalpha() and core.isupper() else ""


def _sentence_initial(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in ".?!:;(\"'“‘，。？！：；（、"


def latin_terms(question: str) -> list[Term]:
    """Strong, name, date and weak terms from the Latin-script part of the question."""
    q = unicodedata.normalize("NFKC", plain_latex(question))
    out, q = date_terms(q)
    for m in _TOKEN.finditer(q):
        tok = re.sub(r"['’]s$", "", m.group(0)).strip(".'’-/")
        low = norm(tok)
        if not tok or low in STOPWORDS or low in FRAME_WORDS:
            continue
        if _is_strong(tok):
            key = low[:-1] if tok.endswith("s") and tok[:-1].isupper() and len(tok) > 3 else low
            out.append(Term(tok, key, "strong", _acronym_part(tok) if "-" in tok else _spelled(key, tok)))
        elif tok[0].isupper() and low.isalpha() and not _sentence_initial(q, m.start()):
            out.append(Term(tok, low, "name"))
        elif len(low) >= 3 and low.replace("-", "").isalpha():
            out.append(Term(tok, stem(low) if "-" in low else stem(low)[:WEAK_PREFIX], "weak"))
    return out


def cjk_terms(question: str) -> list[Term]:
    """Chinese content as bigrams, after dropping question/function words and characters."""
    out: list[Term] = []
    text = " ".join(CJK_RUN.findall(question))
    for phrase in _ZH_FUNCTION + _ZH_FRAME:
        text = text.replace(phrase, " " * len(phrase))
    for m in re.finditer(f"[^{_ZH_STOP_CHARS}\\s]{{2,}}", text):
        piece, at = m.group(0), m.start()
        for i in range(len(piece) - 1):
            out.append(Term(piece[i:i + 2], piece[i:i + 2], "cjk", span=(at + i, at + i + 1)))
    return out


def cjk_phrases(question: str) -> list[str]:
    """The Chinese content runs of a question (what a reader would call its words), for messages."""
    text = " ".join(CJK_RUN.findall(question))
    for phrase in _ZH_FUNCTION + _ZH_FRAME:
        text = text.replace(phrase, " ")
    return [p for p in re.split(f"[{_ZH_STOP_CHARS}\\s]+", text) if len(p) >= 2]


def question_terms(question: str) -> list[Term]:
    """Every term of a question, deduplicated by key, in question order."""
    phrases, rest = quoted_terms(question)
    seen: dict[str, Term] = {}
    for t in phrases + latin_terms(rest) + cjk_terms(rest):
        seen.setdefault(t.key, t)
    return list(seen.values())


# ---------------------------------------------------------------- matching

def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _bounded(needle: str, hay: str) -> int:
    """Start of ``needle`` in ``hay`` not glued to other letters/digits, else -1."""
    start = hay.find(needle)
    while start >= 0:
        end = start + len(needle)
        if (start == 0 or not _alnum(hay[start - 1])) and (end == len(hay) or not _alnum(hay[end])):
            return start
        start = hay.find(needle, start + 1)
    return -1


def _spell(acr: str, words: list[str]) -> bool:
    """Do ``words`` start with initials ``acr``, allowing one skipped inner word?"""
    initials = "".join(w[0] for w in words)
    content = lambda ws: all(len(w) >= 3 and w not in STOPWORDS for w in ws)  # noqa: E731
    if initials.startswith(acr):  # a name may use a function word ("Think When Needed"), one at most
        head = words[: len(acr)]
        return all(len(w) >= 2 for w in head) and sum(w in STOPWORDS for w in head) <= 1 and \
            sum(len(w) >= 3 for w in head) >= len(head) - 1
    for skip in range(1, len(acr) if len(acr) > 2 else 1):  # two letters spelled across a skipped word: chance
        cand = initials[:skip] + initials[skip + 1:]
        kept = words[:skip] + words[skip + 1: len(acr) + 1]
        if cand.startswith(acr) and content(kept) and words[skip] in STOPWORDS | {"via", "of"}:
            return True
    return False


def acronym_at(acr: str, hay: str) -> int:
    """Position of words whose initials spell ``acr`` (one extra inner word allowed), else -1."""
    words = [(m.start(), m.group(0)) for m in _WORDS.finditer(hay)]
    for i in range(len(words)):
        if words[i][1][0] == acr[0] and len(words[i][1]) >= 3 \
                and _spell(acr, [w for _, w in words[i:i + len(acr) + 1]]):
            return words[i][0]
    return -1


def _find_strong(key: str, acronym: str, hay: str) -> int:
    pos = _bounded(key, hay)
    if pos < 0 and "-" in key:  # RQ-VAE ~ RQVAE, also inside a compound like CF-RQVAE; mixture-of-experts ~ of experts
        pos = _bounded(key.replace("-", ""), hay)
        if pos < 0:
            pos = _bounded(key.replace("-", " "), hay.replace("-", " "))
        if pos < 0 and _bounded(key.replace("-", ""), hay.replace("-", "")) >= 0:
            pos = 0  # position lost by the squeeze; coverage is what matters
    if pos < 0 and key.endswith("s"):
        pos = _bounded(key[:-1], hay)
    if pos < 0 and key[-1].isalpha():  # VAE ~ VAEs, LLM ~ LLMs
        pos = _bounded(key + "s", hay)
    if pos < 0 and key[-1].isalpha():  # a release of the name: MOON ~ MOON2.0, MOON-3 (not BERT ~ BERT4Rec)
        m = re.search(r"(?<![a-z0-9])" + re.escape(key) + r"-?v?\d+(?:\.\d+)*(?![a-z0-9])", hay)
        pos = m.start() if m else -1
    if pos < 0 and key.isdigit() and len(key) >= 2:  # a year or number joined to a name: "ICASSP2026"
        m = re.search(r"(?<=[a-z])" + key + r"(?![a-z0-9])", hay)
        pos = m.start() if m else -1
    if pos < 0 and acronym:
        pos = _bounded(acronym, hay)
        pos = pos if pos >= 0 else acronym_at(acronym, hay)
    return pos


def _find_phrase(key: str, hay: str) -> int:
    """A quoted phrase: verbatim, or (long phrases) >= 80% of its content words in one stretch of text."""
    pos = hay.find(key)
    if pos >= 0 or CJK_RUN.search(key):
        return pos
    words = [stem(w) for w in re.findall(r"[a-z0-9]+", key) if w not in STOPWORDS]
    if len(words) < 4:
        return -1
    found = [m.start() for w in words if (m := re.search(r"(?<![a-z0-9])" + re.escape(w), hay))]
    if len(found) >= 0.8 * len(words) and max(found) - min(found) <= 12 * len(words):
        return min(found)
    return -1


def find(term: Term, hay: str) -> int:
    """Position where ``term`` is covered in normalised text ``hay``, else -1."""
    if term.kind == "common":
        return _find_strong(term.key, term.acronym, hay)
    if term.kind in ("cjk", "date"):
        return hay.find(term.key)
    if term.kind == "phrase":
        return _find_phrase(term.key, hay)
    if term.kind == "weak":  # a hyphen is optional: "watch-time" ~ "watch time" ~ "watchtime"
        m = re.search(r"(?<![a-z0-9])" + re.escape(term.key).replace(r"\-", r"[-\s]?"), hay)
        return m.start() if m else -1
    if term.kind == "name":
        return _bounded(term.key, hay)
    return _find_strong(term.key, term.acronym, hay)


_OWN = r"(?:propos|introduc|present|develop|design|build|built|releas|construct|nam|call|term|dub|coin)\w*"


def names_paper(term: Term, title: str, text: str = "") -> bool:
    """Is ``term`` the name of this paper? In its (normalised) title as a whole token (a hyphen-joined
    ``Q-BERT4Rec`` does not name ``BERT4Rec``), or introduced by its text ("we propose LGSID", "we introduce
    Contrastive Reasoning Self-Distillation (CRSD)"): the paper's own name, not one it mentions."""
    if term.kind not in ("strong", "phrase", "common"):
        return False
    key = term.key
    if term.kind == "phrase":
        return _find_phrase(key, title) >= 0
    if re.search(r"(?<![a-z0-9-])" + re.escape(key) + r"(?![a-z0-9-])", title):
        return True
    if term.shared:  # "we study knowledge graphs (KG)": a concept many papers use, not this paper's name
        return False
    k = re.escape(key)
    return bool(re.search(rf"\b{_OWN}\s+(?:\S+\s+){{0,8}}?{k}(?![a-z0-9-])|"
                          rf"\b{_OWN}\s+(?:[^\s.]+\s+){{1,12}}?\({k}\)|"  # "we propose A Long Name (ALN)"
                          rf"(?:^|\.\s)(?:the\s+)?{k}\s*(?:,|is|framework|model|system|benchmark|dataset)", text))


def is_cjk_key(key: str) -> bool:
    return bool(re.fullmatch(f"[{CJK_CHARS}]+", key))
