"""Exact and MinHash near-duplicate detection: signatures per document, clusters over the corpus.

- Shingles: word n-grams (``ngram`` words, lower-cased, punctuation kept out) of the document.
- Signatures: datasketch ``MinHash`` with ``num_perm`` permutations (seeded), shingles hashed with CRC-32
  (datasketch's 32-bit hash space, deterministic across processes, faster than its SHA-1 default).
- Bands: b bands of r rows from datasketch's ``_optimal_param(threshold, num_perm)`` (minimises the
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

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class DedupConfig:
    exact: bool = True
    near: bool = True
    threshold: float = 0.8  # Jaccard similarity of shingle sets
    num_perm: int = 128
    ngram: int = 5
    seed: int = 1


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


def band_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) for a Jaccard threshold, as datasketch's MinHashLSH chooses them."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


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
