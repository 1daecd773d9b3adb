"""Hybrid retrieval: dense (Chroma) + BM25 fused by reciprocal rank fusion, aggregated per paper.

The core is plain functions (fast CLI start); :class:`HybridRetriever` exposes the same search as a
llama-index ``BaseRetriever`` for use in llama-index pipelines.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, replace
from bisect import bisect_right
from itertools import chain

from .config import Settings
from .types import TEXT_FIELDS, Filters, Hit, Passage

# ---------------------------------------------------------------- tokenisation

_LATEX_SUP = re.compile(r"\$\^\{?([^}$]+)\}?\$")
# (CJK alternative first: the two start with disjoint characters, and this order scans ~20% faster)
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:[-_.@/+][a-z0-9]+)*")
_SPLIT = re.compile(r"[-_.@/+]")
_STOP = frozenset("""a an the and or of to in on for with by from as at is are was were be been being this that
these those it its we our us they their them which what who whom whose how why when where do does did
can could should would may might will shall not no than then there here into onto about over under via
such any all each both more most other some so if but also using use used uses based paper papers
between while whereas per""".split())
_ARXIV_VERSION = re.compile(r"(\d{4}\.\d{4,5})v\d+")
_ARXIV_HINT = re.compile(r"\.\d{4,5}v\d")
_ARXIV_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])")


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _stem(w: str) -> str:
    if len(w) > 3 and w.isalpha() and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def _cjk_tokens(run: str, mode: str) -> list[str]:
    if mode == "jieba":
        import jieba

        return [w for w in jieba.lcut_for_search(run) if w.strip()]
    if len(run) == 1:
        return [run]
    return list(map(str.__add__, run, run[1:]))


def _word_tokens(w: str, mode: str) -> tuple[str, ...]:
    """BM25 tokens of one matched word (pure function of the word, so it is memoised)."""
    if _is_cjk(w[0]):
        return tuple(_cjk_tokens(w, mode))
    if w in _STOP:
        return ()
    out = [_stem(w)]
    if _SPLIT.search(w) and not _ARXIV_ID.fullmatch(w):
        parts = [p for p in _SPLIT.split(w) if p]
        out.append("".join(parts))
        out.extend(_stem(p) for p in parts if len(p) > 1 and p not in _STOP)
    return tuple(out)


class _WordCache(dict):
    """word -> its tokens (a tuple, or with joined=True one space-joined string), filled on first
    use; cleared when it grows past _WORD_CACHE_MAX."""

    def __init__(self, mode: str, joined: bool):
        super().__init__()
        self.mode, self.joined = mode, joined

    def __missing__(self, w: str) -> tuple[str, ...] | str:
        if w[0] > "z" and self.mode == "bigram" and len(w) > 1:  # a CJK run (_TOKEN's other words are ASCII)
            pairs = map(str.__add__, w, w[1:])  # its bigrams, without the general path's calls
            v = " ".join(pairs) if self.joined else tuple(pairs)
        else:
            v = _word_tokens(w, self.mode)
            v = " ".join(v) if self.joined else v
        if len(w) <= 8 or not _is_cjk(w[0]):  # long CJK runs rarely repeat: not worth keeping
            if len(self) >= _WORD_CACHE_MAX:
                self.clear()
            self[w] = v
        return v


_WORD_CACHE_MAX = 1 << 18
_WORD_CACHES: dict[tuple[str, bool], _WordCache] = {}


def _words(text: str, mode: str, joined: bool) -> tuple[list[str], _WordCache]:
    """The normalised text's words and the word cache that turns them into tokens."""
    t = _LATEX_SUP.sub(r"\1", text)
    t = (t if t.isascii() else unicodedata.normalize("NFKC", t)).lower()
    if _ARXIV_HINT.search(t):  # (a literal-led pattern: much faster to scan than the full one)
        t = _ARXIV_VERSION.sub(r"\1", t)
    cache = _WORD_CACHES.get((mode, joined)) or _WORD_CACHES.setdefault((mode, joined), _WordCache(mode, joined))
    return _TOKEN.findall(t), cache


def tokenize(text: str, mode: str = "bigram") -> list[str]:
    """BM25 tokens: technical tokens kept whole (rq-vae, ndcg@10, 2508.15281, align3gr) plus their
    parts; CJK runs as bigrams (or jieba words); light plural stemming; small stopword list."""
    words, cache = _words(text, mode, False)
    return list(chain.from_iterable(map(cache.__getitem__, words)))


def tokens_text(text: str, mode: str) -> str:
    """Tokens as one space-joined string, as stored with each chunk (== " ".join(tokenize(...)):
    joins each word's cached token string, skipping stopwords' empty ones)."""
    words, cache = _words(text, mode, True)
    return " ".join(filter(None, map(cache.__getitem__, words)))


def chunk_tokens_texts(chunks: list, mode: str) -> list[str]:
    """tokens_text(c.embed_text) of each chunk; a paper's title (embed_text is "title\npassage")
    is tokenized once for all its chunks. (Nothing in the tokenizer crosses the newline; a "$"
    in the title could start a LaTeX match that does, so such titles take the plain path.)"""
    titles: dict[str, str] = {}
    out = []
    for c in chunks:
        title, text, embed = c.metadata.get("title") or "", c.text, c.embed_text
        if not title or "$" in title or len(embed) != len(title) + 1 + len(text) \
                or not embed.startswith(title) or not embed.endswith(text):
            out.append(tokens_text(embed, mode))
            continue
        head = titles.get(title)
        if head is None:
            head = titles[title] = tokens_text(title, mode)
        tail = tokens_text(text, mode)
        out.append(f"{head} {tail}" if head and tail else head or tail)
    return out


# ---------------------------------------------------------------- BM25 index

