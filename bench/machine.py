"""Machine fingerprints: which kind of machine a run's numbers came from.

Float results are bitwise-reproducible on one kind of machine only: the CPU's vector units decide
which kernels torch and its BLAS pick, and those kernels sum in different orders. Every run records

* ``cpu_model`` (``/proc/cpuinfo``'s model name, or the platform's processor string),
* ``isa``: the widest vector instruction set the CPU offers (``AMX``, ``AVX-512``, ``AVX2``, ``AVX``,
  ``SSE4.2``; ``SVE`` / ``NEON`` on ARM),
* ``cpu_capability``: the kernel level torch dispatches to (``torch.backends.cpu.get_cpu_capability()``),
* ``torch``, ``blas`` and ``onednn`` versions, the ``threads`` the run used, ``os``.

A machine's ``kind`` is a short hash of everything but the OS string: two runs of one kind are
expected to be bitwise-equal for equal seeds and code; runs of different kinds are not, and the
gate and the replication pages say so.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from functools import lru_cache

# fields that decide float results, in the order they are hashed and shown
KIND_FIELDS = ("cpu_model", "isa", "cpu_capability", "torch", "blas", "onednn", "threads")
FIELDS = (*KIND_FIELDS, "os")

_ISA_LEVELS = [  # (flag in /proc/cpuinfo, level), widest first
    ("amx_tile", "AMX"),
    ("avx512f", "AVX-512"),
    ("avx2", "AVX2"),
    ("avx", "AVX"),
    ("sse4_2", "SSE4.2"),
    ("sve", "SVE"),
    ("asimd", "NEON"),
]


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_model(cpuinfo: str | None = None) -> str:
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for key in ("model name", "Model", "Hardware", "cpu model"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if m:
            return " ".join(m.group(1).split())
    return platform.processor() or platform.machine() or "unknown"


def isa_level(cpuinfo: str | None = None) -> str:
    """The widest vector instruction set named in the CPU's flags (``unknown`` without them)."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    flags = set(m.group(1).split()) if m else set()
    for flag, level in _ISA_LEVELS:
        if flag in flags:
            return level
    return "unknown"


def _torch_libraries() -> tuple[str, str]:
    """(BLAS, oneDNN) as torch's build configuration names them."""
    import torch

    config = torch.__config__.show()
    blas = "unknown"
    m = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    if m:
        blas = f"MKL {m.group(1)}"
    else:
        m = re.search(r"BLAS_INFO=(\w+)", config)
        if m:
            blas = m.group(1)
    m = re.search(r"(?:MKL-DNN|oneDNN) v([\d.]+)", config)
    return blas, (m.group(1) if m else "none")


@lru_cache(maxsize=1)
def _static() -> dict:
    import torch

    info = _cpuinfo()
    blas, onednn = _torch_libraries()
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch older than 2.1
        capability = "unknown"
    return {
        "cpu_model": cpu_model(info),
        "isa": isa_level(info),
        "cpu_capability": capability,
        "torch": torch.__version__,
        "blas": blas,
        "onednn": onednn,
        "os": platform.platform(),
    }


def kind_of(info: dict) -> str:
    """The machine kind: 10 hex digits over the fields that decide float results."""
    blob = json.dumps({k: info.get(k) for k in KIND_FIELDS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def fingerprint() -> dict:
    """This process's machine fingerprint (the torch thread count as it is now), with its kind."""
    import torch

    info = {**_static(), "threads": torch.get_num_threads()}
    return {**info, "kind": kind_of(info)}


def label(info: dict) -> str:
    """One line for a reader: ``Intel(R) Xeon(R) Processor · AMX · torch AVX512 · 1 thread``."""
    if not info:
        return "not recorded"
    threads = info.get("threads")
    parts = [
        info.get("cpu_model") or "unknown CPU",
        info.get("isa") or "unknown ISA",
        f"torch {info.get('cpu_capability') or '?'}",
    ]
    if threads is not None:
        parts.append(f"{threads} thread" + ("" if threads == 1 else "s"))
    return " · ".join(str(p) for p in parts)


def parse(blob) -> dict:
    """A stored fingerprint (JSON text, or nothing for runs recorded before fingerprints)."""
    if not isinstance(blob, str) or not blob:
        return {}
    try:
        out = json.loads(blob)
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}
