"""Every input format of `rlpt build`/`rlpt prepare`, on real text (pydoc topics), plus dirty records."""

import json
from pydoc_data.topics import topics

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlpt_verl.data_tools import CorpusReader, ReaderConfig
from rlpt_verl.errors import UserError

TEXTS = [topics[k] for k in sorted(topics)[:6]]


def read(paths, **cfg):
    reader = CorpusReader([str(p) for p in paths], ReaderConfig(**cfg))
    return reader, list(reader)


def test_all_formats_yield_the_same_documents(tmp_path):
    import datasets

    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    (tmp_path / "a.json").write_text(json.dumps([{"text": t} for t in TEXTS]))
    pq.write_table(pa.table({"text": TEXTS}), tmp_path / "a.parquet", row_group_size=2)
    txt = tmp_path / "txt"
    txt.mkdir()
    for i, t in enumerate(TEXTS):
        (txt / f"{i}.txt").write_text(t)
    datasets.Dataset.from_dict({"text": TEXTS}).save_to_disk(str(tmp_path / "hf"))
    for path in ["a.jsonl", "a.json", "a.parquet", "txt", "hf"]:
        reader, docs = read([tmp_path / path])
        assert [d.text for d in docs] == TEXTS, path
        assert reader.stats.forwarded == len(TEXTS) and not reader.stats.dropped
    _, docs = read([tmp_path / "a.jsonl"], id_field="id")
    assert [d.id for d in docs] == [str(i) for i in range(len(TEXTS))]
    _, docs = read([tmp_path / "a.jsonl"])
    assert docs[2].id == f"{tmp_path / 'a.jsonl'}:3"


def _compress(data: bytes, ext: str) -> bytes:
    import bz2
    import gzip
    import lzma

    import zstandard

    return {
        ".gz": gzip.compress,
        ".bz2": bz2.compress,
        ".xz": lzma.compress,
        ".zst": zstandard.ZstdCompressor().compress,
    }[ext](data)


@pytest.mark.parametrize("ext", [".gz", ".zst", ".xz", ".bz2"])
def test_compressed_corpora_stream_like_plain_ones(tmp_path, ext):
    """The usual shapes of public dumps: .jsonl.gz, .jsonl.zst, .json.xz, .txt.bz2, ... named or inside a folder."""
    jsonl = "".join(json.dumps({"text": t}) + "\n" for t in TEXTS).encode()
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / f"a.jsonl{ext}").write_bytes(_compress(jsonl, ext))
    (folder / f"b.json{ext}").write_bytes(_compress(json.dumps([{"text": t} for t in TEXTS]).encode(), ext))
    (folder / f"c.txt{ext}").write_bytes(_compress(TEXTS[0].encode(), ext))
    reader, docs = read([folder / f"a.jsonl{ext}"])
    assert [d.text for d in docs] == TEXTS and not reader.files_skipped
    reader, docs = read([folder])
    assert [d.text for d in docs] == TEXTS + TEXTS + TEXTS[:1]
    assert not reader.files_skipped and not reader.stats.dropped


