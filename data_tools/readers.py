"""Read documents from .jsonl/.json/.parquet/.txt files (.jsonl/.json/.txt also compressed: .gz, .zst, .xz,
.bz2), folders and `datasets` save_to_disk folders.

Streaming: parquet and datasets are read in record batches and jsonl line by line, so memory does not
grow with corpus size. A bad record never stops the run: it is skipped and counted by reason. A user
mistake (missing path, unknown format, missing column) raises :class:`UserError` naming the fix.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from rlpt_verl.errors import UserError
from rlpt_verl.options import opt

from .document import Document, StepStats

SUFFIXES = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".txt": "txt"}
COMPRESSIONS = (".gz", ".zst", ".xz", ".bz2")  # streamed; for the text formats (parquet compresses itself)
FORMATS_HELP = (
    ".jsonl, .json, .parquet, .txt (.jsonl/.json/.txt also as .gz, .zst, .xz or .bz2), a folder of them, "
    "or a `datasets` folder saved with save_to_disk"
)
_BATCH = 1024
_EXAMPLES = 5  # skipped files named per reason in reports


def input_kind(path: str) -> str | None:
    """The reader for a file name, or None when it is not a supported format.

    >>> input_kind("a/b.jsonl.zst"), input_kind("c.TXT.gz"), input_kind("d.parquet.gz"), input_kind("e.csv")
    ('jsonl', 'txt', None, None)
    """
    stem, ext = os.path.splitext(path.lower())
    if ext in COMPRESSIONS:
        stem, ext = os.path.splitext(stem)
        return SUFFIXES.get(ext) if ext != ".parquet" else None
    return SUFFIXES.get(ext)


def open_binary(path: str):
    """``path`` opened for binary reading, decompressed on the fly by its suffix (streaming, bounded memory)."""
    ext = os.path.splitext(path.lower())[1]
    if ext == ".gz":
        import gzip

        return gzip.open(path, "rb")
    if ext == ".bz2":
        import bz2

        return bz2.open(path, "rb")
    if ext == ".xz":
        import lzma

        return lzma.open(path, "rb")
    if ext == ".zst":
        return io.BufferedReader(_ZstdRaw(path), buffer_size=1 << 16)
    return open(path, "rb")


class _ZstdRaw(io.RawIOBase):
    """A .zst file decompressed as a stream, frame after frame; a file that ends inside a frame raises EOFError
    (``zstandard.open`` would end quietly and lose the rest)."""

    def __init__(self, path: str):
        import zstandard

        self._new = zstandard.ZstdDecompressor().decompressobj
        self._file = open(path, "rb")
        self._dec = self._new()
        self._out = b""
        self._mid_frame = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._out:
            chunk = self._file.read(1 << 16)
            if not chunk:
                if self._mid_frame:
                    raise EOFError("zstd data ended inside a frame (truncated file)")
                return 0
            while chunk:
                self._mid_frame = True
                self._out += self._dec.decompress(chunk)
                chunk = b""
                if self._dec.eof:  # frame done; what follows belongs to the next frame
                    chunk, self._dec, self._mid_frame = self._dec.unused_data, self._new(), False
        n = min(len(buffer), len(self._out))
        buffer[:n], self._out = self._out[:n], self._out[n:]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


@dataclass(frozen=True)
class ReaderConfig:
    text_field: str = "text"
    id_field: str | None = None
    max_doc_chars: int = 1_000_000  # larger documents are skipped as "too_large"
    split: str | None = None  # of a `datasets` folder with several splits; None: see choose_split
    prefer: tuple[str, ...] = ("train",)  # the split read when none is named and there are several


def choose_split(available: list[str], wanted: str | None, prefer: tuple[str, ...], path: str) -> str:
    """The one split of a saved ``DatasetDict`` to read (never several: a benchmark's test split must not
    become training data, nor test and validation one score).

    >>> choose_split(["test", "train"], None, ("train",), "d"), choose_split(["test"], None, ("train",), "d")
    ('train', 'test')
    >>> choose_split(["test", "validation"], None, ("train",), "d")
    Traceback (most recent call last):
    ...
    rlpt_verl.errors.UserError: d holds the splits test, validation: choose one with --split (none is named train)
    """
    if wanted is not None:
        if wanted not in available:
            raise UserError(f"{path} has no split {wanted!r} (splits: {', '.join(available)}); fix --split")
        return wanted
    if len(available) == 1:
        return available[0]
    for name in prefer:
        if name in available:
            return name
    raise UserError(
        f"{path} holds the splits {', '.join(available)}: choose one with --split (none is named {'/'.join(prefer)})"
    )


def splits_lines(splits: dict | None) -> list[str]:
    """The summary line naming the split read from each `datasets` folder that held several (none: no line).

    >>> splits_lines({"/d/mmlu": "train (of test, train)"}), splits_lines({})
    (['datasets splits read: /d/mmlu: train (of test, train); --split picks another'], [])
    """
    if not splits:
        return []
    return ["datasets splits read: " + "; ".join(f"{p}: {s}" for p, s in splits.items()) + "; --split picks another"]


@dataclass(frozen=True, kw_only=True)
class CorpusOptions:
    """The corpus options every corpus command shares (`prepare`, `build`, `build-rpt`); one home for them."""

    inputs: tuple[str, ...] = opt(
        help=".jsonl/.json/.parquet/.txt files, folders, or `datasets` folders", positional=True
    )
    output: str = opt(help="output folder", aliases=("-o",))
    text_field: str = opt(ReaderConfig.text_field, "record field (or column) holding the text")
    id_field: str | None = opt(ReaderConfig.id_field, "record field holding a document id; none: `file:line`")
    max_doc_chars: int = opt(ReaderConfig.max_doc_chars, "larger documents are skipped and counted", low=1)
    split: str | None = opt(
        None, "split of a `datasets` folder saved with several (DatasetDict); one is read", shown_default="train"
    )

    def reader_config(self) -> ReaderConfig:
        return ReaderConfig(self.text_field, self.id_field, self.max_doc_chars, self.split)


def _is_hf_dataset_dir(path: str) -> bool:
    names = set(os.listdir(path))
    return "dataset_dict.json" in names or {"dataset_info.json", "state.json"} <= names


class FileSkips:
    """Files that were not read, counted by reason, with the first few of each named (for the summary)."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, path: str) -> None:
        self.counts[reason] += 1
        names = self.examples.setdefault(reason, [])
        if len(names) < _EXAMPLES:
            names.append(path)


