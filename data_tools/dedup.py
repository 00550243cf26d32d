"""Exact and MinHash near-duplicate detection: signatures per document, clusters over the corpus.

- Shingles: word n-grams (``ngram`` words, lower-cased, punctuation kept out) of the document.
- Signatures: datasketch ``MinHash`` with ``num_perm`` permutations (seeded), shingles hashed with CRC-32
  (datasketch's 32-bit hash space, deterministic across processes, faster than its SHA-1 default).
- Bands: b bands of r rows from :func:`band_params` (datasketch's MinHashLSH rule; minimises the
  false-positive + false-negative area around the Jaccard threshold).
- Clusters: documents sharing a band bucket are candidates; a candidate pair is joined (union-find) only
  if its estimated Jaccard (share of equal signature slots) reaches the threshold, which removes most
  LSH false positives. Identical texts (exact hash) are always joined. The survivor of a cluster is its
  first document in input order; the cluster id is the survivor's key.

Memory of the global index: per document a signature of ``num_perm`` × 4 bytes (512 B at 128), its
exact hash (16 B + a dict entry) and one bucket entry of the band being processed (bands are processed
one at a time, ≈ 150 B in CPython): about 0.8 kB per document, ≈ 8 GB for 10 M documents.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass

import numpy as np

from rlpt_verl.options import opt

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class DedupConfig:
    exact: bool = opt(True, "skip exact deduplication", flag="--no-exact-dedup")
    near: bool = opt(True, "skip MinHash near-duplicate removal", flag="--no-near-dedup")
    # 0.7, not 0.8: with 128 permutations the estimate's noise and the banding lose half the pairs at true
    # Jaccard 0.80-0.85 when the threshold is 0.8 (benchmarks/bench_dedup_recall.py, docs/benchmarks.md)
    threshold: float = opt(
        0.7, "estimated Jaccard similarity (of word shingle sets) at which documents merge", flag="--dedup-threshold"
    )
    num_perm: int = opt(128, "MinHash permutations", low=2)
    ngram: int = opt(5, "words per shingle", flag="--shingle-words", low=1)
    seed: int = opt(1, "MinHash permutation seed")


def exact_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def shingles(text: str, n: int) -> set[bytes]:
    """Word n-grams of ``text`` (all words as one shingle if it has fewer than n).

    >>> sorted(shingles("A b, c! d", 3))
    [b'a b c', b'b c d']
    """
    words = [w.lower() for w in _TOKEN.findall(text)]
    if len(words) < n:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


def _crc32(data: bytes) -> int:
    return zlib.crc32(data)


def _miss_area(threshold: float, bands: int, rows: int, below: bool) -> float:
    """Area under the false-positive (s < threshold) or false-negative (s >= threshold) curve of b×r banding."""
    from scipy.integrate import quad

    def collide(s: float) -> float:  # probability that two documents of Jaccard s share a band
        return 1 - (1 - s ** float(rows)) ** float(bands)

    if below:
        return quad(collide, 0.0, threshold)[0]
    return quad(lambda s: 1 - collide(s), threshold, 1.0)[0]


def band_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands·rows <= num_perm minimising the weighted false-positive and false-negative areas
    (the rule datasketch's MinHashLSH uses, owned here rather than imported from a private name).

    >>> band_params(0.8, 128)
    (9, 13)
    """
    best, best_error = (0, 0), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            error = fp_weight * _miss_area(threshold, bands, rows, True) + fn_weight * _miss_area(
                threshold, bands, rows, False
            )
            if error < best_error:
                best, best_error = (bands, rows), error
    return best


def signature(text: str, cfg: DedupConfig) -> np.ndarray:
    """MinHash signature (uint32 × num_perm) of the document's shingles."""
    from datasketch import MinHash

    m = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=_crc32)
    m.update_batch(list(shingles(text, cfg.ngram)))
    return m.hashvalues.astype(np.uint32)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller index (earlier document) becomes the root: the survivor
            self.parent[max(ra, rb)] = min(ra, rb)


def cluster(signatures: np.ndarray, exact: list[bytes], cfg: DedupConfig, max_reps: int = 8) -> list[int]:
    """Root (survivor index) of every document; documents are indexed in input order.

    >>> cfg = DedupConfig(threshold=0.5, num_perm=64, ngram=2)
    >>> texts = ["the cat sat on the mat today", "the cat sat on the mat today!", "a completely different text here"]
    >>> sigs = np.stack([signature(t, cfg) for t in texts])
    >>> cluster(sigs, [exact_key(t) for t in texts], cfg)
    [0, 0, 2]
    """
    n = len(exact)
    uf = _UnionFind(n)
    if cfg.exact:
        first: dict[bytes, int] = {}
        for i, key in enumerate(exact):
            if key in first:
                uf.union(first[key], i)
            else:
                first[key] = i
    if cfg.near and n:
        bands, rows = band_params(cfg.threshold, cfg.num_perm)
        need = cfg.threshold * cfg.num_perm
        for b in range(bands):
            buckets: dict[bytes, list[int]] = {}
            band = np.ascontiguousarray(signatures[:, b * rows : (b + 1) * rows])
            for i in range(n):
                reps = buckets.setdefault(band[i].tobytes(), [])
                for j in reps:
                    if uf.find(i) == uf.find(j):
                        break
                    if np.count_nonzero(signatures[i] == signatures[j]) >= need:
                        uf.union(i, j)
                        break
                else:
                    if len(reps) < max_reps:
                        reps.append(i)
    return [uf.find(i) for i in range(n)]
