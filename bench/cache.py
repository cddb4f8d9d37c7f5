"""The artifact cache: reference policies, preference data, tokenizers, SFT and reward models.

Artifacts live under ``$BENCH_CACHE`` (default ``.cache/bench``), keyed by the hash of the recipe
that builds them. An exclusive file lock beside each artifact makes concurrent workers build it
once; the others wait and load it. Writes go to a temporary name first and are renamed into
place, so a crash never leaves a half-written artifact behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

META = "bench-meta.json"


def recipe_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE", ".cache/bench"))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Exclusive lock beside ``path`` (one builder per artifact across processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached(path: Path, build: Callable[[], dict]) -> tuple[dict, bool]:
    """Loads ``path`` or builds, saves (atomically) and returns it; second value: was built."""
    with locked(path):
        if path.exists():
            return torch.load(path, weights_only=False), False
        data = build()
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        torch.save(data, tmp)
        os.replace(tmp, path)
        return data, True


def cached_json(path: Path, build: Callable[[], dict]) -> tuple[dict, bool]:
    """As ``cached`` for plain data (lists, numbers, strings) stored as JSON."""
    with locked(path):
        if path.exists():
            return json.loads(path.read_text()), False
        data = build()
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
        return data, True


def cached_dir(path: Path, build: Callable[[Path], dict]) -> tuple[dict, bool]:
    """A folder artifact (``save_pretrained`` output): ``build(tmp)`` fills ``tmp`` and returns
    metadata, stored as ``bench-meta.json``; the folder appears under ``path`` complete or not at all."""
    with locked(path):
        meta = path / META
        if meta.exists():
            return json.loads(meta.read_text()), False
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        info = build(tmp)
        (tmp / META).write_text(json.dumps(info))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
        return info, True