# The BM25 index is a list of segments (rag.store.save_bm25_segment): each holds the raw term frequencies
# of some chunks (a CSC matrix term -> chunk positions), its chunks' lengths and ids, and the terms it
# added to the vocabulary; later segments mark the positions of chunks they replace or that are gone as
# dead. Scores are computed at query time for the query's terms from the live chunks' statistics (number
# of chunks, mean length, document frequencies), which is what a rebuild from scratch would precompute:
# an ingest appends one small segment for the papers it changed instead of rebuilding everything, and
# small segments are merged like a binary counter (_merge_from): each chunk is rewritten ~log2(index / day)
# times, never the whole index because a day was added. Everything is rebuilt into one segment when dead
# positions (replaced or removed chunks) exceed _BM25_MERGE_SHARE of the live ones.
_BM25_MERGE_SHARE = 0.2
_BM25_MAX_SEGMENTS = 24
_BM25_MERGE_FACTOR = 2  # a segment is merged with the ones after it when it is < FACTOR x their size


def rebuild_bm25(store) -> None:
    """Rebuild the BM25 files from the chunks' stored term ids, as one segment."""
    gen = store.generation()
    store.save_bm25_segment(_segment(store, None), gen, replace=True)


def _merge_from(docs: list[int], factor: float = 2) -> int:
    """The first segment to merge with the ones after it (the last is the new one): walking back, a segment
    joins while it is smaller than ``factor`` x the total after it. len(docs) - 1: nothing to merge."""
    i, tail = len(docs) - 1, docs[-1]
    while i > 0 and docs[i - 1] < factor * tail:
        i -= 1
        tail += docs[i]
    return i


def update_bm25(store, paper_ids: set[str], generation_before: int, stale: list[str] = ()) -> None:
    """After a commit that changed (or removed) the chunks of ``paper_ids`` (dropping the chunks ``stale``):
    append a segment with their chunks as they are now, marking every earlier copy of those and of the
    stale ones dead, merged with the small segments before it (:func:`_merge_from`); rebuild instead when
    the files were not those of ``generation_before`` (the catalogue as it was before this commit), hold
    too many dead positions or too many segments."""
    manifest = store.bm25_manifest()
    if manifest is None or manifest["generation"] != generation_before or not sum(manifest["docs"]):
        return rebuild_bm25(store)
    seg = _segment(store, paper_ids)
    docs = [*manifest["docs"], len(seg["ids"])]
    live = max(1, store.chunk_count())
    keep = _merge_from(docs, _BM25_MERGE_FACTOR)
    if keep == 0 or sum(docs) - live > _BM25_MERGE_SHARE * live or keep + 1 > _BM25_MAX_SEGMENTS:
        return rebuild_bm25(store)
    tail = range(keep, len(manifest["segments"]))
    if len(tail):  # the merged segments' papers as they are now (a paper's live chunks are all in its
        merged = {c.rsplit(":", 2)[0] for c in store.bm25_segment_ids(manifest, tail)}  # latest segment)
        seg = _segment(store, set(paper_ids) | merged)
    dead = [d for d in store.bm25_dead(manifest, tail) if d[0] < keep]
    dead += store.bm25_positions({**manifest, "segments": manifest["segments"][:keep]}, [*seg["ids"], *stale])
    store.save_bm25_segment(seg, store.generation(), dead=sorted(set(dead)), keep=keep)


def bm25_from_catalogue(store):
    """(BM25 model or None, chunk ids, generation) built in memory from the chunks' stored term ids."""
    gen = store.generation()
    import numpy as np

    seg = _segment(store, None)
    seg["ids"] = np.array([c.encode("utf-8") for c in seg["ids"]], dtype=bytes)
    model = SegmentedBM25([seg], dict(store.terms())) if len(seg["ids"]) else None
    return model, (model.ids if model else []), gen


def _segment(store, paper_ids: set[str] | None) -> dict:
    """A segment's arrays for these papers' live chunks (None: every chunk), chunk ids sorted."""
    import numpy as np

    ids, buf, lens = store.chunk_token_ids(paper_ids)
    n_terms = store.term_count()
    tok = np.frombuffer(buf, dtype=np.int32)
    lens = np.frombuffer(lens, dtype=np.int32).astype(np.int64)
    indptr, docs, tf = _tf_matrix(tok, lens, n_terms)
    return {"ids": ids, "lens": lens.astype(np.int32), "indptr": indptr, "docs": docs, "tf": tf,
            "n_terms": n_terms}


