"""Question analysis: language, what kind of answer is asked for, the parts of a multi-part question, its terms.

Each part gets an *aspect* (what the answer must be):

- metadata aspects answered from a paper's own fields: ``authors``, ``affiliation``, ``venue``, ``date``
  (``submitted`` / ``listed``), ``code``, ``category``, ``doi``, ``license``, ``score``, ``arxiv_id``;
- ``count`` (how many / how much: the evidence must hold a number), ``compare`` (two or more papers side by
  side), ``content`` (anything else: what / how / why / which method ...).

``listing`` marks "which papers ..." parts (every matching source gets a line). A part without terms of its own
("... and who wrote it?") borrows the question's subject terms (the named things of the other parts).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..text import language
from ..text import STOPWORDS
from .terms import FRAME_WORDS, Term, question_terms

# What a measurement is called: "what accuracy / latency / F1 ..." asks for a number.
_MEASURES = (r"(?:accuracy|precision|recall|f1|auc|score|latency|speed|throughput|size|length|percentage|rate|"
             r"cost|price|error|gain|lift|improvement|speedup)(?=\s+(?:does|do|did|is|are|was|were|of|on|for|in|at|"
             r"has|have|had|can|could|will|would|when|with)\b|\s*[?？,;]|\s*$)")
# Cue patterns: general question words of English and Chinese, one per aspect (first match wins).
_ASPECTS: tuple[tuple[str, re.Pattern], ...] = (
    ("expansion", re.compile(r"\bstands?\s+for\b|\bfull\s+(?:name|form|title)\b|\babbreviat\w*|\bacronym\b|"
                             r"全称|缩写|代表什么|是什么的缩写", re.I)),
    ("pages", re.compile(r"\bhow\s+long\s+is\s+(?:the|this|that|its)\s+(?:paper|article|preprint)\b|"
                         r"\bhow\s+many\s+pages\s+(?:is|does|has|are)\b|\bpage\s+count\b|"
                         r"(?:论文|文章|这篇)[^？?，,]{0,6}(?:多少页|几页)|篇幅", re.I)),
    ("code", re.compile(r"\b(?:code|github|repository|repo|checkpoints?|huggingface|open[- ]sourced?)\b|"
                        r"\bweights\s+(?:are|were|is)?\s*(?:released|available|published|hosted)|"
                        r"\bwhere\b[^?？]{0,40}\bweights\b|代码|开源|权重", re.I)),
    ("affiliation", re.compile(r"\b(?:which|what|whose)\b[^?？]{0,30}\b(?:compan(?:y|ies)|institutions?|"
                               r"universit(?:y|ies)|labs?|laborator(?:y|ies)|organi[sz]ations?|teams?|employers?|"
                               r"platforms?|groups?)\b|\baffiliat\w*|"
                               r"哪家|哪(?:个|所|些)(?:公司|企业|机构|大学|实验室|团队|平台|单位)|"
                               r"什么(?:公司|企业|机构|大学|实验室|团队|平台)|单位|机构", re.I)),
    ("coauthored", re.compile(
        r"\bauthors?\b[^?？]{0,60}\b(?:another|other|more|else)\b[^?？]{0,60}\b(?:papers?|works?|preprints?)\b|"
        r"\b(?:shares?|sharing|in\s+common)\b[^?？]{0,40}\bauthors?\b|\bauthors?\b[^?？]{0,40}\bin\s+common\b|"
        r"\bsame\s+(?:authors?|team)\b|作者[^？?]{0,50}(?:还有|另一篇|另外|其他|其它|别的)|(?:同一|相同|共同)(?:批|组)?作者", re.I)),
    ("authors", re.compile(r"\b(?:who|whom|authors?|authored|wrote|written\s+by|co-?authors?)\b|作者|谁", re.I)),
    ("venue", re.compile(r"\bwhere\b[^?？]{0,60}\b(?:published|accepted|presented|submitted|appear\w*)\b|"
                         r"\b(?:venues?|conferences?|journals?|workshops?|accepted|proceedings|"
                         r"published\s+(?:at|in|by)(?!\s+\d{4})|appear(?:s|ed)?\s+(?:in|at))\b|会议|期刊|录用|接收|发表在|发表于|投稿|投到",
                         re.I)),
    # "Is X a CVPR 2026 paper?", "X 是 CVPR 2026 的论文吗？": a yes/no question about a venue and year
    ("venue", re.compile(r"^\s*(?:[Ii]s|[Ww]as|[Aa]re|[Ww]ere)\b.*\b[A-Z][A-Za-z]*[A-Z][A-Za-z]*\s*'?(?:19|20)\d{2}\b|"
                         r"\b[A-Z][A-Za-z]*[A-Z][A-Za-z]*\s*'?(?:19|20)\d{2}\b[^？?]*吗\s*[？?]?\s*$")),
    ("doi", re.compile(r"\bdoi\b", re.I)),
    ("license", re.compile(r"\blicen[cs]e[ds]?\b|许可|授权", re.I)),
    ("score", re.compile(r"\b(?:relevance|digest|page)\s+score\b|相关性得分|评分", re.I)),
    ("listed", re.compile(r"\b(?:listed|announced|digest\s+date|which\s+(?:date'?s?\s+)?digest)\b|"
                          r"收录|日报", re.I)),
    ("submitted", re.compile(r"\bwhen\b[^?？]{0,60}\bsubmitted\b|\bsubmission\s+date\b|\bsubmitted\s+(?:on|to\s+arxiv)\b|"
                             r"提交", re.I)),
    # "when" asks for a time as a question word ("when was ...", "... and when?"), not as a condition ("what
    # does X generate when a query needs augmentation")
    ("date", re.compile(r"(?:^\s*|[,;，]\s*(?:and\s+)?|\band\s+)when\b|\bwhen\s+(?:was|were|did|is|are|does|do|has|"
                        r"have|had|will|would)\b|\bwhen\s*[?？]|"
                        r"\b(?:dates?|what\s+year|which\s+year|which\s+days?|published\s+in\s+\d{4})\b|"
                        r"日期|何时|什么时候|哪一?年|哪一?天",
                        re.I)),
    ("category", re.compile(r"\b(?:categor(?:y|ies)|subject\s+area|arxiv\s+section)\b|类别|分类|领域", re.I)),
    ("arxiv_id", re.compile(r"\barxiv\s*(?:ids?|numbers?|identifiers?)\b|编号", re.I)),
    ("compare", re.compile(r"\b(?:compare[ds]?|comparison|differ(?:s|ence|ences)?|different|vs\.?|versus|"
                           r"distinguish)\b|区别|不同|差异|比较|对比|相比|各自|"
                           # "what does each one do?", "两篇…分别做什么？": each of several papers on one point
                           r"\b(?:what|how|which)\b[^?？]{0,30}\beach\b(?!\s+(?:item|user|query|sample|step)s?\b)|"
                           r"分别(?:做|是|提出|研究|讲)|"
                           # "which is faster, A or B?", "A 和 B 哪个更大？": a comparative asked between two things
                           r"\bwhich\b(?!\s+(?:papers?|works?|studies|articles)\b)(?:\s+\w+){0,3}?\s+(?:faster|slower|bigger|larger|smaller|higher|lower|better|"
                           r"worse|more|fewer|less|cheaper|longer|shorter)\b[^?？]*\b(?:or|and)\b|"
                           r"(?:哪个|哪一个|哪篇|谁)(?:的)?[^？?，,]{0,6}?更", re.I)),
    ("count", re.compile(r"\bhow\s+(?:many|much|large|big)\b|\bnumber\s+of\b|\bby\s+how\s+much\b|多少|"
                         r"\bwhat(?:'s|\s+(?:is|was|are|were))?\s+(?:the\s+|its\s+|their\s+)?(?:[\w\-]+\s+){0,2}" + _MEASURES + "|"
                         r"(?<!哪)几(?:个|种|篇|项|类|位|张|倍)|多大|规模", re.I)),
)
META_ASPECTS = ("coauthored", "authors", "affiliation", "venue", "doi", "license", "score", "code", "listed", "submitted", "date",
                "category", "arxiv_id")
# A subject ("the LORE authors") is not a question about authors: the cue must be the thing asked.
_SUBJECT_USE = re.compile(r"\b(?:the|its|their)\s+(?:\S+\s+)?authors?\s+(?:build|built|propose|use|used|develop|"
                          r"introduce|evaluate|collect|release)\w*", re.I)
_LIST_EN = re.compile(r"^\s*(?:(?:and|also|so)\s+)?(?:which|what|list|name|find|show|give|get|are\s+there|is\s+there|do\s+any|"
                      r"does\s+any|any)\b(?:\s+(?!papers?\b)\S+){0,3}?\s+(?:papers|works|studies|articles|preprints)\b|"
                      r"^\s*(?:are\s+there|is\s+there|do\s+any|does\s+any)\b", re.I)
_LIST_ZH = re.compile(r"(?:哪些|有哪些|列出)(?:[^，。？?]{0,4}?)(?:论文|文章|工作|研究|paper)|哪几篇|"
                      r"有没有.{0,6}(?:论文|文章|工作|研究)")
# Where a question splits into parts: a second question mark, ";", or "and" + a question word.
_PART_SPLIT = re.compile(
    r"(?<=[?？])\s*(?=\S)|;\s*|；|"
    r",?\s+and\s+(?=(?:(?:on|in|at|for|by|from|with|to|over|against|under|about|into|through|during|via|of|up\s+to)\s+)?"
    r"(?:what|which|how|who|whom|whose|when|"
    r"where|why|is|are|was|were|does|do|did|has|have|can)\b)|"
    r"[，,]\s*(?:以及|并且|还有|另外|同时|那么)?(?=[^，,]{0,12}(?:什么|哪|多少|谁|如何|怎么|怎样|是否|几))|以及|并且",
    re.I)
_EXAMPLE = re.compile(r"(?:比如|例如|譬如|像是|e\.g\.|eg\b|such as|like|for example|for instance)", re.I)
_QWORD = re.compile(r"\b(?:what|which|how|who|whom|whose|when|where|why|is|are|was|were|does|do|did|has|have|can|"
                    r"list|name)\b|^\s*(?:give|tell|state|show|report|say)\b|什么|哪|多少|谁|如何|怎么|怎样|是否|几|吗",
                    re.I)


_ENUMERATE = re.compile(r"\b(?:what|which)\s+(?:are\s+the\s+)?(?:\w+\s+)?(?:types|kinds|components|stages|steps|"
                        r"phases|parts|modules|levels|categories\s+of)\b|哪几[种个类项步]|哪些(?:类型|组件|阶段|步骤|"
                        r"部分|模块)|包括哪些|包含哪些|由哪些", re.I)


_ENTITY = re.compile(r"\b(?:which|what)\s+(?:\w+\s+){0,2}?(?:datasets?|benchmarks?|models?|methods?|algorithms?|metrics?|"
                     r"baselines?|languages?|tasks?|sensors?|scales?|sources?|tools?|encoders?|backbones?|"
                     r"architectures?|corpora|libraries|frameworks?|techniques?|loss(?:es)?)\b|"
                     r"(?:哪些|哪几个|哪几种|哪个|什么)(?:公开)?(?:数据集|基准|模型|方法|算法|指标|基线|语言|任务|"
                     r"传感器|量表|工具|编码器|框架|技术|损失)", re.I)


_HOW_MANY = re.compile(r"\bhow\s+many\s+((?:[\w\-]+\s+){0,3}?[\w\-]+?)(?=\s+(?:does|do|did|is|are|was|were|has|have|had|"
                       r"can|could|will|would|in|of|on|at|for|from|per|with|by|that|which|were|there)\b|\s*[?？,]|$)",
                       re.I)


_GENERIC_MEASURES = frozenset("size length speed rate score gain lift improvement speedup percentage".split())
_WHAT_MEASURE = re.compile(r"\bwhat(?:'s|\s+(?:is|was|are|were))?\s+(?:the\s+|its\s+|their\s+)?(?:[\w\-]+\s+){0,2}"
                           r"(" + _MEASURES + ")", re.I)


def counted(text: str) -> tuple[str, ...]:
    """What an English "how many X ..." part counts: the head noun of X ("PDFs" of "federal government PDFs"),
    of each side of "X and Y"; what "what accuracy ..." measures."""
    m = _HOW_MANY.search(text)
    if not m:  # a named measure must be in the sentence; "what size / rate / gain" is any number with a unit
        w = _WHAT_MEASURE.search(text)
        return (w.group(1).lower(),) if w and w.group(1).lower() not in _GENERIC_MEASURES else ()
    sides = re.split(r"\s+(?:and|or)\s+", m.group(1).lower())
    return tuple(side.split()[-1] for side in sides if side.split() and side.split()[-1] not in STOPWORDS)


_LISTED_FIELDS = {"venue": "Comment", "code": "Code", "license": "License"}


def listed_field(a: "Analysis") -> str:
    """The metadata field a "which papers ..." question asks about ("accepted at ...": Comment), or ''."""
    return next((_LISTED_FIELDS[p.aspect] for p in a.parts if p.listing and p.aspect in _LISTED_FIELDS), "")


def asks_coauthors(a: "Analysis") -> bool:
    """"Do the X authors have another paper?", "Which paper shares most of its authors with X?"."""
    return any(p.aspect == "coauthored" for p in a.parts)


def asks_entity(text: str) -> bool:
    """"Which datasets / 哪些数据集 ...": the answer names things (LEVIR-CD, IRT, PET-CT)."""
    return bool(_ENTITY.search(text))


def asks_enumeration(text: str) -> bool:
    """"What are the two stages of X?", "X 包含哪几种记忆？": the answer is a list inside one paper."""
    return bool(_ENUMERATE.search(text))


_TYPE_NOUN = re.compile(r"\b(?:what|which)\s+(?:kind\s+of\s+|type\s+of\s+|sort\s+of\s+)?([a-z][a-z\-]{2,})\b", re.I)
_ZH_TYPE_NOUN = re.compile(r"(?:什么|哪种|哪个|哪一种)([\u4e00-\u9fff]{2,3}?)(?:来|去|将|把|对|在|是|[？?，,。]|$)")


def type_noun(text: str) -> str:
    """The noun a "what/which X ..." question asks for ("mechanism", "benchmark", 机制), lowercased, or ''."""
    m = _TYPE_NOUN.search(text)
    if m and m.group(1).lower() not in STOPWORDS and m.group(1).lower() not in FRAME_WORDS:
        return m.group(1).lower()
    m = _ZH_TYPE_NOUN.search(text)
    return m.group(1) if m else ""


@dataclass(frozen=True)
class Part:
    """One sub-question: its text, aspect, whether it asks for a list of papers, and its terms."""

    text: str
    aspect: str
    listing: bool
    terms: tuple[Term, ...]
    borrowed: bool = False  # terms came from the rest of the question (an "it"/"they" part)
    # "A or B" / "A / B": groups of alternatives, each alternative the term keys of one side
    alternatives: tuple[tuple[tuple[str, ...], ...], ...] = ()

    @property
    def required(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.required)


@dataclass(frozen=True)
class Analysis:
    question: str
    lang: str
    parts: tuple[Part, ...]
    terms: tuple[Term, ...]  # all terms of the question

    @property
    def listing(self) -> bool:
        return any(p.listing for p in self.parts)


_TITLE_RUN = re.compile(r"(?<=[a-z0-9,;:)] )(?:[A-Z][\w\-]*\s+){1,6}[A-Z][\w\-]*")


_PAREN = re.compile(r"[(（][^()（）]*[)）]")  # a gloss or examples "(data, deployment or authors)": not the thing asked


def aspect_of(text: str) -> str:
    """The first aspect whose cue occurs in ``text``; an author-as-subject phrase is not an authors cue, and
    words of a Title Case name inside the sentence ("Think When Needed") are not cues."""
    probe = _TITLE_RUN.sub(" ", _SUBJECT_USE.sub(" ", _PAREN.sub(" ", text)))
    for name, rx in _ASPECTS:
        if rx.search(probe):
            return name
    return "content"


def is_list_question(text: str) -> bool:
    """"Which papers ..." / "哪些论文 ..." asks for every matching paper."""
    return bool(_LIST_EN.search(text) or _LIST_ZH.search(text))


def split_parts(question: str) -> list[str]:
    """Sub-questions: split where a new clause with its own question word starts; a piece without one, or
    without anything new to ask, stays with the one before (the original wording is kept)."""
    cuts = [0] + [x for m in _PART_SPLIT.finditer(question) for x in (m.start(), m.end())] + [len(question)]
    spans: list[list[int]] = []
    lead = None  # a first piece that asks nothing ("Beyond Text 那篇论文，...") is the next piece's subject
    for a, b in zip(cuts[::2], cuts[1::2]):
        piece = question[a:b]
        if not piece.strip(" ,，?？"):
            continue
        asks = bool(_QWORD.search(piece)) or _asks_aspect(piece)
        if not spans and lead is None and not asks:
            lead = a
        elif spans and (not asks or _trivial(piece) or _EXAMPLE.match(piece.strip())):
            spans[-1][1] = b
        else:
            spans.append([a if lead is None else lead, b])
            lead = None
    if lead is not None:
        spans.append([lead, len(question)])
    return [question[a:b].strip(" ,，") for a, b in spans] or [question]


def _asks_aspect(piece: str) -> bool:
    """A question without a question word that still asks for a field or a number ("代码地址是？",
    "the code link?"): it ends in a question mark and has an aspect of its own."""
    return piece.rstrip().endswith(("?", "？")) and aspect_of(piece) not in ("content", "compare")


def _trivial(piece: str) -> bool:
    """A piece that adds no terms and asks nothing new ("哪个更大？", "which is larger?") stays with the last."""
    terms = question_terms(piece)
    return aspect_of(piece) in ("content", "compare") and not any(t.required for t in terms) and len(terms) <= 1


_OR = re.compile(r"\s+(?:or|and/or)\s+|\s*/\s*|\s*、\s*(?=[A-Za-z0-9])(?<=[A-Za-z0-9]、)|(?<=[A-Za-z0-9])\s*还是\s*", re.I)
_CLAUSE = re.compile(r"[;:()（）\[\]；：？?!。]")  # ends a run of words around "or" (a comma ends one unless
#                                                   it lists the items of a parenthesis)
_RUN_STOP = re.compile(r"[^\w\-@.+³]+|(?<=[\u3400-\u9fff])(?=[A-Za-z0-9])|(?<=[A-Za-z0-9])(?=[\u3400-\u9fff])")


def alternatives(text: str, terms: tuple[Term, ...]) -> tuple[tuple[tuple[str, ...], ...], ...]:
    """For each "A or B" / "A / B" in ``text``: the term keys of the word run just before and just after it
    (runs stop at function words and punctuation), e.g. "neural radiance fields or 3D scene rendering"."""
    groups = []
    for m in _OR.finditer(text):  # a run also ends at punctuation: "involve Meituan (data, deployment or authors)"
        items = re.split(r"[,，、]", _CLAUSE.split(text[: m.start()])[-1])
        right = _run(_RUN_STOP.split(re.split(r"[,，、]", _CLAUSE.split(text[m.end():])[0])[0]))
        # every listed item is a side: "(decoding, construction or quantization)", "use MoE, DPO or RLHF"
        listed = _in_parens(text, m.start()) or len(_run(reversed(_RUN_STOP.split(items[-1])))) == \
            len(_RUN_STOP.split(items[-1].strip()))
        items = items if listed else items[-1:]
        runs = [_run(reversed(_RUN_STOP.split(x))) for x in items] + [right]
        sides = tuple(tuple(t.key for t in terms if t.kind != "cjk" and any(_same(t, w) for w in run))
                      for run in runs)
        if all(sides[-2:]):
            groups.append(tuple(x for x in sides if x))
    return tuple(groups)


def _in_parens(text: str, pos: int) -> bool:
    before = text[:pos]
    return max(before.rfind("("), before.rfind("（")) > max(before.rfind(")"), before.rfind("）"))


_GLOSS = re.compile(r"([\u3400-\u9fff]{2,}(?:\s*[A-Za-z0-9\-]+)?)[”\"」』]?\s*[（(]\s*([A-Za-z][^）)]{1,60})[）)]|"
                    r"([A-Za-z][A-Za-z0-9 \-]{1,60}?)[”\"」』]?\s*[（(]\s*([\u3400-\u9fff]{2,})\s*[）)]")


_ACRONYM_GLOSS = re.compile(r"((?:[A-Za-z][\w\-]*\s+){1,7}?[A-Za-z][\w\-]*)\s*[（(]\s*([A-Za-z][\w\-]{1,15})\s*[）)]|"
                            r"\b([A-Za-z][\w\-]{1,15})\s*[（(]\s*((?:[A-Za-z][\w\-]*\s+){1,7}[A-Za-z][\w\-]*)\s*[）)]")


def acronym_glosses(text: str, terms: tuple[Term, ...]) -> tuple[tuple[tuple[str, ...], ...], ...]:
    """"Think When Needed (TWN)" / "FwPKM (Fast-weight Product Key Memory)": a name and its acronym, as the
    user wrote them; the source may use either. (The long side is the words whose initials spell it.)"""
    from .terms import acronym_at

    groups = []
    for m in _ACRONYM_GLOSS.finditer(text):
        long, short = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        letters = re.sub(r"[^a-z]", "", short.lower())
        at = acronym_at(letters, long.lower()) if len(letters) >= 2 else -1
        if at < 0:
            continue
        words = {w.lower() for w in re.findall(r"[A-Za-z][\w\-]*", long.lower()[at:])}
        long_keys = tuple(t.key for t in terms if t.kind != "cjk" and t.text.lower() in words)
        short_keys = tuple(t.key for t in terms if t.text.lower() == short.lower())
        if long_keys and short_keys:
            groups.append((long_keys, short_keys))
    return tuple(groups)


def glosses(text: str, terms: tuple[Term, ...]) -> tuple[tuple[tuple[str, ...], ...], ...]:
    """"双边交易（bilateral trade）" / "Kuaishou（快手）": the user's own translation; either side may match."""
    groups = list(acronym_glosses(text, terms))
    for m in _GLOSS.finditer(text):
        zh, en = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        zh_keys = tuple(t.key for t in terms if t.kind in ("cjk", "phrase") and t.key in zh and
                        (t.kind == "cjk" or t.key == zh))
        en_words = {w.lower() for w in re.findall(r"[A-Za-z0-9\-]+", en)}
        en_keys = tuple(t.key for t in terms if t.kind != "cjk" and t.text.lower() in en_words)
        if zh_keys and en_keys:
            groups.append((zh_keys, en_keys))
    return tuple(groups)


def _run(words) -> list[str]:
    out = []
    for w in words:
        if not w:
            continue
        if w.lower() in STOPWORDS or w.lower() in FRAME_WORDS or re.search(r"[\u3400-\u9fff]", w):
            break
        out.append(w)
    return out


def _same(t: Term, word: str) -> bool:
    return t.text == word or t.text.lower() == word.lower()


def _part(text: str, subject: tuple[Term, ...]) -> Part:
    terms = tuple(question_terms(text))
    borrowed = not any(t.required for t in terms) and bool(subject)
    if borrowed:
        terms = tuple(dict.fromkeys(subject + terms))
    return Part(text, aspect_of(text), is_list_question(text), terms, borrowed,
                alternatives(text, terms) + glosses(text, terms))


def analyse(question: str) -> Analysis:
    """Language, parts (with aspects) and terms of a question."""
    terms = tuple(question_terms(question))
    subject = tuple(t for t in terms if t.required)
    texts = split_parts(question)
    parts = tuple(_part(t, subject) for t in texts) if len(texts) > 1 else (
        Part(question, aspect_of(question), is_list_question(question), terms, False,
             alternatives(question, terms) + glosses(question, terms)),)
    return Analysis(question, language(question), parts, terms)
