"""The kit every offline builder shares: verl's row schema, the parquet pool writer, the split by document,
seeded held-out membership, percentiles, progress bars and summary lines.

Builders import these public names only; nothing here knows about RLPT, RPT, SFT or math rows.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from rlpt_verl.data_tools import Document


def held_out(seed: int, key: str, fraction: float) -> bool:
    """Whether ``key`` falls in the held-out ``fraction`` for ``seed`` (the same answer in every run).

    Streaming converters use it: membership from a seeded hash, no state.

    >>> held_out(0, "a", 0.0), held_out(0, "a", 0.999999)
    (False, True)
    """
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def row_schema(reward_model, extra_info):
    """verl's RL row (data_source, chat prompt, ability) with a builder's reward_model and extra_info structs."""
    import pyarrow as pa

    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("ability", pa.string()),
            ("reward_model", reward_model),
            ("extra_info", extra_info),
        ]
    )


class PoolWriter:
    """Buffered parquet writer for one pool of rows; the file appears (by rename) only at close()."""

    def __init__(self, path: str, schema, rows_per_group: int = 2048):
        self.path, self.tmp = path, path + ".tmp"
        self.schema = schema
        self.rows: list[dict] = []
        self.rows_per_group = rows_per_group
        self.writer = None
        self.count = 0

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= self.rows_per_group:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
        os.replace(self.tmp, self.path)


def percentiles(hist: Counter, qs=(50, 90, 99, 100)) -> dict:
    """Nearest-rank percentiles of a histogram {value: count}, as {"p50": ..}; None for an empty one.

    >>> percentiles(Counter({10: 98, 500: 2}))
    {'p50': 10, 'p90': 10, 'p99': 500, 'p100': 500}
    """
    total = sum(hist.values())
    result = {}
    if not total:
        return {f"p{q}": None for q in qs}
    items = sorted(hist.items())
    for q in qs:
        need, seen = max(1, -(-q * total // 100)), 0
        for value, n in items:
            seen += n
            if seen >= need:
                result[f"p{q}"] = value
                break
    return result


def windows(it: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter).

    >>> list(windows(range(5), 2))
    [[0, 1], [2, 3], [4]]
    """
    window = []
    for x in it:
        window.append(x)
        if len(window) >= size:
            yield window
            window = []
    if window:
        yield window


def progress(it, desc: str, quiet: bool, unit: str = "doc", total: int | None = None):
    """A tqdm bar on stderr (off with ``quiet`` or when stderr is not a terminal); ``it=None`` with ``total``
    gives a bar to ``update()`` by hand."""
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, unit=unit, total=total, disable=quiet or None, file=sys.stderr, mininterval=1.0)


def _rank_key(seed: int, doc: Document) -> bytes:
    return hashlib.blake2b(f"{seed}\x00".encode() + doc.text.encode("utf-8", "replace"), digest_size=8).digest()


VAL_DOCS_AUTO = "min(100, 10% of the documents), at least 1"


def auto_val_docs(documents: int) -> int:
    """The default number of validation documents: 10% of the corpus, at most 100, at least one when there are
    two documents or more (so a small corpus keeps most of its documents for training).

    >>> [auto_val_docs(d) for d in (0, 1, 2, 20, 500, 100_000)]
    [0, 0, 1, 2, 50, 100]
    """
    return min(100, max(1, documents // 10)) if documents >= 2 else 0


def select_validation(
    docs: Iterable[Document], n: int | None, seed: int, usable: Callable[[Document], bool]
) -> set[int]:
    """Ordinals of the ``n`` usable documents with the smallest seeded hash: a split by document, O(n) memory.
    ``n=None`` is :func:`auto_val_docs` of the documents read.

    ``usable`` is asked only about a document that would enter the current top n, so an expensive check
    runs about n·ln(D/n) times over D documents.
    """
    cap = 100 if n is None else n
    if cap <= 0:
        return set()
    heap: list[tuple[bytes, int]] = []  # the cap smallest (key, ordinal), negated for heapq
    read = 0
    for ordinal, doc in enumerate(docs):
        read += 1
        item = (bytes(255 - b for b in _rank_key(seed, doc)), -ordinal)
        if (len(heap) < cap or item > heap[0]) and usable(doc):
            if len(heap) < cap:
                heapq.heappush(heap, item)
            else:
                heapq.heapreplace(heap, item)
    keep = len(heap) if n is not None else auto_val_docs(read)
    return {-neg for _, neg in heapq.nlargest(keep, heap)}


def config_record(cfg) -> dict:
    """A config dataclass as JSON-ready values (tuples become lists) for a report."""
    from dataclasses import asdict

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}


def skipped_line(documents: dict, files_skipped: dict, examples: dict | None = None) -> str:
    """The summary line of documents skipped (at read and at build, by reason) and files not read, named.

    >>> skipped_line({"skipped_at_read": {"empty": 2}}, {"unsupported_format": 1}, {"unsupported_format": ["a.csv"]})
    "documents skipped: 2 {'empty': 2}; files not read: unsupported_format 1 (a.csv)"
    """
    skipped = {**documents.get("skipped_at_read", {}), **documents.get("skipped_at_build", {})}
    line = f"documents skipped: {sum(skipped.values())} {skipped}"
    if not files_skipped:
        return line
    named = []
    for reason, n in sorted(files_skipped.items()):
        shown = (examples or {}).get(reason, [])
        more = f", +{n - len(shown)} more" if n > len(shown) and shown else ""
        named.append(f"{reason} {n}" + (f" ({', '.join(shown)}{more})" if shown else ""))
    return line + "; files not read: " + "; ".join(named)


def prompt_tokens_line(p: dict, budget: int) -> str:
    """The summary line of prompt-token percentiles against the budget they were built for."""
    return f"prompt tokens: p50={p['p50']} p90={p['p90']} p99={p['p99']} max={p['p100']} (budget {budget})"


def wrote_line(files, report_name: str, output: str) -> str:
    return f"wrote {', '.join(files)} and {report_name} to {output}"


NO_VALIDATION = "or train without validation (trainer.val_before_train=false trainer.test_freq=-1)"


def empty_validation_lines(rows: dict[str, int], fix: str) -> list[str]:
    """A warning when validation files hold no row: verl would validate on nothing, silently.

    >>> empty_validation_lines({"val_asr.parquet": 0, "val_msr.parquet": 3}, "add documents")[0][:60]
    'warning: val_asr.parquet holds 0 rows (validation would scor'
    """
    empty = [name for name, n in rows.items() if n == 0]
    if not empty:
        return []
    holds = "holds" if len(empty) == 1 else "hold"
    return [f"warning: {', '.join(empty)} {holds} 0 rows (validation would score nothing): {fix}, {NO_VALIDATION}"]