def discover(paths: list[str], skips: FileSkips | None = None) -> list[tuple[str, str]]:
    """Expand inputs into (kind, path) in a deterministic order; folders are walked recursively."""
    found: list[tuple[str, str]] = []
    for path in paths:
        if not os.path.exists(path):
            raise UserError(f"input path not found: {path} (pass existing files or folders)")
        if os.path.isdir(path):
            if _is_hf_dataset_dir(path):
                found.append(("hf", path))
                continue
            inside: list[tuple[str, str]] = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for d in list(dirs):
                    sub = os.path.join(root, d)
                    if _is_hf_dataset_dir(sub):
                        inside.append(("hf", sub))
                        dirs.remove(d)
                for name in sorted(files):
                    kind = input_kind(name)
                    if kind:
                        inside.append((kind, os.path.join(root, name)))
                    elif skips is not None:
                        skips.add("unsupported_format", os.path.join(root, name))
            found.extend(sorted(inside, key=lambda kp: kp[1]))
            continue
        kind = input_kind(path)
        if kind is None:
            raise UserError(f"unknown input format: {path} (expected {FORMATS_HELP})")
        found.append((kind, path))
    seen: dict[str, str] = {}
    for _, path in found:  # the same file twice would double every document and task
        real = os.path.realpath(path)
        if real in seen:
            raise UserError(
                f"input {path} is given twice (also as {seen[real]}, or inside a folder given too): give each "
                "file or folder once"
            )
        seen[real] = path
    return found


def read_skip_hint(dropped: Counter, config: ReaderConfig) -> str | None:
    """The option that fixes the biggest reason documents were skipped at read, when one does (else None).

    >>> read_skip_hint(Counter(missing_id_field=3, empty=1), ReaderConfig(id_field="doc_id"))
    "the records have no field 'doc_id': set --id-field to one they have, or leave it out (ids are then file:line)"
    >>> read_skip_hint(Counter(too_large=2), ReaderConfig(max_doc_chars=100))
    'documents are longer than --max-doc-chars 100: raise it'
    """
    if not dropped:
        return None
    reason = dropped.most_common(1)[0][0]
    return {
        "missing_text_field": f"the records have no field {config.text_field!r}: set --text-field",
        "text_not_string": f"field {config.text_field!r} is not text: set --text-field",
        "missing_id_field": f"the records have no field {config.id_field!r}: set --id-field to one they have, or "
        "leave it out (ids are then file:line)",
        "too_large": f"documents are longer than --max-doc-chars {config.max_doc_chars}: raise it",
    }.get(reason)


