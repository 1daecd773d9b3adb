"""Offline extractive answerer: quote the sentences of the retrieved sources that answer the question.

Design (deterministic, no model):

1. *Salient terms* of the question: technical tokens kept whole (``RQ-VAE``, ``Align³GR``, ``NDCG@10``,
   ``2508.15281``), capitalised names and acronyms are **strong**; other content words are **weak** (light
   stemming); Chinese runs lose question/function words and become character bigrams. Generic words
   (paper, method, use, which, model ...) are never salient.
2. A term is *covered* by text when it occurs whole (hyphens optional: ``RQVAE``), when its first acronym
   part expands to the words' initials (``RQ`` -> "residual (vector) quantization"), or for weak terms by
   stem prefix. Terms are weighted by rarity across the retrieved sources (IDF over the hits).
3. **Abstain** (:data:`~rag.types.CANNOT_ANSWER`) when a strong term is covered by no source, or when less
   than half the question's weight is covered: e.g. "BLEU on WMT14" for Q-BERT4Rec.
4. Sentences are scored by the weight of the terms they cover (title matches count a little, the question's
   language and the retrieval rank break ties). Instruction-like sentences ("ignore previous instructions")
   are never evidence. "Which papers ..." / "哪些/哪篇" questions list every source that covers the strong
   terms (one line each with its best sentence); other questions quote the best 1-3 sources.
5. When a source mentions a strong term only after a contrast cue (unlike, instead of, rather than, 不同于),
   its line says it contrasts itself with the term instead of claiming it uses it.

Text starts with ``CANNOT_ANSWER`` on abstention, followed by a newline and a friendly sentence.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from .cite import overlap
from .glossary import GLOSSARY
from .text import split_sentences, unescape_latex
from .types import CANNOT_ANSWER, Hit

_LATEX_SUP = re.compile(r"\$\s*[\^_]\s*\{?\s*([^{}$]*?)\s*\}?\s*\$")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9@.+_'’\-/]*[A-Za-z0-9+%]|[A-Za-z0-9]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORDS = re.compile(r"[a-z][a-z]+")
STOP = frozenset("""a an the of in on at to for from by with about as into onto over under and or but not no nor
is are was were be been being am do does did done has have had having can could should would will shall may might
must this that these those it its it's they them their there here what which who whom whose when where why how
whether if then than so such any some all each every both either neither other another more most much many few
i me my we our us you your he she his her one ones also only just very too again further once yes please tell
give show list find explain describe compare between among per vs versus within without via using used use uses
get gets got make makes made do say says said""".split())
GENERIC = frozenset("""paper papers work works study studies article articles method methods approach approaches
model models framework frameworks system systems technique techniques propose proposed proposes author authors
result results use using used based new novel existing task tasks problem problems way ways kind type types
digest digests daily weekly arxiv source sources mention mentions mentioned report reports reported present presents
achieve achieves achieved perform performs performance better best good improve improves improved improvement
id ids thing things something anything data main category categories company companies affiliated affiliation venue conference
published publish accepted date dates submitted listed first last stand stands called name named number kind
introduce introduces introduced construct constructs build builds built design designs designed""".split())
# Question cue -> metadata fields that answer it (first present wins; "*" = every present one).
# Fields come from the chunked "meta" passage ("Comment: KDD'25. DOI: ... Submitted: ...") and the hit itself.
_META = (
    (re.compile(r"\b(?:who|authors?\s+(?:of|are|is)|first\s+author|(?:wrote|written|authored)|affiliat\w*)\b|"
                r"作者|谁", re.I), ("Authors",), False),
    (re.compile(r"\b(?:venue|conference|journal|workshop|accepted|proceedings|appear(?:s|ed)?\s+(?:in|at))\b|"
                r"会议|期刊|录用|发表在|发表于", re.I), ("Comment", "Journal ref"), True),
    (re.compile(r"\bdoi\b", re.I), ("DOI",), True),
    (re.compile(r"\blicen[cs]e[ds]?\b|许可|授权协议", re.I), ("License",), True),
    (re.compile(r"\b(?:relevance|digest|page)\s+score\b|相关性得分|评分", re.I), ("Score",), True),
    (re.compile(r"\b(?:code|github|repository|repo)\b|代码|开源", re.I), ("Code",), False),
    (re.compile(r"\b(?:submitted|submission)\b|提交", re.I), ("Submitted", "Date"), False),
    (re.compile(r"\b(?:listed|announced|digest\s+date|which\s+(?:date'?s?\s+)?digest)\b|收录|日报", re.I), ("Digest date", "Date"), False),
    (re.compile(r"\b(?:when|date|dates|year|published\s+in\s+\d{4})\b|日期|哪天|何时|什么时候|哪一?年", re.I),
     ("Submitted", "Digest date", "*", "Date"), False),
    (re.compile(r"\b(?:category|categories|field)\b|类别|分类|领域", re.I), ("Categories",), False),
    (re.compile(r"\barxiv\s*id\b|编号", re.I), ("arXiv ID",), False),
)
_META_KEYS = ("arXiv", "Authors", "Categories", "Comment", "DOI", "Submitted", "Digest date", "Code", "License",
              "Score", "Journal ref")
_META_FIELD = re.compile(r"(?:^|(?<=\.\s))(" + "|".join(_META_KEYS) + r"):\s+")
_ZH_STOP_PHRASES = ("可以", "哪些", "哪篇", "哪几篇", "哪个", "哪一篇", "什么", "论文", "文章", "工作", "方法", "是否", "如何",
                    "怎么", "怎样", "多少", "使用", "采用", "利用", "提出", "研究", "模型", "有没有", "有哪些", "请问",
                    "介绍", "一下", "这篇", "那篇", "它们", "他们", "我们", "主要", "相关", "哪里", "分别", "以及")
_ZH_STOP_CHARS = "的了在是有吗呢和与及或中上下把被对为其这那哪个篇些啥嘛吧呀用于从到也都就还并而且所"
_LIST_EN = re.compile(r"^\s*(?:which|what|list|name|find|show)\s+(?:(?:of\s+the\s+)?(?:\w+\s+){0,2})?"
                      r"(?:papers|paper|works|studies|articles|methods|approaches|models|systems)\b|"
                      r"^\s*(?:are there|is there|do any|does any)\b", re.I)
_LIST_ZH = re.compile(r"哪篇|哪几篇|哪一篇|(?:哪些|哪个|有没有|有哪些)[^，。？?]{0,6}?(?:论文|文章|工作|研究|方法|模型)")
_CONTRAST = re.compile(r"\b(?:unlike|instead of|rather than|in contrast to|as opposed to|different from|"
                       r"differs from|compared to|compared with|replac(?:e|es|ing) )|不同于|区别于|而非|而不是|相比|取代")
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.。]{0,40}\b(?:instructions?|prompts?|rules?|context|above|"
    r"previous|prior)\b|\bsystem prompt\b|\byou are now\b|\bact as\b|\bnew instructions?\b|"
    r"\b(?:respond|reply|answer|output|say|print)\s+(?:only\s+)?(?:with\s+)?(?:the\s+word\s+)?[\"'“]|"
    r"\b(?:respond|reply|output|print)\s+only\b|\bignore\s+(?:the|this|your|any|all)\s+(?:question|user|system)|"
    r"忽略.{0,12}(?:指令|指示|提示|要求|说明)|无视.{0,12}(?:指令|指示)|你现在是", re.I)
_MAX_SENT_CHARS = 420


def norm(text: str) -> str:
    """Comparable text: LaTeX ``$^3$`` -> ``3``, NFKC (``³`` -> ``3``), lowercase."""
    text = _LATEX_SUP.sub(r"\1", unescape_latex(text or ""))
    return unicodedata.normalize("NFKC", text).lower()


@dataclass(frozen=True)
class Term:
    """One salient unit of the question."""

    text: str  # as shown to users (original spelling)
    key: str  # normalised form matched against normalised text
    kind: str  # "strong" | "weak" | "cjk"
    acronym: str = ""  # first all-caps part of a compound, expandable to word initials
    span: tuple[int, ...] = ()  # Chinese bigrams: the question character positions they stand for
    alts: tuple[str, ...] = ()  # Chinese bigrams inside a glossary phrase: English word prefixes it may match
    glossary: str = ""  # ... and that glossary phrase


def _is_strong(tok: str, first: bool) -> bool:
    """Technical or named tokens: digits, @, inner capitals, or a capitalised non-initial word."""
    if any(c.isdigit() for c in tok) or "@" in tok or "³" in tok:
        return True
    if any(c.isupper() for c in tok[1:]) and tok.rstrip("s").lower() not in GENERIC:
        return True
    return False


def _is_name(tok: str, first: bool) -> bool:
    """A capitalised word inside the question (Douyin, Taobao, Search): weighted up, but not required."""
    return tok[0].isupper() and not first and tok.lower() not in GENERIC


_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DATES = (
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), lambda g: (g[0], g[1], g[2])),
    (re.compile(r"\b(\d{1,2})[- ]([A-Za-z]{3})[a-z]*[- ,]+(\d{4})\b"), lambda g: (g[2], _MONTHS.get(g[1].lower()[:3]), g[0])),
    (re.compile(r"\b([A-Za-z]{3})[a-z]* (\d{1,2}),? (\d{4})\b"), lambda g: (g[2], _MONTHS.get(g[0].lower()[:3]), g[1])),
    (re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?"), lambda g: (g[0], g[1], g[2])),
)


def _date_terms(question: str) -> tuple[list[Term], str]:
    """ISO-normalised date terms (matched against source dates) and the question without them."""
    out = []
    for rx, parts in _DATES:
        for m in rx.finditer(question):
            y, mo, d = parts(m.groups())
            if mo:
                out.append(Term(m.group(0), f"{int(y):04d}-{int(mo):02d}-{int(d):02d}", "strong"))
        question = rx.sub(" ", question)
    return out, question


def date_terms(question: str) -> list[Term]:
    """Full dates in the question as strong terms with ISO keys (``04-Dec-2025`` -> ``2025-12-04``)."""
    return _date_terms(unicodedata.normalize("NFKC", question))[0]


def _stem(word: str) -> str:
    """Tiny stemmer for weak-term prefix matching: strip a suffix, keep at most 6 letters."""
    for suf in ("ations", "ation", "ments", "ment", "ings", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if word.endswith(suf) and len(word) - len(suf) >= 4:
            word = word[: -len(suf)]
            break
    return word[:6]


def _acronym_part(tok: str) -> str:
    """``RQ`` of ``RQ-VAE`` (first hyphen part that is 2-5 capital letters), else ''."""
    for part in tok.split("-"):
        if 2 <= len(part) <= 5 and part.isalpha() and part.isupper():
            return part.lower()
    return ""


def _ascii_terms(question: str) -> list[Term]:
    """Strong and weak terms from the Latin-script part of the question."""
    q = unicodedata.normalize("NFKC", _LATEX_SUP.sub(r"\1", question))
    out, q = _date_terms(q)
    for i, m in enumerate(_TOKEN.finditer(q)):
        tok = re.sub(r"['’]s$", "", m.group(0)).strip(".'’-/")
        low = norm(tok)
        if not tok or low in STOP or low in GENERIC or low.rstrip("s") in GENERIC:
            continue
        first = m.start() == 0 or i == 0
        if _is_strong(tok, first):
            key = low[:-1] if tok.endswith("s") and tok[:-1].isupper() and len(tok) > 2 else low
            out.append(Term(tok, key, "strong", _acronym_part(tok) if "-" in tok else ""))
        elif _is_name(tok, first) and low.isalpha():
            out.append(Term(tok, low, "name"))
        elif len(low) >= 3 and low.isalpha():
            out.append(Term(tok, _stem(low), "weak"))
    return out


def _cjk_terms(question: str) -> list[Term]:
    """Chinese bigrams after dropping question words and function characters."""
    out: list[Term] = []
    text = raw = " ".join(_CJK_RUN.findall(question))
    for phrase in _ZH_STOP_PHRASES:
        text = text.replace(phrase, " " * len(phrase))
    alts = _glossary_alts(raw)
    for m in re.finditer("[^" + _ZH_STOP_CHARS + r"\s]{2,}", text):
        piece, at = m.group(0), m.start()
        for i in range(len(piece) - 1):
            a, b = alts.get(at + i, ("", ())), alts.get(at + i + 1, ("", ()))
            gloss = a if a == b else ("", ())
            out.append(Term(piece[i:i + 2], piece[i:i + 2], "cjk", span=(at + i, at + i + 1), alts=gloss[1],
                            glossary=gloss[0]))
    return out




def _glossary_alts(text: str) -> dict[int, tuple[str, tuple[str, ...]]]:
    """Character position -> (phrase, English prefixes) of the longest glossary phrase covering it."""
    out: dict[int, tuple[str, tuple[str, ...]]] = {}
    for zh in sorted(GLOSSARY, key=len):  # longer phrases overwrite shorter ones
        for m in re.finditer(re.escape(zh), text):
            out.update((i, (zh, GLOSSARY[zh])) for i in range(m.start(), m.end()))
    return out


def cjk_share(terms: list[Term], keys: set[str]) -> float:
    """Share of the question's Chinese content characters inside covered bigrams (1.0 if none)."""
    chars = {c for t in terms if t.kind == "cjk" for c in t.span}
    got = {c for t in terms if t.kind == "cjk" and t.key in keys for c in t.span}
    return len(got) / len(chars) if chars else 1.0


