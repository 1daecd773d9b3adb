"""CLI cold start: `digestqa --help` and `digestqa ask` on a built sample index, plus -X importtime."""
from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "哪篇论文在抖音搜索部署了？"


def _env(index: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DIGESTQA_"))}
    env.update({"DIGESTQA_INDEX": str(index), "DIGESTQA_ANSWERER": "extractive", "ORT_DISABLE_TELEMETRY": "1",
                "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(REPO)})
    return env


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd: list[str], env: dict, cpu: list | None = None) -> tuple[float, subprocess.CompletedProcess]:
    c0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    if cpu is not None:
        cpu.append(_children_cpu() - c0)
    return time.perf_counter() - t0, proc


def _timed(cmd: list[str], env: dict, repeat: int) -> dict:
    times, cpu = [], []
    for _ in range(repeat):
        dt, proc = _run(cmd, env, cpu)
        if proc.returncode != 0:
            return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"}
        times.append(dt)
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3), "runs": len(times),
            "cpu_median_s": round(statistics.median(cpu), 3)}


def importtime(cmd: list[str], env: dict, top: int = 10) -> list[dict]:
    """Top-level imports by cumulative time (python -X importtime)."""
    _, proc = _run([sys.executable, "-X", "importtime", *cmd[1:]], env)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and len(m.group(3)) <= 1:  # top-level (first nesting level) imports only
            rows.append({"module": m.group(4), "cumulative_ms": round(int(m.group(2)) / 1000, 1)})
    return sorted(rows, key=lambda r: -r["cumulative_ms"])[:top]


def run(work: Path, repeat: int = 3) -> dict:
    index = work / "cold-index"
    env = _env(index)
    py = sys.executable
    dt, proc = _run([py, "-m", "rag.cli", "ingest", "--quiet", *map(str, _sample_paths())], env)
    if proc.returncode != 0:
        return {"error": f"sample ingest failed: {proc.stderr.strip()[-500:]}"}
    ask = [py, "-m", "rag.cli", "ask", QUESTION]
    out = {"sample_ingest_s": round(dt, 2), "help": _timed([py, "-m", "rag.cli", "--help"], env, repeat),
           "ask": _timed(ask, env, repeat)}
    _, proc = _run([*ask, "--json"], env)
    if proc.returncode == 0:
        out["ask_timings_ms"] = json.loads(proc.stdout.strip().splitlines()[-1]).get("timings_ms")
    out["importtime_ask"] = importtime(ask, env)
    out["importtime_help"] = importtime([py, "-m", "rag.cli", "--help"], env, top=5)
    return out


def _sample_paths() -> list[Path]:
    root = REPO / "rag" / "data" / "sample"
    return sorted(p for p in root.iterdir() if p.suffix == ".txt")