def _tf_matrix(tok, lens, n_terms: int):
    """(indptr, docs, tf): term frequencies as a CSC matrix term -> documents (docs sorted per term)."""
    import numpy as np

    n = len(lens)
    if not n:
        return np.zeros(n_terms + 1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32)
    docs = np.repeat(np.arange(n, dtype=np.int32), lens)
    buckets = max(1, -(-len(tok) // _BM25_BUCKET))
    step = -(-max(1, n_terms) // buckets)
    parts = [_postings(tok, docs, n, lo, lo + step) for lo in range(0, max(1, n_terms), step)]
    del docs
    col, row, tf = (np.concatenate(x) for x in zip(*parts))
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(col, minlength=n_terms), out=indptr[1:])
    return indptr, row, tf


class _Ids:
    """The chunk id at each BM25 position, read from the segments' (memory-mapped) id arrays on demand."""

    def __init__(self, arrays: list, offsets: list[int]):
        self.arrays, self.offsets = arrays, offsets
        self._list: list[str] | None = None

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, i: int) -> str:
        if self._list is not None:
            return self._list[i]
        i = int(i) + (len(self) if i < 0 else 0)
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect_right(self.offsets, i) - 1
        return bytes(self.arrays[k][i - self.offsets[k]]).decode("utf-8")

    def as_list(self) -> list[str]:
        if self._list is None:
            self._list = [x.decode("utf-8") for a in self.arrays for x in a.tolist()]
        return self._list

    def __iter__(self):
        return iter(self.as_list())

    def __eq__(self, other) -> bool:
        return self.as_list() == list(other)


class _SortedVocab(dict):
    """A vocabulary with its terms sorted (prefix lookups without a term table)."""

    def __init__(self, vocab: dict[str, int]):
        super().__init__(vocab)
        self.sorted = sorted(vocab)


class SegmentedBM25:
    """BM25 (lucene scoring, k1 0.9, b 0.4: what build_bm25 precomputes) over segments, scored at query
    time. Positions: the segments' chunks back to back (``ids``; dead positions are never returned)."""

    def __init__(self, segments: list[dict], vocab, k1: float = 0.9, b: float = 0.4, lookup=None):
        """``vocab``: term -> id, or a function returning it (called when it is first needed);
        ``lookup``: an object whose ``ids(terms)`` gives {term: id} and ``prefixed(prefix, limit)`` the
        first terms with a prefix, without the whole vocabulary in memory (rag.store: the catalogue's
        term table); without it, lookups use ``vocab``."""
        import numpy as np

        self.k1, self.b = k1, b
        self.segs = segments
        self.segments = len(segments)
        self._vocab = vocab
        self._lookup = lookup
        self.offsets = np.cumsum([0] + [len(s["lens"]) for s in segments])
        self.ids = _Ids([s["ids"] for s in segments], [int(x) for x in self.offsets])
        alive = np.ones(len(self.ids), dtype=bool)
        for s, off in zip(segments, self.offsets):
            for seg_no, pos in s.get("dead", ()):
                alive[self.offsets[seg_no] + pos] = False
        self.alive = alive
        lens = np.concatenate([s["lens"] for s in segments]).astype(np.int64) if segments else np.zeros(0, np.int64)
        live_lens = lens[alive]
        self.num_docs = int(alive.sum())
        mean = float(live_lens.mean()) if self.num_docs else 1.0
        self.norm = (k1 * ((1 - b) + b * lens / (mean or 1.0))).astype(np.float32)
        self._rank = None

    @property
    def vocab_dict(self) -> dict[str, int]:
        if callable(self._vocab):
            self._vocab = self._vocab()
        return self._vocab

    def term_ids(self, terms) -> dict[str, int]:
        """term -> column for those of ``terms`` that are indexed."""
        terms = [t for t in dict.fromkeys(terms) if t]
        if self._lookup is not None:
            return self._lookup.ids(terms)
        vocab = self.vocab_dict
        return {t: vocab[t] for t in terms if t in vocab}

    def prefixed(self, prefix: str, limit: int) -> list[str]:
        """The first ``limit`` indexed terms (in sorted order) that start with ``prefix``."""
        return self.between(prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1), limit) if prefix else []

    def between(self, lo: str, hi: str, limit: int) -> list[str]:
        """The first ``limit`` indexed terms t with lo <= t < hi, in sorted order."""
        if self._lookup is not None:
            return self._lookup.between(lo, hi, limit)
        from bisect import bisect_left

        if not isinstance(self._vocab, _SortedVocab):
            self._vocab = _SortedVocab(self.vocab_dict)
        words = self._vocab.sorted
        i = bisect_left(words, lo)
        return [w for w in words[i:i + limit] if w < hi and w]

    def live_ids(self) -> list[str]:
        import numpy as np

        ids = self.ids.as_list()
        return [ids[i] for i in np.flatnonzero(self.alive)]

    def column(self, col: int):
        """(positions, term frequencies) of the live chunks holding term ``col``."""
        import numpy as np

        docs, tfs = [], []
        for s, off in zip(self.segs, self.offsets):
            ip = s["indptr"]
            if col + 1 < len(ip) and ip[col + 1] > ip[col]:
                docs.append(np.asarray(s["docs"][ip[col]:ip[col + 1]], dtype=np.int64) + int(off))
                tfs.append(np.asarray(s["tf"][ip[col]:ip[col + 1]]))
        if not docs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        d, t = np.concatenate(docs), np.concatenate(tfs)
        keep = self.alive[d]
        return d[keep], t[keep].astype(np.float32)

    def df(self, col: int) -> int:
        return len(self.column(col)[0])

    def df_at_least(self, col: int) -> int:
        """A lower bound of df(col) read from the segments' offsets alone (no postings decoded): the stored
        postings minus every dead position there is."""
        raw = sum(int(s["indptr"][col + 1] - s["indptr"][col]) for s in self.segs if col + 1 < len(s["indptr"]))
        return raw - (len(self.alive) - self.num_docs)

    def weights(self, col: int):
        """(positions, BM25 weight of the term in each): idf * tf / (norm + tf), float32 as build_bm25."""
        import numpy as np

        docs, tf = self.column(col)
        n, df = self.num_docs, len(docs)
        idf = np.log1p(np.array([(n - df + 0.5) / (df + 0.5)])).astype(np.float32)[0]
        data = np.full(len(docs), idf, dtype=np.float32)
        data *= tf / (self.norm[docs] + tf)
        return docs, data

    def rank(self):
        """Each position's rank in chunk id order (ties in a ranking are broken by chunk id)."""
        import numpy as np

        if self._rank is None and self.segments == 1 and self.num_docs == len(self.ids):
            self._rank = np.arange(len(self.ids))  # one segment: its chunk ids are sorted
        if self._rank is None:
            order = np.argsort(np.concatenate([np.asarray(s["ids"]) for s in self.segs]), kind="stable")
            rank = np.empty(len(self.ids), dtype=np.int64)
            rank[order] = np.arange(len(self.ids))
            self._rank = rank
        return self._rank

    def sorted_docs(self, docs):
        """Positions in chunk id order."""
        import numpy as np

        return docs[np.argsort(self.rank()[docs], kind="stable")]

    def get_scores(self, toks: list[str]):
        return bm25_scores(self, toks)


