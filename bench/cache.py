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
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

META = "bench-meta.json"
logger = logging.getLogger("bench.cache")


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


def _why(e: Exception) -> str:
    """The gist of a ``torch.load`` failure (the weights-only unpickler's reason, e.g.
    ``Unsupported global: GLOBAL numpy...``), not its multi-paragraph advice."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        reason = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        return reason.split(" was not an allowed")[0]
    return f"{type(e).__name__}: {text.strip().splitlines()[0] if text.strip() else ''}"


def load_artifact(path: Path) -> dict | None:
    """The artifact at ``path`` loaded with ``torch.load(weights_only=True)`` — tensors, lists,
    dicts, numbers and strings only; nothing in the file is executed — or None where it cannot
    be loaded so (a file of an older format holding other objects, a corrupt or foreign file)."""
    try:
        data = torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - UnpicklingError, EOFError, RuntimeError (not a zip), ...
        logger.warning("artifact %s cannot be loaded safely (%s); rebuilding it", path, _why(e))
        return None
    return data if isinstance(data, dict) else None


def cached(path: Path, build: Callable[[], dict]) -> tuple[dict, bool]:
    """Loads ``path`` or builds, saves (atomically) and returns it; second value: was built.

    Loading never unpickles arbitrary objects (``weights_only=True``); a file that does not load
    that way is rebuilt and replaced. ``build`` must return plain data: tensors, lists, tuples,
    dicts, numbers, strings."""
    with locked(path):
        if path.exists():
            data = load_artifact(path)
            if data is not None:
                return data, False
        data = build()
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        torch.save(data, tmp)
        try:  # what is saved must load back safely, or it would be rebuilt every time
            torch.load(tmp, weights_only=True)
        except Exception as e:  # noqa: BLE001 - the weights-only unpickler's refusal
            tmp.unlink(missing_ok=True)
            raise TypeError(f"artifact {path.name} is not plain data: {_why(e)}") from None
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