def salient_terms(question: str) -> list[Term]:
    """Salient terms of a question, deduplicated by key, in question order."""
    seen: dict[str, Term] = {}
    for t in _ascii_terms(question) + _cjk_terms(question):
        seen.setdefault(t.key, t)
    return list(seen.values())


def _bounded(needle: str, hay: str) -> int:
    """Start of ``needle`` in ``hay`` not glued to other letters/digits, else -1."""
    for m in re.finditer(re.escape(needle), hay):
        a, b = m.start(), m.end()
        if (a == 0 or not _alnum(hay[a - 1])) and (b == len(hay) or not _alnum(hay[b])):
            return a
    return -1


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _acronym_at(acr: str, hay: str) -> int:
    """Position of words whose initials spell ``acr`` (one extra inner word allowed), else -1."""
    words = [(m.start(), m.group(0)) for m in _WORDS.finditer(hay)]
    for i in range(len(words)):
        if words[i][1][0] != acr[0] or len(words[i][1]) < 4:
            continue
        if _spell(acr, [w for _, w in words[i:i + len(acr) + 1]]):
            return words[i][0]
    return -1


def _spell(acr: str, words: list[str]) -> bool:
    """Do ``words`` start with initials ``acr``, allowing one skipped inner word?"""
    initials = "".join(w[0] for w in words)
    if initials.startswith(acr):
        return all(len(w) >= 4 for w in words[: len(acr)])
    for skip in range(1, len(acr)):
        cand = initials[:skip] + initials[skip + 1:]
        if cand.startswith(acr) and all(len(w) >= 4 for w in words[: len(acr) + 1]):
            return True
    return False


