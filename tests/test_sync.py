"""`digestqa sync` against real HTTP servers on 127.0.0.1 (started here), never the internet.

The daily-arXiv source is a copy of ../shared/corpora/daily_arxiv_ai_enhanced/data served as a folder (with a
directory listing, and without one: then days are probed); the feed is an arXiv-style RSS file made from real
records of that corpus.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
from email.utils import format_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from rag import api
from rag.config import Settings

REPO = Path(__file__).resolve().parents[1]
DAY = "2026-06-25"  # the smallest day of the corpus (26 records)
DAY_FILE = f"{DAY}_AI_enhanced_Chinese.jsonl"


class Site:
    """A folder served over HTTP on 127.0.0.1: optional listing, scripted failures, a request log."""

    def __init__(self, root: Path, listing: bool = True):
        self.root, self.listing = root, listing
        self.fail: dict[str, int] = {}  # path -> HTTP status
        self.requests: list[str] = []
        site = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                site.requests.append(self.path)
                if self.path in site.fail:
                    return self.send_error(site.fail[self.path])
                if self.path.endswith("/") and not site.listing:
                    return self.send_error(404)
                return super().do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def cli(args, index, timeout=600):
    env = {**os.environ, "DIGESTQA_INDEX": str(index), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def corpus_copy(tmp_path, shared_dir) -> Path:
    """A copy of the daily-arXiv data folder, as the publisher serves it."""
    dst = tmp_path / "site" / "data"
    shutil.copytree(shared_dir / "corpora" / "daily_arxiv_ai_enhanced" / "data", dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst


def test_sync_daily_folder_fetches_new_days_only_and_reports_watch_matches(tmp_path, corpus_copy):
    idx = tmp_path / "idx"
    first = records(corpus_copy / DAY_FILE)
    watch_phrase = first[0]["title"]
    assert cli(["watch", "add", watch_phrase], idx).returncode == 0
    with Site(corpus_copy.parent) as site:
        r = cli(["sync", site.url("data/"), "--since", "2026-06-01", "--quiet"], idx)
        assert r.returncode == 0, r.stderr + r.stdout
        assert f"fetched 1 file(s): {DAY_FILE}" in r.stdout, r.stdout
        assert f"papers: {len({x['id'] for x in first})} new" in r.stdout
        # the watch summary names the new paper that matches, with its sentence and why
        assert first[0]["id"] in r.stdout and "why:" in r.stdout, r.stdout
        kept = idx / "downloads"
        files = list(kept.rglob("*.jsonl"))
        assert [f.name for f in files] == [DAY_FILE]
        assert files[0].read_bytes() == (corpus_copy / DAY_FILE).read_bytes()
        ids = {p["arxiv_id"] for p in json.loads(cli(["papers", "--json"], idx).stdout)}
        assert ids == {x["id"] for x in first}

        # the publisher adds a day: `digestqa sync` (no argument) updates the remembered source, that day only
        new_day = "2026-06-26_AI_enhanced_Chinese.jsonl"
        shutil.copy(corpus_copy / "2026-02-10_AI_enhanced_Chinese.jsonl", corpus_copy / new_day)
        before = len(site.requests)
        r = cli(["sync", "--json", "--quiet"], idx)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["fetched"] == [new_day] and out["error"] is None
        fetched = [p for p in site.requests[before:] if p.endswith((".jsonl", ".md"))]
        assert fetched == [f"/data/{new_day}"], fetched  # nothing fetched twice, no .md twin
        added = {x["id"] for x in records(corpus_copy / new_day)}
        assert set(out["new_papers"]) == added - ids
        r = cli(["sync"], idx)
        assert r.returncode == 0 and "up to date" in r.stdout
        listed = cli(["sync", "--list"], idx).stdout
        assert site.url("data") in listed and "2 files" in listed


def test_sync_failure_names_the_url_and_changes_nothing(tmp_path, corpus_copy):
    n = len({x["id"] for x in records(corpus_copy / DAY_FILE)})
    s = Settings(index_dir=str(tmp_path / "idx"), answerer="extractive")
    with Site(corpus_copy.parent) as site:
        site.fail[f"/data/{DAY_FILE}"] = 500
        r = cli(["sync", site.url("data"), "--since", "2026-06-01"], s.index_dir)
        assert r.returncode == 1
        assert f"FAILED, nothing changed: {site.url('data/' + DAY_FILE)}: HTTP 500" in r.stdout, r.stdout
        assert api.stats(s)["papers"] == 0
        assert not list((tmp_path / "idx").rglob("*.jsonl")), "nothing may be kept from a failed sync"
        [src] = api.sync_sources(s)
        assert src.fetched == ()
        # the server recovers: the same command now fetches the day
        site.fail.clear()
        [rep] = api.sync(None, s)
        assert rep.ok and rep.fetched == (DAY_FILE,) and api.stats(s)["papers"] == n
    # the server is gone: a clear error naming the URL, the index as it was
    [rep] = api.sync(None, s)
    assert rep.error and site.url("data") in rep.error and "cannot fetch" in rep.error
    assert api.stats(s)["papers"] == n


def test_sync_probes_days_when_the_folder_has_no_listing(tmp_path, corpus_copy):
    from rag.sync import sync  # api.sync with a fixed "today"

    s = Settings(index_dir=str(tmp_path / "idx"), answerer="extractive")
    with Site(corpus_copy.parent, listing=False) as site:
        [rep] = sync(site.url("data"), s, since="2026-06-24", today=dt.date(2026, 6, 26))
        assert rep.error is None and rep.fetched == (DAY_FILE,)
        probed = [p for p in site.requests if p.startswith("/data/2026-")]
        assert probed[0] == "/data/2026-06-24_AI_enhanced_Chinese.jsonl"
        assert f"/data/{DAY_FILE}" in probed and "/data/2026-06-25.md" not in probed  # JSON Lines first
        assert api.stats(s)["papers"] == len(records(corpus_copy / DAY_FILE))
        # the next sync resumes after the last day fetched
        before = len(site.requests)
        [rep] = sync(None, s, today=dt.date(2026, 6, 26))
        assert rep.fetched == () and all("2026-06-26" in p for p in site.requests[before:] if "/data/2026" in p)


def _rss(recs: list[dict], day: str, replace_one: bool = True) -> str:
    when = format_datetime(dt.datetime.fromisoformat(f"{day}T00:00:00-05:00"))
    items = []
    for i, r in enumerate(recs):
        kind = "replace" if replace_one and i == 0 else "new"
        items.append(f"""    <item>
      <title>{escape(r['title'])}</title>
      <link>https://arxiv.org/abs/{r['id']}</link>
      <description>arXiv:{r['id']}v1 Announce Type: {kind}
