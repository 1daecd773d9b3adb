"""Incremental merge: what adding (or removing) digest files changes in the merged catalogue.

merge_papers merges records by paper_id, then links ID-less papers into ID'd ones by title or summary
(rag.merge). A paper's merged record depends only on the records of its own paper_id group and of the
ID-less groups linked into it; an ID-less group's link depends only on the ID'd groups sharing its title
key or holding one of its summary clauses (and on ID-less groups with the same title key). The catalogue
keeps a link index of every group (store tables ``link_groups``: ID'd or not, title key, linked into;
``link_clauses``: 64-bit hashes of the clauses linking compares), so a change finds the groups it can
affect without reading the other papers:

1. touched groups: the paper ids of the new records and of the replaced files' old records;
2. ID-less groups whose link may change: touched ones, those sharing a title key or a clause with a
   touched ID'd group (before or after), those linked into one, and their same-title peers;
3. their links are recomputed by rag.merge.find_links over them plus every ID'd group sharing a title
   key or clause with them (the index only finds candidates; find_links decides on the real texts);
4. the merged records of touched groups and of the old and new link targets are rebuilt from their
   records (merge_one).

The result equals merging every record at once (tests/test_delta.py compares both record by record).
A change touching more than a quarter of the catalogue (a first ingest) merges everything instead.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .types import Paper

_FULL_SHARE = 0.25  # touched groups above this share of the catalogue: merge everything (cheaper)


@dataclass
class Delta:
    """What a change does to the catalogue: merged records to write and to drop, link index rows."""
    papers: list[Paper]  # merged records recomputed (each one written if it differs)
    hashes: dict[str, str]  # paper_hash of each of them
    old_hashes: dict[str, str]  # catalogue hash before, of papers and removed ones that had a row
    removed: list[str]  # merged records that no longer exist
    groups: list[tuple] = field(default_factory=list)  # link_groups rows (paper_id, ided, title_key, link)
    groups_gone: list[str] = field(default_factory=list)
    links: dict[str, str | None] = field(default_factory=dict)  # other groups' new link
    clauses: dict[str, tuple[int, set[int]]] = field(default_factory=dict)  # paper_id -> (ided, hashes)
    full: bool = False  # the link index is replaced as a whole
    touched: set[str] = field(default_factory=set)  # paper_id groups with records added or removed


def clause_hash(clause: str) -> int:
    return int.from_bytes(hashlib.blake2b(clause.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def plan(store, replaced: set[str], new_records: dict[str, list[Paper]]) -> Delta:
    """The Delta of replacing the records of the files ``replaced`` by ``new_records`` (file -> records;
    a removed file has none)."""
    new = [p for recs in new_records.values() for p in recs]
    touched = store.record_paper_ids(replaced) | {p.paper_id for p in new}
    n_papers = store.db.execute("SELECT COUNT(*) FROM link_groups").fetchone()[0]
    if not store.link_index_ready() or len(touched) > _FULL_SHARE * n_papers:
        return full_plan(store, replaced, new, touched)
    return _Planner(store, replaced, new, touched).run()


def full_plan(store, replaced: set[str], new: list[Paper], touched: set[str]) -> Delta:
    """Merge every record (a first ingest, a big change, or a catalogue without a link index)."""
    from .merge import find_links, group_records, link_keys, merge_groups, merge_one, paper_hash

    records = [p for file, recs in store.records_by_file().items() if file not in replaced for p in recs] + new
    groups = group_records(records)
    pre = merge_groups(groups)
    links = find_links(list(pre.values()))
    members: dict[str, list[str]] = {}
    for src in sorted(links):
        members.setdefault(links[src], []).append(src)
    merged = {pid: pre[pid] if pid not in members else
              merge_one(pid, [r for g in (pid, *members[pid]) for r in groups[g]])
              for pid in pre if pid not in links}
    keys = {pid: link_keys(p) for pid, p in pre.items()}
    hashes = {pid: paper_hash(p) for pid, p in merged.items()}
    old = store.paper_hashes()
    return Delta(papers=[merged[pid] for pid in sorted(merged)], hashes=hashes,
                 old_hashes=old,
                 removed=sorted(set(old) - set(merged)),
                 groups=[(pid, int(k[0]), k[1], links.get(pid)) for pid, k in keys.items()],
                 clauses={pid: (int(k[0]), {clause_hash(c) for c in k[2]}) for pid, k in keys.items() if k[2]},
                 full=True, touched=touched)


class _Planner:
    def __init__(self, store, replaced: set[str], new: list[Paper], touched: set[str]):
        self.store, self.replaced, self.new, self.touched = store, replaced, new, touched
        self.records: dict[str, list[Paper]] = {}  # paper_id group -> records (after the change)
        self.pre: dict[str, Paper] = {}  # paper_id group -> merged record before linking (after the change)
        self.keys: dict[str, tuple[bool, str | None, set[int] | None]] = {}  # after the change
        self.new_by_pid: dict[str, list[Paper]] = {}
        for p in new:
            self.new_by_pid.setdefault(p.paper_id, []).append(p)

    # ---- the groups' state after the change
    def _load(self, pids) -> None:
        from .merge import group_records, merge_groups

        want = [pid for pid in pids if pid not in self.records]
        if not want:
            return
        stored = self.store.records_of([p for p in want if p not in self.touched], self.replaced)
        got: dict[str, list[Paper]] = {pid: stored.get(pid, []) for pid in want}
        if any(pid in self.touched for pid in want):
            old = self.store.records_of([p for p in want if p in self.touched], self.replaced)
            for pid in want:
                if pid in self.touched:
                    got[pid] = old.get(pid, []) + self.new_by_pid.get(pid, [])
        groups = group_records(r for recs in got.values() for r in recs)
        self.records.update({pid: groups.get(pid, []) for pid in want})
        self.pre.update(merge_groups({pid: groups[pid] for pid in want if groups.get(pid)}))

    def _keys_after(self, pids) -> dict[str, tuple[bool, str | None, set[int]]]:
        """(ided, title key, clause hashes) after the change: computed for loaded groups, else stored."""
        from .merge import link_keys

        out = {}
        rest = [pid for pid in pids if pid not in self.pre]
        rows, cls = self.store.link_rows(rest), self.store.link_clauses_of(rest)
        for pid in pids:
            if pid in self.pre:
                if pid not in self.keys:
                    ided, key, clauses = link_keys(self.pre[pid])
                    self.keys[pid] = (ided, key, {clause_hash(c) for c in clauses})
                out[pid] = self.keys[pid]
            elif pid in rows:
                out[pid] = (rows[pid][0], rows[pid][1], cls.get(pid, set()))
        return out

    def run(self) -> Delta:
        from .merge import _record_key, find_links

        st, touched = self.store, self.touched
        self._load(touched)
        before = st.link_rows(touched)
        before_clauses = st.link_clauses_of(touched)
        after = self._keys_after([pid for pid in touched if pid in self.pre])
        ided_t = {pid for pid in touched if (pid in after and after[pid][0]) or (pid in before and before[pid][0])}
        keys = {k for pid in ided_t for k in (before.get(pid, (0, None))[1], after.get(pid, (0, None))[1]) if k}
        clauses = set().union(*(before_clauses.get(pid, set()) | (after[pid][2] if pid in after else set())
                                for pid in ided_t))
        # 2. ID-less groups whose link may change
        relink = {pid for pid in touched if pid in after and not after[pid][0]}
        relink |= {pid for pid, r in st.link_rows_with_keys(keys).items() if not r[0]}
        relink |= st.clause_owners(clauses, ided=False)
        relink |= set(st.linked_into(ided_t))
        peer_keys = {before[pid][1] for pid in touched if pid in before and not before[pid][0] and before[pid][1]}
        relink = self._with_peers(relink, peer_keys)
        relink = {pid for pid in relink if pid not in touched or pid in self.pre}
        # 3. their links, over them and every ID'd group that may link them
        mine = self._keys_after(relink)
        relink = {pid for pid in relink if pid in mine and not mine[pid][0]}
        partners = {pid for pid, r in st.link_rows_with_keys({mine[p][1] for p in relink if mine[p][1]}).items()
                    if r[0]}
        partners |= st.clause_owners(set().union(*(mine[p][2] for p in relink)), ided=True)
        partners |= {pid for pid in touched if pid in after and after[pid][0]}
        partners = {pid for pid in partners if pid not in touched or pid in self.pre}
        self._load(relink | partners)
        # in merge_papers' order (a group's first record): the last of two same-title ID-less groups wins
        subset = sorted((self.pre[pid] for pid in relink | partners if pid in self.pre),
                        key=lambda p: _record_key(self.records[p.paper_id][0]))
        new_links = {src: dst for src, dst in find_links(subset).items() if src in relink}
        old_links = {pid: r[2] for pid, r in st.link_rows(relink).items()}
        return self._finish(relink, new_links, old_links, before)

    def _with_peers(self, relink: set[str], keys: set[str]) -> set[str]:
        """``relink`` plus every ID-less group sharing a title key with one of them (until none is added)."""
        relink, done = set(relink), set()
        touched_idless = {pid: k for pid, (ided, k, _) in
                          self._keys_after([p for p in self.touched if p in self.pre]).items() if not ided and k}
        while True:
            keys = keys | {k for pid, (ided, k, _) in self._keys_after(relink).items() if k and not ided}
            fresh = keys - done
            if not fresh:
                return relink
            done |= fresh
            relink |= {pid for pid, r in self.store.link_rows_with_keys(fresh).items() if not r[0]}
            relink |= {pid for pid, k in touched_idless.items() if k in fresh}

    # ---- 4. the merged records to rebuild
    def _finish(self, relink, new_links, old_links, before) -> Delta:
        from .merge import merge_one, paper_hash

        st, touched = self.store, self.touched
        targets: set[str] = set()
        for pid in relink:
            targets |= {t for t in (old_links.get(pid), new_links.get(pid)) if t}
        for pid in touched:
            if pid in before and before[pid][2]:
                targets.add(before[pid][2])
        finals = {pid for pid in touched | relink if pid in self.pre and
                  (self.pre[pid].arxiv_id or not new_links.get(pid))}
        finals |= {t for t in targets if t not in touched or t in self.pre}
        stored_members = {src: dst for src, dst in st.linked_into(finals).items()
                          if src not in relink and src not in touched}
        members: dict[str, list[str]] = {}
        for src, dst in sorted({**stored_members, **new_links}.items()):
            if dst in finals:
                members.setdefault(dst, []).append(src)
        self._load(finals | {m for ms in members.values() for m in ms})
        finals = {pid for pid in finals if pid in self.pre}
        papers = {pid: merge_one(pid, [r for g in (pid, *members.get(pid, ())) for r in self.records[g]])
                  for pid in finals}
        candidates = touched | relink
        old_hashes = st.paper_hashes_of(finals | candidates)
        removed = sorted(pid for pid in candidates if pid not in papers and pid in old_hashes)
        keys = self._keys_after([pid for pid in touched if pid in self.pre])
        return Delta(papers=[papers[pid] for pid in sorted(papers)],
                     hashes={pid: paper_hash(p) for pid, p in papers.items()},
                     old_hashes=old_hashes, removed=removed,
                     groups=[(pid, int(k[0]), k[1], None if k[0] else new_links.get(pid)) for pid, k in keys.items()],
                     groups_gone=sorted(pid for pid in touched if pid not in self.pre),
                     links={pid: new_links.get(pid) for pid in relink if pid not in touched},
                     clauses={pid: (int(k[0]), k[2]) for pid, k in keys.items()}, touched=set(touched))