def find(term: Term, hay: str) -> int:
    """Position where ``term`` is covered in normalised text ``hay``, else -1."""
    if term.kind == "cjk":
        pos = hay.find(term.key)
        for alt in term.alts if pos < 0 else ():
            m = re.search(r"(?<![a-z0-9])" + re.escape(alt), hay)
            if m:
                return m.start()
        return pos
    if term.kind in ("weak", "name"):
        m = re.search(r"(?<![a-z0-9])" + re.escape(term.key), hay)
        return m.start() if m else -1
    pos = _bounded(term.key, hay)
    if pos < 0 and "-" in term.key:  # RQ-VAE ~ RQVAE, also inside a compound like CF-RQVAE
        pos = _bounded(term.key.replace("-", ""), hay)
    if pos < 0 and "-" in term.key:
        pos = _bounded(term.key.replace("-", ""), hay.replace("-", ""))
        pos = 0 if pos >= 0 else -1  # position lost by the squeeze; coverage is what matters
    if pos < 0 and term.key.endswith("s"):
        pos = _bounded(term.key[:-1], hay)
    if pos < 0 and term.acronym:
        pos = _bounded(term.acronym, hay)
        pos = pos if pos >= 0 else _acronym_at(term.acronym, hay)
    return pos


@dataclass
class Sentence:
    """One candidate evidence sentence of one source."""

    text: str
    hit_index: int
    lang: str
    norm: str
    matched: dict[str, int] = field(default_factory=dict)  # term key -> position
    score: float = 0.0
    meta: bool = False  # a metadata line asked for by the question (authors, date ...)