Abstract: {escape(r['summary'])}</description>
      <guid isPermaLink="false">oai:arXiv.org:{r['id']}v1</guid>
      {''.join(f'<category>{escape(c)}</category>' for c in r['categories'])}
      <pubDate>{when}</pubDate>
      <arxiv:announce_type>{kind}</arxiv:announce_type>
      <dc:creator>{escape(', '.join(r['authors']))}</dc:creator>
    </item>""")
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">
  <channel>
    <title>cs.CV updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs.CV</link>
    <description>cs.CV updates on the arXiv.org e-print archive.</description>
    <pubDate>{when}</pubDate>
{chr(10).join(items)}
  </channel>
</rss>
"""


def test_sync_rss_feed_of_arxiv_listings(tmp_path, corpus_copy):
    recs = records(corpus_copy / DAY_FILE)
    feed_dir = tmp_path / "feed"
    feed_dir.mkdir()
    (feed_dir / "cs.CV.xml").write_text(_rss(recs[:6], DAY), encoding="utf-8")
    idx = tmp_path / "idx"
    s = Settings(index_dir=str(idx), answerer="extractive")
    with Site(feed_dir) as site:
        r = cli(["sync", site.url("cs.CV.xml"), "--since", "2026-06-01", "--json", "--quiet"], idx)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["kind"] == "feed" and out["fetched"] == [f"{DAY}.jsonl"]
        papers = {p.arxiv_id: p for p in api.papers(s)}
        assert set(papers) == {x["id"] for x in recs[1:6]}, "the 'replace' announcement is not a new paper"
        for x in recs[1:6]:
            p = papers[x["id"]]
            assert p.title == " ".join(x["title"].split()) and p.date == DAY
            assert list(p.authors) == x["authors"] and p.categories[0] == x["categories"][0]
            assert p.abstract and p.abstract[:40] == " ".join(x["summary"].split())[:40]
        # the feed moves on during the day: only the new entries are added
        (feed_dir / "cs.CV.xml").write_text(_rss(recs[:9], DAY), encoding="utf-8")
        [rep] = api.sync(None, s)
        assert rep.error is None and set(rep.new_papers) == {x["id"] for x in recs[6:9]}
        [rep] = api.sync(None, s)
        assert rep.fetched == () and rep.error is None
        # something that is not a feed at a remembered feed URL: named, nothing changed
        (feed_dir / "cs.CV.xml").write_text("<html>maintenance</html>", encoding="utf-8")
        [rep] = api.sync(None, s)
        assert rep.error and "cs.CV.xml" in rep.error and len(api.papers(s)) == 8


def test_atom_feed_entries_become_records():
    from rag.sync import feed_records

    atom = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title>arXiv Query results</title>
  <updated>2025-12-03T00:00:00-05:00</updated>
  <entry>
    <id>http://arxiv.org/abs/2512.02474v2</id>
    <updated>2025-12-03T10:00:00Z</updated>
    <published>2025-12-02T18:59:59Z</published>
    <title>Q-BERT4Rec: Quantized Semantic-ID Representation
      Learning for Multimodal Recommendation</title>
    <summary>  We propose Q-Bert4Rec ...  </summary>
    <author><name>Haofeng Huang</name></author>
    <author><name>Ling Gai</name></author>
    <arxiv:comment>9 pages</arxiv:comment>
    <arxiv:primary_category term="cs.IR"/>
    <category term="cs.AI"/><category term="cs.IR"/>
  </entry>
</feed>"""
    got = feed_records(atom, "http://127.0.0.1/feed")
    [[rec]] = got.values()
    assert list(got) == ["2025-12-02"]
    assert rec["id"] == "2512.02474" and rec["authors"] == ["Haofeng Huang", "Ling Gai"]
    assert rec["title"].startswith("Q-BERT4Rec: Quantized Semantic-ID Representation Learning")
    assert rec["categories"] == ["cs.IR", "cs.AI"] and rec["comment"] == "9 pages"