def bm25_from_token_texts(token_texts: list[str | None]):
    """The BM25 model of chunks given their stored space-joined tokens (see tokens_text)."""
    from .util import no_gc

    with no_gc():  # ~10^5 token lists: the cyclic GC would rescan them again and again
        return build_bm25([(t or "").split() or ["<empty>"] for t in token_texts])


class _Vocab(dict):
    """token -> id in order of first appearance."""

    def __missing__(self, tok: str) -> int:
        v = self[tok] = len(self)
        return v


def build_bm25(corpus: list[list[str]], k1: float = 0.9, b: float = 0.4):
    """A bm25s.BM25 (lucene scoring) equal to ``BM25(k1, b).index(corpus)``, built with numpy.

    bm25s counts terms per document in Python; here one sort of (token, doc) keys gives term
    frequencies, document frequencies and the CSC layout at once.
    """
    import numpy as np

    vocab = _Vocab()
    lens = np.fromiter(map(len, corpus), dtype=np.int64, count=len(corpus))
    tok = np.fromiter(map(vocab.__getitem__, chain.from_iterable(corpus)), dtype=np.int64,
                      count=int(lens.sum()))
    return build_bm25_ids(tok, lens, vocab, k1, b)


_BM25_BUCKET = 2_000_000  # tokens sorted at a time while building (bounds the build's memory)