@dataclass
class SourceEvidence:
    """Everything the answerer knows about one retrieved source."""

    hit: Hit
    index: int
    head: str  # normalised title + ids + authors
    sentences: list[Sentence]
    covered: set[str] = field(default_factory=set)
    contrast: set[str] = field(default_factory=set)  # strong keys mentioned only in contrast
    in_head: set[str] = field(default_factory=set)  # keys found in the title/ids/authors

    @property
    def has_zh(self) -> bool:
        return any(s.lang == "zh" for s in self.sentences)


def is_instruction(sentence: str) -> bool:
    """Does a source sentence read like an instruction to the answerer (prompt injection)?"""
    return bool(_INJECTION.search(sentence))


def _evidence(hit: Hit, index: int) -> SourceEvidence:
    """Sentences (instruction-like ones removed) and the header text of one hit."""
    head = norm(" ".join([hit.title, hit.arxiv_id or "", " ".join(hit.authors), hit.date or ""]))
    sents: list[Sentence] = []
    seen: set[str] = set()
    for p in hit.passages:
        for s in split_sentences(p.text):
            if s in seen or is_instruction(s) or len(s) < 12:
                continue
            seen.add(s)
            lang = "zh" if _CJK.search(s) else "en"
            sents.append(Sentence(display(s), index, lang, norm(s)))
    return SourceEvidence(hit, index, head, sents)


