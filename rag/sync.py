"""``digestqa sync``: pull digests from where they are published, keep them under the index's data dir, ingest.

Two kinds of source, told apart by what the URL serves:

- a **daily-arXiv folder**: a base URL of dated files, ``YYYY-MM-DD*.jsonl`` / ``.md`` (as the
  daily-arXiv-ai-enhanced ``data`` branch publishes them). When the base URL answers with a listing (an HTML
  index, a JSON array of names, plain text) the dated names are read from it; when it has none (raw file
  hosts answer 404), each day from the start date on is probed with the usual names
  (``<day>_AI_enhanced_Chinese.jsonl``, ``<day>.jsonl``, ``<day>.md``). One file per day is fetched, JSON
  Lines before Markdown (the same papers, with more fields).
- an **RSS/Atom feed** of arXiv listings (parsed with ``feedparser``): entries become daily-arXiv JSON Lines
  records, one file per announcement day.

Sources are remembered in ``<index>/workflows/sources.json`` with the files already fetched, so ``digestqa
sync`` updates every source and fetches only days not yet ingested; ``since`` bounds the first sync (default:
the last :data:`FIRST_DAYS` days). Files are kept under ``<index>/downloads/<source>/`` (rag.store).

Failure: everything of a source is downloaded before anything is written; a download that fails (HTTP
error, refused connection, timeout, oversized or unreadable feed) names its URL and leaves the index, the
files and the remembered state as they were. A fetched file that does not parse is reported like any bad
ingest file (with its URL) and the other days go on.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, replace
from typing import Callable

from .config import Settings
from .types import IngestReport

STATE = "sources"
FIRST_DAYS = 7
TIMEOUT = 30.0
USER_AGENT = "digestqa-sync/0.1 (+offline-first paper QA)"
PROBE_NAMES = ("{day}_AI_enhanced_Chinese.jsonl", "{day}.jsonl", "{day}.md")
_DATED = re.compile(r"(?<![\w-])(\d{4}-\d{2}-\d{2})[\w.\-]*?\.(jsonl|md)(?![\w.])")
_ARXIV_IN = re.compile(r"(?:abs/|arxiv:|arXiv\.org:)(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?", re.I)
_TAG = re.compile(r"<[^>]+>")
Progress = Callable[[int, int, str], None]


class SyncError(RuntimeError):
    """A source could not be fetched; the message names the URL. Nothing was changed."""


@dataclass(frozen=True)
class Source:
    """A remembered sync source."""

    url: str
    kind: str  # "daily" | "feed"
    name: str  # folder under <index>/downloads/
    added: str = ""
    since: str | None = None
    fetched: tuple[str, ...] = ()  # file names fetched and ingested
    last_sync: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["fetched"] = list(self.fetched)
        return d


@dataclass(frozen=True)
class SyncReport:
    url: str
    kind: str
    fetched: tuple[str, ...] = ()  # new files this run (names)
    urls: tuple[str, ...] = ()  # where they came from
    ingest: IngestReport | None = None
    new_papers: tuple[str, ...] = ()  # paper ids the index did not have before
    error: str | None = None  # the source failed: nothing changed

    @property
    def ok(self) -> bool:
        return self.error is None and (self.ingest is None or self.ingest.ok)


@dataclass
class _Fetched:
    name: str
    url: str
    data: bytes
    day: str | None = None


# ---------------------------------------------------------------- remembered sources

def load_sources(settings: Settings) -> list[Source]:
    from .store import read_state

    return [Source(**{**r, "fetched": tuple(r.get("fetched", ()))}) for r in read_state(settings, STATE, [])]


def _save(settings: Settings, src: Source) -> None:
    from .store import state_lock, write_state

    with state_lock(settings, STATE):
        rows = [s for s in load_sources(settings) if s.url != src.url]
        write_state(settings, STATE, [s.to_json() for s in rows + [src]])


def forget(url: str, settings: Settings) -> bool:
    """Stop syncing a source (its downloaded files and indexed papers stay)."""
    from .store import state_lock, write_state

    with state_lock(settings, STATE):
        rows = load_sources(settings)
        keep = [s for s in rows if s.url != url.rstrip("/")]
        if len(keep) != len(rows):
            write_state(settings, STATE, [s.to_json() for s in keep])
    return len(keep) != len(rows)


def _source_name(url: str) -> str:
    u = urllib.parse.urlparse(url)
    tail = re.sub(r"[^A-Za-z0-9]+", "-", f"{u.hostname or 'local'}-{u.path}").strip("-")[:60]
    return f"{tail}-{hashlib.sha1(url.encode()).hexdigest()[:8]}"


# ---------------------------------------------------------------- HTTP

def _check_url(url: str) -> str:
    u = urllib.parse.urlparse(url)
    if u.scheme not in ("http", "https", "file") or (u.scheme != "file" and not u.hostname):
        raise ValueError(f"{url!r} is not an http(s) URL; pass e.g. http://host/path/data")
    return url


def fetch(url: str, settings: Settings, missing_ok: bool = False) -> bytes | None:
    """The body of ``url`` (None for a 404 when ``missing_ok``); any other failure is a :class:`SyncError`
    naming the URL."""
    limit = int(settings.max_file_mb * 2**20)
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            data = r.read(limit + 1)
    except urllib.error.HTTPError as e:
        if e.code in (404, 410) and missing_ok:
            return None
        raise SyncError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        why = getattr(e, "reason", None) or e
        raise SyncError(f"{url}: cannot fetch ({why}); check the URL and the network, then sync again") from None
    if len(data) > limit:
        raise SyncError(f"{url}: larger than {settings.max_file_mb:g} MB (max_file_mb); not fetched")
    return data


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + urllib.parse.quote(name)


# ---------------------------------------------------------------- kind detection

def _looks_like_feed(data: bytes) -> bool:
    head = data[:2048].lstrip().lower()
    return head.startswith(b"<?xml") and (b"<rss" in head or b"<feed" in head or b"<rdf" in head) \
        or head.startswith((b"<rss", b"<feed", b"<rdf:rdf"))


def detect(url: str, settings: Settings) -> tuple[str, bytes | None]:
    """("feed" | "daily", the body of ``url`` or None when it has none (404: a folder without listing))."""
    data = fetch(url, settings, missing_ok=True)
    if data is not None and _looks_like_feed(data):
        return "feed", data
    return "daily", data


# ---------------------------------------------------------------- daily-arXiv folders

def listed_days(body: bytes) -> dict[str, list[str]]:
    """{day: [file names]} of the dated .jsonl/.md names a listing mentions (HTML, JSON or text)."""
    text = body.decode("utf-8", "replace")
    out: dict[str, list[str]] = {}
    for m in _DATED.finditer(urllib.parse.unquote(text)):
        name = m.group(0)
        if _valid_day(m.group(1)) and name not in out.get(m.group(1), []):
            out.setdefault(m.group(1), []).append(name)
    return out


def _valid_day(day: str) -> bool:
    try:
        dt.date.fromisoformat(day)
        return True
    except ValueError:
        return False


def _pick(names: list[str]) -> str:
    """One file per day: JSON Lines first (more fields), the Chinese-enhanced one first among them."""
    return sorted(names, key=lambda n: (not n.endswith(".jsonl"), "Chinese" not in n, len(n), n))[0]


def _daily_plan(src: Source, listing: bytes | None, start: str, today: dt.date, settings: Settings,
                resume: bool = True) -> list[_Fetched]:
    """Download the days from ``start`` on that were not fetched before (nothing written yet)."""
    done = {_day_of(n) for n in src.fetched}
    if listing is not None and (days := listed_days(listing)):
        todo = [(d, _pick(ns)) for d, ns in sorted(days.items()) if d >= start and d not in done]
        return [_Fetched(name, _join(src.url, name), fetch(_join(src.url, name), settings), day)
                for day, name in todo]
    out = []
    day = dt.date.fromisoformat(max(start, _after_last(src) or start) if resume else start)
    while day <= today:
        iso = day.isoformat()
        if iso not in done:
            for pattern in PROBE_NAMES:
                name = pattern.format(day=iso)
                data = fetch(_join(src.url, name), settings, missing_ok=True)
                if data is not None:
                    out.append(_Fetched(name, _join(src.url, name), data, iso))
                    break
        day += dt.timedelta(days=1)
    return out


def _day_of(name: str) -> str | None:
    m = re.match(r"(\d{4}-\d{2}-\d{2})", name)
    return m.group(1) if m else None


# ---------------------------------------------------------------- feeds

def feed_records(data: bytes, url: str) -> dict[str, list[dict]]:
    """{day: [daily-arXiv JSON records]} of an RSS/Atom feed's entries (arXiv 'replace' announcements are
    left out: they are not new papers). Raises :class:`SyncError` for a body that is no feed."""
    import feedparser

    parsed = feedparser.parse(data)
    if not parsed.entries and (parsed.bozo or not parsed.get("feed")):
        raise SyncError(f"{url}: not an RSS/Atom feed ({parsed.get('bozo_exception') or 'no entries'})")
    fallback = _entry_day(parsed.get("feed", {})) or dt.date.today().isoformat()
    out: dict[str, list[dict]] = {}
    for e in parsed.entries:
        rec = _record(e)
        if rec is not None:
            out.setdefault(_entry_day(e) or fallback, []).append(rec)
    return out


def _entry_day(e) -> str | None:
    for key in ("published_parsed", "updated_parsed"):
        t = e.get(key)
        if t:
            return dt.date(t.tm_year, t.tm_mon, t.tm_mday).isoformat()
    return None


def _record(e) -> dict | None:
    """One feed entry as a daily-arXiv record (id, title, authors, summary, categories, comment)."""
    summary = _TAG.sub(" ", e.get("summary", "") or "")
    announce = re.search(r"Announce Type:\s*([\w-]+)", summary)
    if announce and announce.group(1).lower().startswith("replace"):
        return None
    summary = re.sub(r"^\s*arXiv:\S+\s+Announce Type:\s*[\w-]+\s*(Abstract:\s*)?", "", summary).strip()
    ids = [e.get("id", ""), e.get("link", "")] + [lk.get("href", "") for lk in e.get("links", [])]
    aid = next((m.group(1) for x in ids if (m := _ARXIV_IN.search(x or ""))), None)
    title = " ".join((e.get("title") or "").split())
    if not title:
        return None
    rec = {"id": aid or "", "title": title, "authors": _authors(e), "summary": " ".join(summary.split()),
           "categories": _categories(e)}
    if e.get("arxiv_comment"):
        rec["comment"] = " ".join(e["arxiv_comment"].split())
    if not aid and e.get("link"):
        rec["link"] = e["link"]
    return rec


def _authors(e) -> list[str]:
    names = [a.get("name", "") for a in e.get("authors", [])] or [e.get("author", "")]
    out: list[str] = []
    for n in names:  # arXiv's RSS puts every author into one comma-separated dc:creator
        out += [x.strip() for x in re.split(r",\s*|\s+and\s+", n or "") if x.strip()]
    return out


def _categories(e) -> list[str]:
    cats = [t.get("term", "") for t in e.get("tags", [])]
    prim = (e.get("arxiv_primary_category") or {}).get("term")
    return list(dict.fromkeys(c for c in [prim, *cats] if c))


def _feed_plan(src: Source, body: bytes, start: str, settings: Settings) -> list[_Fetched]:
    """One JSON Lines file per announcement day with the entries not stored yet (an existing day file grows)."""
    from .store import downloads_dir

    out = []
    for day, recs in sorted(feed_records(body, src.url).items()):
        if day < start:
            continue
        name = f"{day}.jsonl"
        path = downloads_dir(settings, src.name) / name
        old = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()] \
            if path.exists() else []
        have = {(r.get("id") or r.get("title")) for r in old}
        new = [r for r in recs if (r.get("id") or r.get("title")) not in have]
        if new:
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in old + new).encode("utf-8")
            out.append(_Fetched(name, src.url, data, day))
    return out


# ---------------------------------------------------------------- sync

def add_source(url: str, settings: Settings, since: str | None = None, today: dt.date | None = None) -> Source:
    """Remember a source (its kind read from what the URL serves) with the first day to fetch (``since``, else
    the last :data:`FIRST_DAYS` days); an existing one is returned as it is."""
    url = _check_url(url.strip()).rstrip("/")
    for s in load_sources(settings):
        if s.url == url:
            return s
    kind, _ = detect(url, settings)
    start = since or ((today or dt.date.today()) - dt.timedelta(days=FIRST_DAYS - 1)).isoformat()
    src = Source(url, kind, _source_name(url), dt.date.today().isoformat(), start)
    _save(settings, src)
    return src


def sync(url: str | None, settings: Settings, since: str | None = None, today: dt.date | None = None,
         progress: Progress | None = None) -> list[SyncReport]:
    """Sync one source (remembered first when new) or, with ``url`` None, every remembered source."""
    if since:
        dt.date.fromisoformat(since)  # ValueError with the bad value
    if url is None:
        sources = load_sources(settings)
        if not sources:
            raise ValueError("no sync source yet: digestqa sync URL (a daily-arXiv data folder or an RSS/Atom feed)")
    else:
        try:
            sources = [add_source(url, settings, since, today)]
        except SyncError as e:
            return [SyncReport(url, "?", error=str(e))]
    return [sync_source(s, settings, since, today or dt.date.today(), progress) for s in sources]


def sync_source(src: Source, settings: Settings, since: str | None, today: dt.date,
                progress: Progress | None = None) -> SyncReport:
    """Fetch what is new from one source, then write and ingest it (see the module doc for failures). Days
    from ``since`` (else the source's first day) on that were not fetched yet; a folder without a listing is
    probed from the day after the last one fetched."""
    start = since or src.since or (today - dt.timedelta(days=FIRST_DAYS - 1)).isoformat()
    try:
        if src.kind == "feed":
            got = _feed_plan(src, fetch(src.url, settings), start, settings)
        else:
            listing = fetch(src.url, settings, missing_ok=True)
            got = _daily_plan(src, listing, start, today, settings, resume=since is None)
    except SyncError as e:
        return SyncReport(src.url, src.kind, error=str(e))
    if not got:
        _save(settings, replace(src, last_sync=dt.datetime.now().isoformat(timespec="seconds")))
        return SyncReport(src.url, src.kind)
    return _ingest(src, got, settings, progress)


def _after_last(src: Source) -> str | None:
    """The day after the newest day fetched (where probing a folder without listing resumes)."""
    days = sorted(d for d in map(_day_of, src.fetched) if d)
    return (dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)).isoformat() if days else None


def _ingest(src: Source, got: list[_Fetched], settings: Settings, progress: Progress | None) -> SyncReport:
    from . import api
    from .store import paper_ids, remove_download, save_download

    before = paper_ids(settings)
    paths = {str(save_download(settings, src.name, f.name, f.data).resolve()): f for f in got}
    report = api.ingest(list(paths), settings, progress)
    failures = []
    for fe in report.failures:
        f = paths.get(fe.file)
        failures.append(replace(fe, message=f"{fe.message} (fetched from {f.url})") if f else fe)
    committed = set(api.stats(settings).get("source_files", ()))
    for path in set(paths) - committed:  # nothing of it was indexed: not kept, fetched again next time
        remove_download(path)
    ok = [f for p, f in paths.items() if p in committed]
    fetched = tuple(dict.fromkeys([*src.fetched, *(f.name for f in ok)]))
    _save(settings, replace(src, fetched=fetched, last_sync=dt.datetime.now().isoformat(timespec="seconds")))
    new = tuple(sorted(paper_ids(settings) - before))
    return SyncReport(src.url, src.kind, tuple(f.name for f in got), tuple(f.url for f in got),
                      replace(report, failures=tuple(failures)), new)