def _postings(tok, docs, n: int, lo: int, hi: int):
    """(term, doc, tf) of the tokens whose term id is in [lo, hi), sorted by term then doc (int32)."""
    import numpy as np

    pick = (tok >= lo) & (tok < hi)
    keys = tok[pick].astype(np.int64)
    keys *= n
    keys += docs[pick]
    keys.sort()
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    tf = np.diff(np.append(np.flatnonzero(first), len(keys))).astype(np.int32)
    keys = keys[first]
    return (keys // n).astype(np.int32), (keys % n).astype(np.int32), tf


def build_bm25_ids(tok, lens, vocab: dict[str, int], k1: float = 0.9, b: float = 0.4):
    """The same model from term ids: ``tok`` holds every document's ids back to back, ``lens[i]``
    how many belong to document i; ``vocab`` maps each term to its id (ids of terms no document
    holds any more just get empty columns). Term-id ranges of ~_BM25_BUCKET tokens are sorted one
    at a time (one global sort of int64 keys peaked at +455 MB for 20k papers / 12M tokens)."""
    import bm25s
    import numpy as np

    n, n_terms = len(lens), len(vocab)
    indptr, row, tf = _tf_matrix(tok, lens, n_terms)
    df = np.diff(indptr)
    col = np.repeat(np.arange(n_terms, dtype=np.int32), df)
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = (k1 * ((1 - b) + b * lens / (float(lens.mean()) or 1.0))).astype(np.float32)
    tf = tf.astype(np.float32)
    data = idf[col]
    del col
    data *= tf / (norm[row] + tf)
    model = bm25s.BM25(k1=k1, b=b)
    model.scores = {"data": data, "indices": row, "indptr": indptr, "num_docs": n}
    model.nonoccurrence_array = None
    vocab = dict(vocab)
    if "" not in vocab:
        vocab[""] = len(vocab)
    model.vocab_dict = vocab
    model.unique_token_ids_set = set(vocab.values())
    return model


def _bm25(store):
    """The store's BM25 (model, chunk ids, generation). Missing, damaged or stale files are rebuilt from
    the catalogue when this process can take the index's write lock; while an ingest holds it, stale
    files are used as they are (the ingest rebuilds them after its commit), and missing or damaged ones
    are built in memory (so are those of a read-only index)."""
    gen = store.generation()
    loaded = store.load_bm25()
    if loaded is not None and loaded[2] == gen:
        return loaded
    with store.try_writer_lock() as got:
        if got:
            rebuild_bm25(store)
            fresh = store.load_bm25()
            if fresh is not None:
                return fresh
    if loaded is not None:
        return loaded
    key = (str(store.db_path), gen)
    with _STORES_LOCK:
        built = _BM25_MEMORY.get(key)
    if built is None:
        built = bm25_from_catalogue(store)
        with _STORES_LOCK:
            _BM25_MEMORY.clear()
            _BM25_MEMORY[key] = built
    return built


_BM25_MEMORY: dict[tuple[str, int], tuple] = {}  # BM25 built in memory (read-only or busy index), by generation


def bm25_search(store, query: str, settings: Settings, n: int,
                allowed: set[str] | None) -> list[tuple[str, float]]:
    import numpy as np

    model, ids, _ = _bm25(store)
    toks = tokenize(query, settings.bm25_tokenizer) if model else []
    cols = model.term_ids(toks) if toks else {}
    toks = [t for t in toks if t in cols]
    if not toks:
        return []
    scores = bm25_scores(model, toks, cols)
    if allowed is not None:
        scores *= np.fromiter((cid in allowed for cid in ids), dtype=np.float32, count=len(ids))
    hit = np.flatnonzero(scores > 0)
    if len(hit) > n:  # the n best, and every chunk tied with the n-th (cut below, by chunk id)
        hit = hit[scores[hit] >= np.partition(scores[hit], len(hit) - n)[len(hit) - n]]
    top = hit[np.lexsort((model.rank()[hit], -scores[hit]))][:n]  # best first; ties by chunk id
    return [(ids[int(d)], float(scores[d])) for d in top]


def bm25_scores(model, toks: list[str], cols: dict[str, int] | None = None):
    """Every position's BM25 score for the query tokens: the sum of the tokens' weights, computed per
    term from the live chunks' statistics (SegmentedBM25.weights), in token order. ``cols``: the tokens'
    columns when already looked up."""
    import numpy as np

    cols = model.term_ids(toks) if cols is None else cols
    parts = [model.weights(cols[t]) for t in toks]
    idx = np.concatenate([d for d, _ in parts])
    weights = np.concatenate([w for _, w in parts])
    return np.bincount(idx, weights=weights, minlength=len(model.ids)).astype(np.float32)


@dataclass(frozen=True)
class TermStats:
    """How common words are in the indexed passages (the BM25 index's document frequencies)."""

    model: object
    mode: str
    ids: list  # chunk id of each BM25 document ("<paper_id>:<field>:<n>")

    def _column(self, text: str) -> int | None:
        """The BM25 column of the word's rarest token (None if no token of it is indexed)."""
        toks = tokenize(text, self.mode)
        found = self.model.term_ids(toks)
        cols = list(dict.fromkeys(found[t] for t in toks if t in found))
        return min(cols, key=lambda c: (self.model.df(c), cols.index(c))) if cols else None

    def share(self, text: str) -> float | None:
        """Share of indexed passages holding the word; None if it is not indexed at all."""
        c = self._column(text)
        if c is None:
            return None
        return self.model.df(c) / max(1, self.model.num_docs)

    def papers(self, text: str, cap: int = 50) -> int:
        """How many papers hold the word (counted up to ``cap``)."""
        c = self._column(text)
        if c is None:
            return 0
        seen = set()
        for d in self.model.sorted_docs(self.model.column(c)[0]):
            seen.add(self.ids[int(d)].rsplit(":", 2)[0])
            if len(seen) >= cap:
                break
        return len(seen)


def term_stats(settings: Settings) -> TermStats | None:
    """Document frequencies of the index (None for an empty or missing index)."""
    from pathlib import Path

    if settings.chroma_url is None and not Path(settings.index_dir).is_dir():
        return None
    store = _cached_store(settings)
    if store.chunk_count() == 0:
        return None
    model, ids, _ = _bm25(store)
    return TermStats(model, settings.bm25_tokenizer, ids) if model is not None else None


# ---------------------------------------------------------------- dense

DENSE_FETCH = 3


def dense_search(store, query: str, settings: Settings, n: int, filters: Filters,
                 allowed: set[str] | None) -> list[tuple[str, float]]:
    from .embed import get_embedder

    vec = get_embedder(settings).embed_query(query)
    where = _date_where(filters)
    # HNSW is approximate and its in-memory graph differs a little between processes: a chunk near the cut-off
    # of n may be found in one and missed in another. Fetching 3n keeps the top n the same.
    fetch = n * DENSE_FETCH if allowed is None else n * 5
    hits = store.dense_query(vec, fetch, where)
    if allowed is not None:
        hits = [h for h in hits if h[0] in allowed]
    return hits[:n]


def _date_int(s: str | None, end: bool = False) -> int | None:
    """YYYYMMDD for a filter date; a partial date (2025 or 2025-11) covers its whole period."""
    digits = re.sub(r"\D", "", s or "")[:8]
    return int(digits.ljust(8, "9" if end else "0")) if digits else None


def _date_where(f: Filters) -> dict | None:
    conds = []
    if _date_int(f.since):
        conds.append({"date_int": {"$gte": _date_int(f.since)}})
    if _date_int(f.until):
        conds.append({"date_int": {"$lte": _date_int(f.until, end=True)}})
        conds.append({"date_int": {"$gt": 0}})
    if not conds:
        return None
    return conds[0] if len(conds) == 1 else {"$and": conds}


def _allowed(store, f: Filters) -> set[str] | None:
    if not (f.since or f.until or f.category or f.author):
        return None
    return store.filtered_chunk_ids(_date_int(f.since), _date_int(f.until, end=True), f.category, f.author)


# ---------------------------------------------------------------- exact id / title matches

@dataclass(frozen=True)
class _TitleIndex:
    """In memory, for a read-only catalogue from before title keys (rag.store): each title key ->
    (kind, catalogue position, paper id) of the papers holding it."""
    by_key: dict[str, list[tuple[int, int, str]]]
    max_words: int

    def matches(self, keys) -> list[tuple[str, int, int, str]]:
        return [(k, *m) for k in dict.fromkeys(keys) for m in self.by_key.get(k, ())]


_TITLES: dict[tuple[str, int], _TitleIndex] = {}


def _build_title_index(rows) -> _TitleIndex:
    from .text import TITLE_KEY, title_keys

    by_key, longest = defaultdict(list), 0
    for i, (pid, arxiv_id, title) in enumerate(rows):
        for key, kind in title_keys(pid, arxiv_id, title):
            by_key[key].append((kind, i, pid))
            longest = max(longest, len(key.split()) if kind == TITLE_KEY else 0)
    return _TitleIndex(dict(by_key), longest)


def _title_index(store) -> _TitleIndex | None:
    """None when the catalogue holds its title keys (looked up there); else an in-memory index of every
    title (a read-only catalogue from before title keys), cached per index generation."""
    if store.title_keys_ready():
        return None
    key = (str(store.db_path), store.generation())
    index = _TITLES.get(key)
    if index is None:
        index = _build_title_index(store.title_rows())
        with _STORES_LOCK:
            if len(_TITLES) >= 4:
                _TITLES.clear()
            _TITLES[key] = index
    return index


def pinned_papers(store, question: str) -> list[str]:
    """Papers named in the question by arXiv ID, exact title or short name (e.g. 'LEMUR'): papers
    named by id first (latest in the catalogue first), then by title, each in catalogue order. Looks up
    the question's ids and word n-grams (up to the longest title's words) in the catalogue's title keys,
    so the cost does not grow with the catalogue."""
    from .text import ID_KEY, TITLE_KEY, normalize_title, plain_latex

    index = _title_index(store)
    longest = index.max_words if index else store.title_words()
    ids = [m.group(1) for m in _ARXIV_ID.finditer(question)]
    words = normalize_title(plain_latex(question)).split()  # "Align^3GR" typed for "Align$^3$GR"
    grams = [" ".join(words[a:b]) for a in range(len(words)) for b in range(a + 1, min(len(words), a + longest) + 1)]
    found = (index.matches if index else store.title_matches)(dict.fromkeys(ids + grams))
    id_keys, gram_keys = set(ids), set(grams)
    by_id = sorted({(pos, pid) for key, kind, pos, pid in found if kind == ID_KEY and key in id_keys}, reverse=True)
    by_title = sorted({(pos, pid) for key, kind, pos, pid in found if kind == TITLE_KEY and key in gram_keys})
    return list(dict.fromkeys(pid for _, pid in by_id + by_title))


_NAMEISH = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*(?![\w-])")
RARE_PIN_PASSAGES = 8  # a technical token in at most this many passages ...
RARE_PIN_PAPERS = 2  # ... of at most this many papers names them (e.g. "KnowSA_CKP", "GraphAnchor")


def _technical(word: str) -> bool:
    """A word typed as a name: digits, an underscore or hyphen, or capitals after the first letter."""
    return any(c.isdigit() or c in "_-" for c in word) or any(c.isupper() for c in word[1:])


def _typed_names(question: str) -> list[str]:
    """The question's words typed as names: technical ones (:func:`_technical`), capitalised words inside an
    English sentence ("was Congrats evaluated"), and in a Chinese question every Latin word of 3+ letters
    (Chinese users type Latin only for names and terms)."""
    cjk = any(_is_cjk(ch) for ch in question)
    out = []
    for m in _NAMEISH.finditer(question):
        word, before = m.group(), question[:m.start()].rstrip()
        inside = bool(before) and before[-1] not in ".?!:;\"'“‘(（「"
        if _technical(word) or (cjk and len(word) >= 3) or (inside and word[0].isupper() and len(word) >= 3):
            out.append(word)
    return out


def rare_token_papers(store, question: str, settings: Settings, passages: int = RARE_PIN_PASSAGES,
                      papers_max: int = RARE_PIN_PAPERS) -> list[str]:
    """Papers holding a technical word of the question that almost no other passage holds (at most
    ``passages`` passages of ``papers_max`` papers): a name the user typed (a method, dataset or model name
    that is not in any title) is the strongest signal there is, and a Chinese question's many bigrams must
    not drown it."""
    loaded = _bm25(store)
    if loaded is None or loaded[0] is None:
        return []
    model, ids, _ = loaded
    out = []
    for word in _typed_names(question):
        for tok in tokenize(word, settings.bm25_tokenizer)[:1]:
            cols = list(model.term_ids((tok, *_releases(tok, model))).values())
            if any(model.df_at_least(c) > passages for c in cols):  # common: its postings are never decoded
                continue
            docs = sorted({d for c in cols for d in model.sorted_docs(model.column(c)[0])}) if cols else []
            if not docs or len(docs) > passages:  # common: not a name (and its ids are never decoded)
                continue
            papers = list(dict.fromkeys(ids[int(d)].rsplit(":", 2)[0] for d in docs))
            if len(papers) <= papers_max:
                out += [p for p in papers if p not in out]
    return out


_RELEASE_SUFFIXES = tuple(str(y) for y in range(1990, 2041)) + tuple(str(y) for y in range(10, 41)) + \
    tuple(str(v) for v in range(10)) + tuple(f"{v}.{m}" for v in range(1, 10) for m in range(10))


def _releases(tok: str, model) -> list[str]:
    """Index words that are ``tok`` joined to a year or release number ("icassp2026", "icassp26", "moon2",
    "moon3.0"), not a longer name ("bert4rec"); one range of the sorted vocabulary (the words that are
    ``tok`` and a digit), so the cost does not grow with the vocabulary. Empty for a word ending in a digit."""
    if not tok or tok[-1].isdigit():
        return []
    found = set(model.between(tok + "0", tok + ":", 10_000))  # the index words that are tok + a digit ...
    return [tok + s for s in _RELEASE_SUFFIXES if tok + s in found]


def names_indexed_paper(question: str, settings: Settings) -> bool:
    """Does the question name a paper of the index (arXiv id, title, short name)? False for no index."""
    from pathlib import Path

    if settings.chroma_url is None and not Path(settings.index_dir).is_dir():
        return False
    store = _cached_store(settings)
    return store.chunk_count() > 0 and bool(pinned_papers(store, question))


# ---------------------------------------------------------------- fusion and aggregation

def rrf(rankings: list[list[tuple[str, float]]], k: int) -> dict[str, float]:
    fused: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, (cid, _) in enumerate(ranking):
            fused[cid] += 1.0 / (k + rank + 1)
    return fused


def search_chunks(question: str, settings: Settings, filters: Filters, mode: str = "hybrid",
                  store=None) -> tuple[list[tuple[float, list[tuple[str, float]]]], list[str]]:
    """(weight, ranked chunks) per retriever, and the pinned paper ids."""
    store = store or _cached_store(settings)
    allowed = _allowed(store, filters)
    n = max(settings.candidates, (filters.top_k or settings.top_k) * 4)
    if mode not in ("hybrid", "dense", "bm25"):
        raise ValueError(f"unknown retrieval mode {mode!r}: use hybrid, dense or bm25")
    rankings = []
    # "" unless a Chinese question uses glossary terms (and the glossary is on)
    english = glossary_expansion(store, question) if settings.uses_glossary else ""
    if mode in ("hybrid", "dense"):
        translated = bool(english) and _english_only(settings)  # MiniLM reads the English terms, not 汉字
        weight = 0.5 if translated else dense_weight(question, settings)
        rankings.append((weight, dense_search(store, english if translated else question, settings, n, filters,
                                              allowed)))
    if mode in ("hybrid", "bm25"):
        direct = bm25_search(store, question, settings, n, allowed)
        rankings.append((1.0, direct))
        if english:  # weaker than direct Chinese matches when the index has Chinese text
            rankings.append((0.5 if direct else 1.0, bm25_search(store, english, settings, n, allowed)))
    pinned = pinned_papers(store, question) if mode == "hybrid" else []
    if mode == "hybrid":
        pinned += [p for p in rare_token_papers(store, question, settings) if p not in pinned]
    if allowed is not None:  # a paper named in the question still has to pass the filters
        allowed_papers = {cid.rsplit(":", 2)[0] for cid in allowed}  # (the chunk ids are needed above too)
        pinned = [p for p in pinned if p in allowed_papers]
    return rankings, pinned


def glossary_expansion(store, question: str) -> str:
    """For Chinese questions: the English index words of the research terms they use (a Chinese
    question over English-only digests still finds its papers). Empty for other questions."""
    if not any(_is_cjk(ch) for ch in question):
        return ""
    from .glossary import english_prefixes, expand_prefixes

    loaded = _bm25(store)
    if loaded is None or loaded[0] is None:
        return ""
    return " ".join(expand_prefixes(english_prefixes(question), loaded[0].prefixed))


def _english_only(settings: Settings) -> bool:
    return settings.embedder.startswith("minilm")


def dense_weight(question: str, settings: Settings) -> float:
    """The default MiniLM is English-only: on mostly-Chinese questions BM25 (CJK bigrams) leads."""
    if not _english_only(settings):
        return 1.0
    cjk = sum(_is_cjk(ch) for ch in question)
    letters = sum(ch.isalnum() for ch in question) or 1
    return 0.3 if cjk / letters > 0.3 else 1.0


def fuse_papers(rankings, rows: dict[str, dict], k: int) -> dict[str, float]:
    """Weighted RRF over papers: each retriever ranks papers by their best chunk. Exact RRF ties
    (common with two retrievers) are broken by how strong each match is relative to that list's best."""
    fused: dict[str, float] = defaultdict(float)
    for weight, ranking in rankings:
        seen: set[str] = set()
        best = max((s for _, s in ranking), default=0.0) or 1.0
        for cid, score in ranking:
            pid = rows[cid]["paper_id"] if cid in rows else None
            if pid and pid not in seen:
                seen.add(pid)
                fused[pid] += weight / (k + len(seen)) + weight * 1e-4 * max(score, 0.0) / best
    return fused


def retrieve_hits(question: str, settings: Settings, filters: Filters, mode: str = "hybrid") -> list[Hit]:
    store = _cached_store(settings)
    if store.chunk_count() == 0:
        return []
    rankings, pinned = search_chunks(question, settings, filters, mode, store)
    chunk_scores = rrf([r for _, r in rankings], settings.rrf_k)
    rows = store.chunk_rows(chunk_scores)
    paper_scores = fuse_papers(rankings, rows, settings.rrf_k)
    per_paper = _group(chunk_scores, rows)
    for pid in pinned:
        if pid not in per_paper:
            per_paper[pid] = _paper_chunks(store, pid)
    order = _rank_papers(paper_scores, pinned)
    top = order[: filters.top_k or settings.top_k]
    return _to_hits(store, top, per_paper)


def _allowed_papers(store, filters: Filters) -> set[str] | None:
    """Paper ids passing the filters (None: no filter)."""
    allowed = _allowed(store, filters)
    return None if allowed is None else {cid.rsplit(":", 2)[0] for cid in allowed}


def _append_papers(store, hits: list[Hit], paper_ids: list[str]) -> list[Hit]:
    """``hits`` followed by the papers ``paper_ids`` not among them (every field of each), ranked on."""
    have = {h.paper_id for h in hits}
    extra = [p for p in dict.fromkeys(paper_ids) if p not in have]
    if not extra:
        return hits
    more = _to_hits(store, [(p, 0.0) for p in extra], {p: _paper_chunks(store, p) for p in extra})
    return hits + [replace(h, rank=len(hits) + i) for i, h in enumerate(more, 1)]


LIST_NAME_PAPERS = 12  # a "which papers" question's typed name held by at most this many papers ...
LIST_NAME_PASSAGES = 60  # ... (in at most this many passages) brings every one of them in


def named_list_hits(question: str, settings: Settings, filters: Filters, hits: list[Hit]) -> list[Hit]:
    """For a "which papers ..." question: the papers holding a name the user typed ("Kuaishou", "MCP") that
    few papers hold, after the ranked ``hits`` (the answerer decides which of them match). Recall for a
    list must not end at the ranking's cut-off when the name itself says which papers to look at."""
    store = _cached_store(settings)
    found = rare_token_papers(store, question, settings, LIST_NAME_PASSAGES, LIST_NAME_PAPERS)
    ok = _allowed_papers(store, filters)
    return _append_papers(store, hits, [p for p in found if ok is None or p in ok])


META_LIST_PAPERS = 10  # papers whose metadata field matches a "which papers were accepted at ..." list


def meta_list_hits(question: str, settings: Settings, filters: Filters, hits: list[Hit], label: str) -> list[Hit]:
    """For a list asking for a metadata field ("which papers were accepted at ACM venues?", "... with code"):
    the papers whose metadata passage holds that field (``label``: Comment, Code, License) and best matches
    the question, after the ranked ``hits``: a paper's abstract rarely says where it was accepted."""
    store = _cached_store(settings)
    allowed = store.meta_chunk_ids(label)
    narrowed = _allowed(store, filters)
    if narrowed is not None:
        allowed &= narrowed
    ranked = bm25_search(store, question, settings, META_LIST_PAPERS, allowed)
    rows = store.chunk_rows([cid for cid, _ in ranked])
    return _append_papers(store, hits, [rows[cid]["paper_id"] for cid, _ in ranked if cid in rows])


COAUTHOR_PAPERS = 5  # papers sharing authors brought in for "do X's authors have another paper?"


def coauthor_hits(question: str, settings: Settings, filters: Filters, hits: list[Hit]) -> list[Hit]:
    """For "do the X authors have another paper?" / "X 的作者还有哪篇": the paper the question names first,
    then the papers sharing the most of its authors (or of the persons the question names), then the rest."""
    from .text import author_set, person_names

    store = _cached_store(settings)
    named = pinned_papers(store, question)[:1]
    every = {pid: author_set(a) for pid, a in store.authors_by_paper().items()}
    persons = person_names(question)
    known = set().union(*every.values()) if persons else set()
    target = (persons & known) or (every.get(named[0], set()) if named else set())
    if not target:
        return hits
    ok = _allowed_papers(store, filters)
    shared = {pid: len(a & target) for pid, a in every.items() if pid not in named and (ok is None or pid in ok)}
    top = sorted((p for p in shared if shared[p]), key=lambda p: (-shared[p], p))[:COAUTHOR_PAPERS]
    order = list(dict.fromkeys(named + top + [h.paper_id for h in hits]))
    have = {h.paper_id: h for h in hits}
    new = [p for p in order if p not in have]
    made = {h.paper_id: h for h in _to_hits(store, [(p, 0.0) for p in new], {p: _paper_chunks(store, p) for p in new})} \
        if new else {}
    return [replace({**have, **made}[p], rank=i) for i, p in enumerate(order, 1)]


def _group(fused: dict[str, float], rows: dict[str, dict]) -> dict[str, list[tuple[float, dict]]]:
    per_paper: dict[str, list[tuple[float, dict]]] = defaultdict(list)
    for cid, score in fused.items():
        if cid in rows:
            per_paper[rows[cid]["paper_id"]].append((score, rows[cid]))
    for chunks in per_paper.values():
        chunks.sort(key=lambda x: -x[0])
    return per_paper


def _paper_chunks(store, paper_id: str) -> list[tuple[float, dict]]:
    ids = [r[0] for r in store.db.execute("SELECT chunk_id FROM chunks WHERE paper_id=?", (paper_id,))]
    rows = store.chunk_rows(ids)
    pref = {"abstract": 0, "tldr_en": 1, "tldr_zh": 2}
    return sorted(((0.0, r) for r in rows.values()), key=lambda x: pref.get(x[1]["field"], 9))


def _rank_papers(paper_scores: dict[str, float], pinned: list[str]) -> list[tuple[str, float]]:
    """Papers by fused score; papers named in the question (ID, title, short name) first."""
    top = max(paper_scores.values(), default=0.0)
    scores = dict(paper_scores)
    for i, pid in enumerate(pinned):
        scores[pid] = top + 1.0 + (len(pinned) - i) * 1e-3
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))