def meta_fields(hit: Hit) -> dict[str, str]:
    """Metadata of a hit: the fields of its "meta" passage, completed from the hit (authors, date ...)."""
    out: dict[str, str] = {}
    for p in hit.passages:
        if p.field == "meta":
            parts = _META_FIELD.split(p.text.strip())
            out.update((k, v.strip().rstrip(".").strip()) for k, v in zip(parts[1::2], parts[2::2]) if v.strip())
    extra = {"Authors": ", ".join(hit.authors), "Categories": ", ".join(hit.categories),
             "arXiv ID": hit.arxiv_id or "", "Date": hit.date or ""}
    out.update({k: v for k, v in extra.items() if v})
    return out


def meta_cues(question: str) -> list[tuple[tuple[str, ...], bool]]:
    """(fields, strict) for each metadata cue in the question; a later date cue yields to an earlier one."""
    out = []
    for cue, keys, strict in _META:
        if cue.search(question) and not (out and "Date" in keys and any("Date" in k for k, _ in out)):
            out.append((keys, strict))
    return out


def _meta_sentences(hit: Hit, index: int, question: str) -> list[Sentence]:
    """Metadata lines (venue, DOI, dates, authors ...) the question asks about, as ``Field: value``."""
    fields = meta_fields(hit)
    chosen: list[str] = []
    for keys, _ in meta_cues(question):
        present = [k for k in keys if k != "*" and fields.get(k)]
        take = present if "*" in keys else present[:1]
        if "*" in keys and len(take) > 1 and "Date" in take:
            take.remove("Date")
        chosen.extend(k for k in take if k not in chosen)
    texts = dict.fromkeys(f"{k}: {fields[k]}" for k in chosen)
    return [Sentence(t, index, "meta", norm(t), meta=True) for t in texts]


def _cover(ev: SourceEvidence, terms: list[Term]) -> None:
    """Fill sentence matches, the source's covered terms and contrast-only strong terms."""
    plain: set[str] = set()
    for s in ev.sentences:
        for t in terms:
            pos = find(t, s.norm)
            if pos >= 0:
                s.matched[t.key] = pos
                if not (t.kind == "strong" and _contrasted(s.norm, pos)):
                    plain.add(t.key)
    in_head = ev.in_head = {t.key for t in terms if find(t, ev.head) >= 0}
    ev.covered = in_head | {k for s in ev.sentences for k in s.matched}
    ev.contrast = {t.key for t in terms if t.kind == "strong" and t.key in ev.covered
                   and t.key not in plain and t.key not in in_head}


def _contrasted(text: str, pos: int) -> bool:
    """Is there a contrast cue shortly before position ``pos``?"""
    return any(m.end() <= pos and pos - m.end() <= 30 for m in _CONTRAST.finditer(text[: pos + 1]))


def _weights(terms: list[Term], evs: list[SourceEvidence]) -> dict[str, float]:
    """IDF over the retrieved sources; strong terms count double."""
    n = max(1, len(evs))
    out = {}
    for t in terms:
        df = sum(1 for e in evs if t.key in e.covered)
        out[t.key] = math.log(1 + (n + 1) / (df + 0.5)) * {"strong": 2.0, "name": 1.5}.get(t.kind, 1.0)
    return out


def _score_sentences(ev: SourceEvidence, w: dict[str, float], lang: str) -> None:
    """Sentence score: weight of covered terms, title terms a little, language and rank as tie-breakers."""
    for s in ev.sentences:
        base = sum(w[k] for k in s.matched) + 0.3 * sum(w[k] for k in ev.in_head if k not in s.matched)
        lang_factor = 1.0 if s.lang == "meta" else (1.15 if s.lang == lang else 0.8)
        s.score = base * lang_factor * (1 + 0.05 / (ev.index + 1)) + (0.01 if re.search(r"\d", s.text) else 0)


def _add_meta(ev: SourceEvidence, question: str) -> None:
    """Put requested metadata lines first for this source (they outrank its sentences)."""
    metas = _meta_sentences(ev.hit, ev.index, question)
    top = max((x.score for x in ev.sentences), default=0.0)
    for m in metas:
        m.score = top + 1.0
    ev.sentences = metas + ev.sentences


def _coverage(keys: set[str], w: dict[str, float]) -> float:
    total = sum(w.values())
    return sum(v for k, v in w.items() if k in keys) / total if total else 0.0


def is_list_question(question: str) -> bool:
    """"Which papers ..." / "哪些/哪篇 ..." questions get one line per matching paper."""
    return bool(_LIST_EN.search(question) or _LIST_ZH.search(question))


_LATEX_FONT = re.compile(r"\\(?:textbf|textit|textrm|textsc|emph|mathbf|mathrm)\{([^{}]*)\}")
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def display(text: str) -> str:
    """Readable source text: ``Align$^3$GR`` -> ``Align³GR``, ``\\%`` -> ``%``."""
    text = _LATEX_SUP.sub(lambda m: m.group(1).translate(_SUPERSCRIPT) if m.group(1).isdigit() else m.group(1),
                          text)
    return unescape_latex(_LATEX_FONT.sub(r"\1", text))


