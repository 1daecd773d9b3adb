"""Render a :class:`~rag.qa.compose.Plan` as answer text in the question's language, one line per source.

Every line quotes its evidence and cites it as ``[n]``; a part the sources do not answer gets a line saying
so (no citation); when no part is answered the text is the ``CANNOT_ANSWER`` sentinel, a newline and why.
English evidence under a Chinese question is quoted as a short excerpt after a Chinese lead-in naming what
it is about (the offline answerer does not translate).
"""
from __future__ import annotations

import re

from ..text import display, norm
from ..types import CANNOT_ANSWER
from .compose import Line, PartAnswer, Plan
from .evidence import Scored, Source
from .terms import cjk_phrases

MAX_CHARS = 420
_FRAME = {
    "en": {"list": "Papers in the retrieved digests that match:", "best": "According to the retrieved digests:",
           "contrast": "contrasts itself with {terms} rather than using it", "noid": "no arXiv ID",
           "missing": "The retrieved digests do not mention: {terms}.",
           "aspect": "The retrieved digests do not give the {aspect} of {paper}.",
           "part": "Not in the retrieved digests: {terms}.",
           "coauthored": "The digests hold no other paper by the authors of {paper}.",
           "none": "No sources were retrieved (is the index empty, or are the filters too narrow?)."},
    "zh": {"list": "检索到的论文中符合条件的有：", "best": "根据检索到的摘要：",
           "contrast": "并未使用 {terms}，而是与之对比", "noid": "无 arXiv ID",
           "missing": "检索到的摘要中没有提到：{terms}。", "aspect": "检索到的摘要中没有给出 {paper} 的{aspect}。",
           "part": "检索到的摘要中没有：{terms}。", "coauthored": "日报中没有 {paper} 作者的其他论文。",
           "none": "没有检索到任何来源（索引为空，或筛选条件过窄？）。"},
}
_ASPECT_LABEL = {
    "en": {"authors": "authors", "affiliation": "affiliations", "venue": "venue", "doi": "DOI", "license": "license",
           "score": "score", "code": "code link", "listed": "digest date", "submitted": "submission date",
           "date": "date", "category": "categories", "arxiv_id": "arXiv ID", "expansion": "full name", "pages": "length"},
    "zh": {"authors": "作者", "affiliation": "作者单位", "venue": "发表会议或期刊", "doi": "DOI", "license": "许可协议",
           "score": "评分", "code": "代码链接", "listed": "收录日期", "submitted": "提交日期", "date": "日期",
           "category": "分类", "arxiv_id": "arXiv 编号", "expansion": "全称", "pages": "篇幅"},
}
_ZH_FIELD = {"Authors": "作者", "Affiliations": "作者单位", "Comment": "备注（会议/期刊）", "Journal ref": "期刊", "Submitted": "提交日期",
             "Digest dates": "收录日期", "Digest date": "收录日期", "Date": "日期", "Code": "代码",
             "Categories": "分类", "License": "许可协议", "Score": "评分", "arXiv ID": "arXiv 编号", "DOI": "DOI"}


def render(p: Plan) -> list[str]:
    """Answer text as lines (each one streamed as a delta)."""
    f = _FRAME[p.lang]
    if p.no_sources:
        return [CANNOT_ANSWER + "\n", f["none"]]
    if not p.answered:
        return [CANNOT_ANSWER + "\n", " ".join(dict.fromkeys(_reason(pa, p.lang) for pa in p.parts))]
    listing = any(pa.part.listing and pa.lines for pa in p.parts)
    out = [f["list"] if listing else f["best"]]
    lines = _merge_lines(p.parts)
    names = [_name_key(src.hit.title) for src, _, _ in lines]
    for (src, scored, contrast), name in zip(lines, names):
        # papers sharing a name ("MOON" / "MOON Embedding", two "GRACE"s) are told apart by their full titles
        label = _full_title(src.hit.title) if name and names.count(name) > 1 else short_title(src.hit.title)
        out.append("\n" + _line(src, scored, contrast, p, label))
    out += ["\n- " + _reason(pa, p.lang, part=True) for pa in p.parts if not pa.lines]
    return out


def _merge_lines(parts: list[PartAnswer]) -> list[tuple[Source, list[Scored], list[str]]]:
    """One line per source across parts, its units in text order without repeats."""
    merged: dict[int, tuple[Source, list[Scored], list[str]]] = {}
    for pa in parts:
        for ln in pa.lines:
            src, units, contrast = merged.setdefault(ln.source.index, (ln.source, [], []))
            units += [u for u in ln.units if all(u.pos != v.pos for v in units)]
            contrast += [c for c in ln.contrast if c not in contrast]
    return list(merged.values())


def _reason(pa: PartAnswer, lang: str, part: bool = False) -> str:
    f = _FRAME[lang]
    if pa.aspect_missing == "coauthored":
        return f["coauthored"].format(paper=pa.missing[0])
    if pa.aspect_missing:
        return f["aspect"].format(aspect=_ASPECT_LABEL[lang][pa.aspect_missing], paper=pa.missing[0])
    sep = "、" if lang == "zh" else ", "
    terms = sep.join(pa.missing) or pa.part.text.strip()
    return f["part" if part else "missing"].format(terms=terms)