def _to_hits(store, top: list[tuple[str, float]], per_paper: dict) -> list[Hit]:
    """Hits with the paper's retrieved passages first, then its other fields (so the answerer
    sees every field of a top paper, e.g. the venue in 'meta' or a zh result sentence)."""
    papers = store.get_papers(pid for pid, _ in top)
    extra = _other_chunks(store, [pid for pid, _ in top], per_paper)
    hits = []
    for rank, (pid, score) in enumerate(top, 1):
        p = papers.get(pid)
        chunks = per_paper[pid][:4] + extra.get(pid, [])
        passages = tuple(Passage(r["chunk_id"], r["field"], r["lang"], r["text"], float(s)) for s, r in chunks)
        first = chunks[0][1]
        hits.append(Hit(rank=rank, paper_id=pid, arxiv_id=(p.arxiv_id if p else first["arxiv_id"]) or None,
                        title=p.title if p else first["title"], score=float(score), passages=passages,
                        date=p.date if p else None, authors=p.authors if p else (),
                        categories=p.categories if p else ()))
    return hits


def _other_chunks(store, paper_ids: list[str], per_paper: dict, limit: int = 10) -> dict[str, list]:
    """Chunks of these papers that retrieval did not rank, in field order, score 0."""
    if not paper_ids:
        return {}
    q = f"SELECT chunk_id, paper_id FROM chunks WHERE paper_id IN ({','.join('?' * len(paper_ids))})"
    ids = [(cid, pid) for cid, pid in store.db.execute(q, paper_ids)]
    seen = {r["chunk_id"] for pid in paper_ids for _, r in per_paper.get(pid, [])[:4]}
    rows = store.chunk_rows(cid for cid, _ in ids if cid not in seen)
    order = {f: i for i, f in enumerate(TEXT_FIELDS)}
    out: dict[str, list] = defaultdict(list)
    for r in sorted(rows.values(), key=lambda r: (order.get(r["field"], 99), r["chunk_id"])):
        if len(out[r["paper_id"]]) < limit:
            out[r["paper_id"]].append((0.0, r))
    return out