def short_title(title: str) -> str:
    """Name part of a title (before the colon) or the title cut to 80 characters."""
    title = display(title)
    head = title.split(":")[0].strip()
    if ":" in title and 2 <= len(head) <= 60:
        return head
    return title if len(title) <= 80 else title[:77] + "…"


@dataclass
class Plan:
    """What the extractive answer will say."""

    lang: str
    abstain_missing: list[str] = field(default_factory=list)
    lines: list[tuple[SourceEvidence, list[Sentence], list[str]]] = field(default_factory=list)
    listing: bool = False
    no_sources: bool = False


def plan(question: str, hits: list[Hit], terms_from: str | None = None) -> Plan:
    """Decide abstention and the (source, sentences, contrast terms) lines of the answer."""
    lang = "zh" if _CJK.search(question) else "en"
    terms = salient_terms(terms_from or question)
    _TERM_CACHE.clear()
    _TERM_CACHE.update({t.key: (t,) for t in terms})
    if not hits:
        return Plan(lang, no_sources=True)
    evs = [_evidence(h, i) for i, h in enumerate(hits)]
    for ev in evs:
        _cover(ev, terms)
    missing = _missing(terms, evs, strong_groups(terms, terms_from or question))
    if not terms or missing:
        return Plan(lang, abstain_missing=missing or ["(no specific terms in the question)"])
    w = _weights(terms, evs)
    for ev in evs:
        _score_sentences(ev, w, lang)
        _add_meta(ev, question)
    listing = is_list_question(question)
    lines = _list_lines(terms, evs, w, terms_from or question) if listing else _best_lines(terms, evs, w)
    if not lines:
        return Plan(lang, abstain_missing=[t.text for t in terms])
    absent = _absent_meta(question, lines, lang)
    if absent:
        return Plan(lang, abstain_missing=absent)
    return Plan(lang, lines=lines, listing=listing)


_META_LABEL = {"en": {"Comment": "venue (comment)", "DOI": "DOI", "License": "license", "Score": "score"},
               "zh": {"Comment": "发表会议（备注）", "DOI": "DOI", "License": "许可协议", "Score": "评分"}}


def _absent_meta(question: str, lines, lang: str) -> list[str]:
    """Strictly metadata questions (venue, DOI, license ...) whose field no answering source has, and
    that no quoted sentence mentions either: the answer would be off-topic, so abstain instead."""
    out = []
    for cue, keys, strict in _META:
        if not (strict and cue.search(question)):
            continue
        has = any(k in meta_fields(ev.hit) for ev, _, _ in lines for k in keys)
        said = any(cue.search(s.text) for ev, _, _ in lines for s in ev.sentences if not s.meta)
        if not (has or said):
            out.append(_META_LABEL[lang].get(keys[0], keys[0]))
    return out


def _missing(terms: list[Term], evs: list[SourceEvidence], groups: list[set[str]]) -> list[str]:
    """Strong terms no source covers (unless an "or" alternative is covered); or all terms when under
    half the question is covered."""
    union = set().union(*(e.covered for e in evs)) if evs else set()
    strong = [t.text for t in terms if t.kind == "strong" and t.key not in union]
    if strong and not any(g <= union for g in groups):
        return strong
    latin = [t for t in terms if t.kind != "cjk"]
    latin_share = sum(t.key in union for t in latin) / len(latin) if latin else 1.0
    has_strong = any(t.kind == "strong" for t in terms)
    zh_share = 1.0 if has_strong else cjk_share(terms, union)  # named terms carry cross-lingual questions
    if latin_share < 0.5 or zh_share < 0.5:
        return [t.text for t in terms if t.key not in union]
    return []


def _strong_ok(terms: list[Term], ev: SourceEvidence) -> bool:
    return all(t.key in ev.covered for t in terms if t.kind == "strong")


def _best_sentence(ev: SourceEvidence, prefer: set[str]) -> Sentence | None:
    """Highest-scoring sentence, preferring ones that mention a strong term."""
    cands = [s for s in ev.sentences if s.score > 0]
    if not cands:
        return None
    return max(cands, key=lambda s: (s.meta, bool(prefer & s.matched.keys()), s.score, -ev.sentences.index(s)))


def _applicable(w: dict[str, float], terms: list[Term], ev: SourceEvidence) -> dict[str, float]:
    """Term weights a source can be judged on: Chinese terms are moot for an English-only source
    when named terms carry the question."""
    if ev.has_zh or not any(t.kind == "strong" for t in terms):
        return w
    cjk = {t.key for t in terms if t.kind == "cjk"}
    return {k: v for k, v in w.items() if k not in cjk}