def refuse_output_inside(paths: list[str], output: str) -> None:
    """An output folder inside an input folder would be read back as input (its lock file now, its parquet on
    the next run): refused, naming both.

    >>> refuse_output_inside(["/data/corpus.jsonl"], "/data/out")
    >>> refuse_output_inside(["/data"], "/data/out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rlpt_verl.errors.UserError: --output /data/out is inside the input folder /data: its files would be read ...
    """
    out = os.path.realpath(output)
    for path in paths:
        real = os.path.realpath(path)
        if (os.path.isdir(path) or not os.path.exists(path) and not input_kind(path)) and (
            out == real or out.startswith(real.rstrip(os.sep) + os.sep)
        ):
            raise UserError(
                f"--output {output} is inside the input folder {path}: its files would be read as input; "
                f"choose an --output outside {path}"
            )


class CorpusReader:
    """Pipeline step 0: turn input paths into a stream of Documents.

    ``stats.dropped`` counts skipped documents by reason; ``files_skipped`` counts whole files
    (binary, unsupported format, unreadable, corrupt archive) and ``files_skipped_examples`` names them.
    """

    name = "read"

    def __init__(self, paths: list[str], config: ReaderConfig | None = None, output: str | None = None):
        if output:
            refuse_output_inside(paths, output)
        self.config = config or ReaderConfig()
        self.stats = StepStats(self.name)
        self._skips = FileSkips()
        self.files_skipped: Counter = self._skips.counts
        self.files_skipped_examples: dict[str, list[str]] = self._skips.examples
        self.dataset_splits: dict[str, str] = {}  # datasets folder -> "split (of a, b)" read from it
        self.inputs = discover(paths, self._skips)
        if not self.inputs:
            raise UserError(f"no readable input files under: {', '.join(paths)}")

    def __iter__(self) -> Iterator[Document]:
        for kind, path in self.inputs:
            try:
                yield from getattr(self, f"_read_{kind}")(path)
            except _ARCHIVE_ERRORS as e:  # a truncated or corrupt archive, a file that vanished
                self.skip_file(_archive_reason(e), path)

    def skip_file(self, reason: str, path: str) -> None:
        self._skips.add(reason, path)

    # -- one record -------------------------------------------------------------------------
    def _make(self, record, default_id: str, source: str) -> Document | None:
        cfg = self.config
        if not isinstance(record, dict):
            self.stats.drop("not_an_object")
            return None
        if cfg.text_field not in record or record[cfg.text_field] is None:
            self.stats.drop("missing_text_field")
            return None
        text = record[cfg.text_field]
        if not isinstance(text, str):
            self.stats.drop("text_not_string")
            return None
        doc_id = default_id
        if cfg.id_field:
            if record.get(cfg.id_field) is None:
                self.stats.drop("missing_id_field")
                return None
            doc_id = str(record[cfg.id_field])
        return self._check(Document(text=text, id=doc_id, source=source))

    def _check(self, doc: Document) -> Document | None:
        if "\x00" in doc.text:
            self.stats.drop("binary_content")
            return None
        if len(doc.text) > self.config.max_doc_chars:
            self.stats.drop("too_large")
            return None
        if not doc.text.strip():
            self.stats.drop("empty")
            return None
        self.stats.forwarded += 1
        return doc

    @staticmethod
    def _looks_binary(path: str) -> bool:
        with open_binary(path) as f:
            return b"\x00" in f.read(8192)

    # -- formats ----------------------------------------------------------------------------
    def _read_jsonl(self, path: str) -> Iterator[Document]:
        if self._looks_binary(path):
            self.skip_file("binary_file", path)
            return
        with open_binary(path) as f:
            for line_no, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                if len(raw) > 4 * self.config.max_doc_chars + 1024:
                    self.stats.drop("too_large")
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.stats.drop("invalid_utf8")
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    self.stats.drop("malformed_json")
                    continue
                doc = self._make(record, f"{path}:{line_no}", path)
                if doc:
                    yield doc

    def _read_json(self, path: str) -> Iterator[Document]:
        """A JSON array of records, one record, or JSON Lines saved as .json."""
        with open_binary(path) as f:
            head = f.read(4096).lstrip()
        if head[:1] != b"[":
            yield from self._read_jsonl(path)
            return
        try:
            with open_binary(path) as f:
                records = json.loads(f.read().decode("utf-8"))
        except UnicodeDecodeError:
            self.skip_file("invalid_utf8", path)
            return
        except json.JSONDecodeError:
            self.skip_file("malformed_json", path)
            return
        for i, record in enumerate(records):
            doc = self._make(record, f"{path}[{i}]", path)
            if doc:
                yield doc

    def _read_txt(self, path: str) -> Iterator[Document]:
        limit = 4 * self.config.max_doc_chars
        if os.path.getsize(path) > limit:
            self.stats.drop("too_large")
            return
        with open_binary(path) as f:
            raw = f.read(limit + 1)  # a compressed file's size says little about its text: read at most this
        if len(raw) > limit:
            self.stats.drop("too_large")
            return
        if b"\x00" in raw:
            self.skip_file("binary_file", path)
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.drop("invalid_utf8")
            return
        doc = self._check(Document(text=text, id=path, source=path))
        if doc:
            yield doc

    def _columns(self, available: list[str], path: str) -> list[str]:
        cfg = self.config
        wanted = [cfg.text_field] + ([cfg.id_field] if cfg.id_field else [])
        missing = [c for c in wanted if c not in available]
        if missing:
            raise UserError(
                f"{path}: no column {missing[0]!r} (columns: {', '.join(available)}); "
                "choose one with --text-field / --id-field"
            )
        return wanted

    def _read_parquet(self, path: str) -> Iterator[Document]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception:  # not a parquet file, truncated, ...
            self.skip_file("unreadable_parquet", path)
            return
        columns = self._columns(pf.schema_arrow.names, path)
        row = 0
        for batch in pf.iter_batches(batch_size=_BATCH, columns=columns):
            for record in batch.to_pylist():
                doc = self._make(record, f"{path}#{row}", path)
                row += 1
                if doc:
                    yield doc

    def _read_hf(self, path: str) -> Iterator[Document]:
        import datasets

        loaded = datasets.load_from_disk(path)
        if isinstance(loaded, datasets.DatasetDict):
            names = sorted(loaded.keys())
            name = choose_split(names, self.config.split, self.config.prefer, path)
            self.dataset_splits[path] = f"{name} (of {', '.join(names)})"
            splits = [(name, loaded[name])]
        else:
            splits = [("", loaded)]
        for split, ds in splits:
            columns = self._columns(list(ds.column_names), path)
            prefix = f"{path}/{split}" if split else path
            row = 0
            for batch in ds.select_columns(columns).iter(batch_size=_BATCH):
                for i in range(len(batch[columns[0]])):
                    record = {c: batch[c][i] for c in columns}
                    doc = self._make(record, f"{prefix}#{row}", path)
                    row += 1
                    if doc:
                        yield doc


def _archive_errors() -> tuple:
    import lzma

    import zstandard

    return (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError)


_ARCHIVE_ERRORS = _archive_errors()


def _archive_reason(e: Exception) -> str:
    """Why a file could not be read to its end (the documents before the damage were kept)."""
    if isinstance(e, EOFError) or "truncated" in str(e).lower() or "end of stream" in str(e).lower():
        return "truncated_archive"
    return "unreadable_file"


class RecordReader(CorpusReader):
    """Streams whole records (``(default_id, dict)``) instead of documents, e.g. instruction data.

    Same formats and bad-record accounting as :class:`CorpusReader`; ``.txt`` files hold no records
    and are skipped and counted.
    """

    name = "read_records"

    def _make(self, record, default_id: str, source: str):
        if not isinstance(record, dict):
            self.stats.drop("not_an_object")
            return None
        self.stats.forwarded += 1
        return default_id, record

    def _columns(self, available: list[str], path: str) -> list[str]:
        return list(available)

    def _read_txt(self, path: str):
        self.skip_file("txt_has_no_records", path)
        return iter(())