_STORES: dict[tuple, object] = {}
_STORES_LOCK = threading.Lock()


def _cached_store(settings: Settings):
    """One open store per index/collection/server in this process (the UI asks many questions at once)."""
    from .store import open_store

    key = (settings.index_dir, settings.collection_name, settings.chroma_url)
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = open_store(settings)
        return _STORES[key]


def forget_store(settings: Settings) -> None:
    """Drop the cached store (after ingest in the same process, or in tests)."""
    key = (settings.index_dir, settings.collection_name, settings.chroma_url)
    with _STORES_LOCK:
        st = _STORES.pop(key, None)
    if st is not None:
        st.close()


# ---------------------------------------------------------------- llama-index adapter

def hybrid_retriever(settings: Settings, filters: Filters | None = None, mode: str = "hybrid"):
    """A llama-index ``BaseRetriever`` over the same hybrid search (chunks as nodes)."""
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    class HybridRetriever(BaseRetriever):
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            hits = retrieve_hits(query_bundle.query_str, settings, filters or Filters(), mode)
            return [NodeWithScore(node=TextNode(id_=p.chunk_id, text=p.text,
                                                metadata={"paper_id": h.paper_id, "arxiv_id": h.arxiv_id or "",
                                                          "title": h.title, "field": p.field}),
                                  score=h.score)
                    for h in hits for p in h.passages]

    return HybridRetriever()