_OR = re.compile(r"\s(?:or|and/or)\s|或者|或是|或")


def strong_groups(terms: list[Term], question: str) -> list[set[str]]:
    """Strong-term keys a source must all cover, per alternative: "A or B" questions are satisfied
    by either side (a side without strong terms imposes none)."""
    keys = {t.key for t in terms if t.kind == "strong"}
    sides = _OR.split(question)
    if len(sides) < 2:
        return [keys]
    return [keys & {t.key for t in salient_terms(side)} for side in sides]


def _list_lines(terms: list[Term], evs: list[SourceEvidence], w: dict[str, float], question: str):
    """Every source covering the strong terms (of one alternative) and enough of the rest, best first."""
    strong = {t.key for t in terms if t.kind == "strong"}
    groups = strong_groups(terms, question)
    covs = {e.index: _coverage(e.covered, _applicable(w, terms, e)) for e in evs}
    best = max(covs.values())
    lines = []
    for ev in evs:
        if not any(g <= ev.covered for g in groups) or covs[ev.index] < max(0.34, 0.6 * best):
            continue
        sent = _best_sentence(ev, strong)
        if sent is not None:
            lines.append((ev, [sent], [t.text for t in terms if t.key in ev.contrast]))
    return lines


def _best_lines(terms: list[Term], evs: list[SourceEvidence], w: dict[str, float]):
    """The top source's best one or two sentences, plus up to two close runners-up."""
    ranked = []
    for ev in evs:
        sent = _best_sentence(ev, set())
        if sent is not None and _strong_ok_any(terms, ev, evs) and _enough_rest(terms, ev):
            ranked.append((sent.score, ev, sent))
    ranked.sort(key=lambda r: (-r[0], r[1].index))
    if not ranked:
        return []
    top = ranked[0][0]
    lines = []
    for score, ev, sent in ranked[:3]:
        if score < 0.75 * top:
            break
        extra = _extra_sentences(ev, sent, score) if not lines else []
        chosen = sorted([sent] + extra, key=ev.sentences.index)
        lines.append((ev, chosen, [t.text for t in terms if t.key in ev.contrast]))
    return lines


def _extra_sentences(ev: SourceEvidence, sent: Sentence, score: float) -> list[Sentence]:
    """Other requested metadata lines when the answer is metadata; else one close, non-redundant sentence."""
    if sent.meta:
        return [s for s in ev.sentences if s.meta and s is not sent]
    extra = [s for s in ev.sentences if s is not sent and s.score >= 0.6 * score
             and overlap(s.text, sent.text) < 0.8 and overlap(sent.text, s.text) < 0.8]
    return sorted(extra, key=lambda s: -s.score)[:1]


def _enough_rest(terms: list[Term], ev: SourceEvidence, share: float = 0.4) -> bool:
    """A source answering alone must also cover part of the question's other (weak/Chinese) terms."""
    rest = [t.key for t in terms if t.kind in ("weak", "name")]
    if rest and sum(k in ev.covered for k in rest) / len(rest) < share:
        return False
    has_strong = any(t.kind == "strong" for t in terms)
    return (has_strong and not ev.has_zh) or cjk_share(terms, ev.covered) >= share


def _strong_ok_any(terms: list[Term], ev: SourceEvidence, evs: list[SourceEvidence]) -> bool:
    """A source answers alone if it covers all strong terms, or at least one when the question names several."""
    keys = [t.key for t in terms if t.kind == "strong"]
    if not keys or _strong_ok(terms, ev):
        return True
    return len(keys) > 1 and any(k in ev.covered for k in keys)


_FRAME = {
    "en": {"list": "Papers in the retrieved digests that match:", "best": "According to the retrieved digests:",
           "contrast": "contrasts itself with {terms} rather than using it", "noid": "no arXiv ID",
           "missing": "The retrieved digests do not mention: {terms}.",
           "none": "No sources were retrieved (is the index empty, or are the filters too narrow?)."},
    "zh": {"list": "检索到的论文中符合条件的有：", "best": "根据检索到的摘要：",
           "contrast": "并未使用 {terms}，而是与之对比", "noid": "无 arXiv ID",
           "missing": "检索到的摘要中没有提到：{terms}。", "none": "没有检索到任何来源（索引为空，或筛选条件过窄？）。"},
}