def short_title(title: str, limit: int = 120) -> str:
    """Name part of a title (before the colon) or the title cut to ``limit`` characters."""
    title = display(title)
    head = title.split(":")[0].strip()
    if ":" in title and 2 <= len(head) <= 60:
        return head
    return title if len(title) <= limit else title[:limit - 1].rsplit(" ", 1)[0] + "…"


def _name_key(title: str) -> str:
    """The first word of a title's name part ("moon" of "MOON Embedding: ..."), '' for a title without one."""
    head, colon, _ = display(title).partition(":")
    words = re.findall(r"[\w\-³]+", head.lower())
    return words[0] if colon and words and len(head) <= 40 else ""


def _full_title(title: str, limit: int = 160) -> str:
    title = display(title)
    return title if len(title) <= limit else title[:limit - 1].rsplit(" ", 1)[0] + "…"


def _line(src: Source, units: list[Scored], contrast: list[str], p: Plan, label: str) -> str:
    f = _FRAME[p.lang]
    n = src.index + 1
    ident = src.hit.arxiv_id or f["noid"]
    name = f"{label} ({ident})" if p.lang == "en" else f"{label}（{ident}）"
    colon = ": " if p.lang == "en" else "："
    units = sorted(units, key=lambda u: u.pos)
    if contrast:
        body = " ".join(_clip(u, src) for u in units)
        q = f"“{body}”" if p.lang == "zh" else f'"{body}"'
        dash = " — " if p.lang == "en" else "——"
        return f"- {name}{colon}{f['contrast'].format(terms=', '.join(contrast))}{dash}{q} [{n}]"
    lead = ""
    if p.lang == "zh" and any(u.unit.lang == "en" or u.unit.kind == "title" for u in units):
        topics = "、".join(cjk_phrases(p.analysis.question)[:3])
        lead = f"以下为英文摘要中与“{topics}”相关的原文。" if topics else "以下为英文原文摘录。"
    return f"- {name}{colon}{lead}" + " ".join(_unit_text(u, src, p) + f" [{n}]" for u in units)


def _unit_text(u: Scored, src: Source, p: Plan) -> str:
    if p.lang == "en" or u.unit.lang == "zh":
        return _clip(u, src)
    if u.unit.kind == "meta":
        return _zh_meta(u.unit.field, u.unit.text)
    body = _clip(u, src) if len(u.unit.text.split()) <= 28 else _excerpt(u, src, pad=10)
    return f"“{body}”"


def _zh_meta(key: str, text: str) -> str:
    value = text.split(": ", 1)[1] if ": " in text else text
    if key == "Authors":
        names = [a.strip() for a in re.split(r";\s*" if ";" in value else r",\s*", value) if a.strip()]
        return f"该论文共有 {len(names)} 位作者，依次为：{'、'.join(names)}"
    if key == "Affiliations":
        return f"作者来自以下机构：{'、'.join(v.strip() for v in value.split(';'))}"
    if key == "Categories":
        cats = [c.strip() for c in value.split(",") if c.strip()]
        return f"该论文的 arXiv 分类为 {'、'.join(cats)}，其中主分类是 {cats[0]}" if cats else value
    return f"该论文的{_ZH_FIELD.get(key, key)}为：{value}"


def _excerpt(u: Scored, src: Source, pad: int = 6) -> str:
    """Words of the sentence from ``pad`` before the first to ``pad`` after the last matched term."""
    text = u.unit.text
    words = list(re.finditer(r"\S+", text))
    keys = [k for k in src.matches.get(u.pos, {}) if k.isascii()]
    if not keys or len(words) <= 2 * pad + 4:
        return text if len(words) <= 2 * pad + 4 else text[:words[2 * pad + 2].start()].rstrip() + "…"
    idx = [i for i, w in enumerate(words) if any(k in w.group(0).lower() for k in keys)] or [0]
    lo, hi = max(0, min(idx) - pad), min(len(words), max(idx) + pad + 1)
    piece = text[words[lo].start():words[hi - 1].end()]
    return ("…" if lo > 0 else "") + piece + ("…" if hi < len(words) else "")


def _cut(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters at a word boundary."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip() + "…"


def _clip(u: Scored, src: Source, limit: int = 300) -> str:
    """A long sentence cut to its clauses (split at ; ；) that hold the question's terms."""
    text = u.unit.text
    if len(text) <= limit:
        return text
    clauses = [c.strip() for c in re.split(r"(?<=[;；])\s*", text) if c.strip()]
    keys = list(src.matches.get(u.pos, {}))
    keep = [i for i, c in enumerate(clauses) if any(k in norm(c) for k in keys)]
    if len(clauses) < 2 or not keep:
        return _cut(text)
    body = " … ".join(clauses[i].rstrip(";；") for i in keep)
    return _cut(("… " if keep[0] > 0 else "") + body + (" …" if keep[-1] < len(clauses) - 1 else ""))