@pytest.mark.parametrize("ext", [".gz", ".zst", ".xz", ".bz2"])
def test_a_truncated_archive_keeps_what_it_had_and_is_named(tmp_path, ext):
    every = [topics[k] for k in sorted(topics)]  # ≈ 1 MB of varied text: several compressed blocks
    data = _compress("".join(json.dumps({"text": t}) + "\n" for t in every).encode(), ext)
    (tmp_path / f"cut.jsonl{ext}").write_bytes(data[: len(data) // 2])
    reader, docs = read([tmp_path])
    assert len(docs) < len(every) and (docs or ext == ".bz2")  # bz2's 900 kB blocks: half a file holds none
    assert [d.text for d in docs] == every[: len(docs)]  # what came before the damage, in order
    (reason,) = reader.files_skipped
    assert reason in ("truncated_archive", "unreadable_file")
    assert reader.files_skipped_examples[reason] == [str(tmp_path / f"cut.jsonl{ext}")]


def test_files_a_folder_holds_but_cannot_read_are_counted_and_named(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": TEXTS[0]}) + "\n")
    (tmp_path / "notes.csv").write_text("text\nhello\n")
    (tmp_path / "table.parquet.gz").write_bytes(b"\x1f\x8b")
    (tmp_path / "blob.jsonl").write_bytes(b"\x00\x01\x02")
    reader, docs = read([tmp_path])
    assert [d.text for d in docs] == [TEXTS[0]]
    assert reader.files_skipped == {"unsupported_format": 2, "binary_file": 1}
    assert reader.files_skipped_examples["unsupported_format"] == [
        str(tmp_path / "notes.csv"),
        str(tmp_path / "table.parquet.gz"),
    ]


def test_folders_are_recursive_sorted_and_find_datasets(tmp_path):
    import datasets

    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / "b" / "2.txt").write_text(TEXTS[1])
    (tmp_path / "b" / "c" / "1.txt").write_text(TEXTS[0])
    (tmp_path / "a.txt").write_text(TEXTS[2])
    (tmp_path / "notes.md").write_text("ignored")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": [TEXTS[3]]})}).save_to_disk(
        str(tmp_path / "b" / "hf")
    )
    reader, docs = read([tmp_path])
    assert [d.text for d in docs] == [TEXTS[2], TEXTS[1], TEXTS[0], TEXTS[3]]  # sorted by path
    assert reader.files_skipped == {"unsupported_format": 1}


def test_bad_records_are_counted_not_fatal(tmp_path):
    with open(tmp_path / "x.jsonl", "wb") as f:
        f.write(b'{"text": "ok one. fine."}\n[1, 2]\n{"text": null}\n\n{"text": "nul \\u0000 byte"}\n{bad\n')
    reader, docs = read([tmp_path / "x.jsonl"])
    assert len(docs) == 1
    assert reader.stats.dropped == {
        "not_an_object": 1,
        "missing_text_field": 1,
        "binary_content": 1,
        "malformed_json": 1,
    }
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    reader, docs = read([tmp_path / "broken.parquet"])
    assert docs == [] and reader.files_skipped == {"unreadable_parquet": 1}


@pytest.mark.parametrize(
    "name, message", [("missing.jsonl", "input path not found"), ("x.csv", "unknown input format")]
)
def test_user_mistakes(tmp_path, name, message):
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(UserError, match=message):
        CorpusReader([str(tmp_path / name)])


def test_missing_column_names_the_columns(tmp_path):
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "a.parquet")
    with pytest.raises(UserError, match=r"no column 'text' \(columns: body\).*--text-field"):
        list(CorpusReader([str(tmp_path / "a.parquet")]))


def test_a_datasetdict_folder_gives_one_split_never_all(tmp_path):
    """A `save_to_disk` DatasetDict (train + test): the corpus reads train only and names it; --split picks
    another; several splits without a train one are refused in one line naming --split."""
    import datasets

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": [TEXTS[0]]}),
            "test": datasets.Dataset.from_dict({"text": [TEXTS[1]]}),
        }
    )
    dd.save_to_disk(str(tmp_path / "hf"))
    reader = CorpusReader([str(tmp_path / "hf")])
    assert [d.text for d in reader] == [TEXTS[0]]
    assert reader.dataset_splits == {str(tmp_path / "hf"): "train (of test, train)"}
    picked = CorpusReader([str(tmp_path / "hf")], ReaderConfig(split="test"))
    assert [d.text for d in picked] == [TEXTS[1]]
    with pytest.raises(UserError, match="has no split 'dev'.*fix --split"):
        list(CorpusReader([str(tmp_path / "hf")], ReaderConfig(split="dev")))
    datasets.DatasetDict({k: dd["train"] for k in ("test", "validation")}).save_to_disk(str(tmp_path / "bench"))
    with pytest.raises(UserError, match="holds the splits test, validation: choose one with --split"):
        list(CorpusReader([str(tmp_path / "bench")]))