def render(p: Plan) -> list[str]:
    """Answer text as lines (each line is one streamed delta)."""
    f = _FRAME[p.lang]
    if p.no_sources:
        return [CANNOT_ANSWER + "\n", f["none"]]
    if p.abstain_missing:
        sep = "、" if p.lang == "zh" else ", "
        return [CANNOT_ANSWER + "\n", f["missing"].format(terms=sep.join(p.abstain_missing))]
    out = [f["list"] if p.listing else f["best"]]
    for ev, sents, contrast in p.lines:
        out.append("\n" + _line(ev, sents, contrast, p.lang))
    return out


def _line(ev: SourceEvidence, sents: list[Sentence], contrast: list[str], lang: str) -> str:
    """``- Title (arXiv id): sentence [n]`` or the contrast phrasing."""
    f = _FRAME[lang]
    n = ev.index + 1
    ident = ev.hit.arxiv_id or f["noid"]
    name = f"{short_title(ev.hit.title)} ({ident})" if lang == "en" else f"{short_title(ev.hit.title)}（{ident}）"
    colon = ": " if lang == "en" else "："
    if lang == "zh" and any(s.lang == "en" for s in sents):
        return f"- {name}{colon}{_zh_excerpts(sents, n)}"
    quoted = " ".join(f"{_clip(s)} [{n}]" for s in sents)
    if contrast:
        body = " ".join(_clip(s) for s in sents)
        q = f"“{body}”" if lang == "zh" else f'"{body}"'
        dash = " — " if lang == "en" else "——"
        return f"- {name}{colon}{f['contrast'].format(terms=', '.join(contrast))}{dash}{q} [{n}]"
    return f"- {name}{colon}{quoted}"


def _zh_excerpts(sents: list[Sentence], n: int) -> str:
    """English evidence for a Chinese question: a Chinese note on what it is about, then a short excerpt
    around the matched terms (the cited passage has the whole sentence)."""
    parts = []
    for s in sents:
        if s.lang != "en":
            parts.append(f"{_clip(s)} [{n}]")
            continue
        about = "、".join(_zh_topics(s))
        note = f"英文原文摘录，涉及{about}。" if about else "英文原文摘录。"
        parts.append(f"{note}“{_excerpt(s)}” [{n}]")
    return " ".join(parts)


def _zh_topics(s: Sentence) -> list[str]:
    """The question's terms this sentence matched, in Chinese where the question said them in Chinese."""
    out: list[str] = []
    for key in s.matched:
        t = _TERM_CACHE.get(key, (None,))[0]
        if t is None:
            continue
        label = t.glossary or t.text
        if label not in out:
            out.append(label)
    return out[:4]


def _excerpt(s: Sentence, pad: int = 6) -> str:
    """Words of the sentence from ``pad`` before the first to ``pad`` after the last matched term."""
    words = list(re.finditer(r"\S+", s.text))
    low = s.text.lower()
    at = [pos for key in s.matched for t in _TERM_CACHE.get(key, ()) if (pos := find(t, low)) >= 0]
    if not at or len(words) <= 2 * pad + 4:
        return _clip(s)
    idx = [i for i, w in enumerate(words) if any(w.start() <= a < w.end() + 1 for a in at)] or [0]
    lo, hi = max(0, min(idx) - pad), min(len(words), max(idx) + pad + 1)
    text = s.text[words[lo].start():words[hi - 1].end()]
    return ("…" if lo > 0 else "") + text + ("…" if hi < len(words) else "")


def _clip(s: Sentence, limit: int = 300) -> str:
    """A long sentence cut to its clauses (split at ; ；) that mention question terms."""
    if len(s.text) <= limit:
        return s.text
    clauses = [c.strip() for c in re.split(r"(?<=[;；])\s*", s.text) if c.strip()]
    keep = [i for i, c in enumerate(clauses) if s.matched and any(_hits_clause(k, c) for k in s.matched)]
    if len(clauses) < 2 or not keep:
        return _cut(s.text)
    text = " … ".join(clauses[i].rstrip(";；") for i in keep)
    return _cut(("… " if keep[0] > 0 else "") + text + (" …" if keep[-1] < len(clauses) - 1 else ""))


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_SENT_CHARS else text[:_MAX_SENT_CHARS].rstrip() + "…"


def _hits_clause(key: str, clause: str) -> bool:
    """Does the clause mention the term ``key`` (any matching strategy)?"""
    c = norm(clause)
    return any(find(t, c) >= 0 for t in _TERM_CACHE.get(key, ()))


_TERM_CACHE: dict[str, tuple[Term, ...]] = {}


def answer_lines(question: str, hits: list[Hit], terms_from: str | None = None) -> list[str]:
    """The extractive answer for ``question`` over ``hits`` as streamable lines."""
    return render(plan(question, hits, terms_from))
