"""Paper-scale resources from the Hugging Face hub: checked before any training starts.

A suite's ``lm:`` section may name hub resources: a pretrained model (``model.base``), a
tokenizer, a gold classifier (``gold: hf:NAME``) and a dataset (``corpus: {source: hf}``). Each
is either a local path, already in the local Hugging Face cache, or downloaded on first use —
which needs the hub. ``preflight`` finds what is neither local nor cached; if the hub is
unreachable it raises ``HubError`` with one message naming every missing resource and how to
provide it, so ``bench run`` stops (exit 2) before any run starts. If everything is local or
cached it switches the loaders to offline mode, so no run waits on network timeouts.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

HUB_HOST = "huggingface.co"


class HubError(Exception):
    """Hub resources a suite needs are missing and the hub cannot be reached."""


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _model_cached(name: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(name, filename), str)
    except Exception:  # noqa: BLE001 - a malformed repo id is simply not cached
        return False


def _dataset_cached(name: str) -> bool:
    import datasets

    root = Path(datasets.config.HF_DATASETS_CACHE)
    return any(root.glob(name.replace("/", "___") + "*")) or any(root.glob(name.split("/")[-1] + "*"))


def needed(recipe: dict) -> list[tuple[str, str, bool]]:
    """(kind, name, available offline) for each hub resource of one LM recipe (``LMSetup.for_task``)."""
    out = []
    base, tok = recipe["model"].get("base"), recipe["tokenizer"].get("name")
    if base:
        out.append(("model", base, Path(base).exists() or _model_cached(base, "config.json")))
    if tok:
        out.append(("tokenizer", tok, Path(tok).exists() or _model_cached(tok, "tokenizer_config.json")))
    gold = recipe.get("gold") or ""
    for prefix, kind in (("hf:", "gold classifier"), ("hf-rm:", "judge reward model")):
        if gold.startswith(prefix):
            name = gold[len(prefix) :]
            out.append((kind, name, Path(name).exists() or _model_cached(name, "config.json")))
    corpus = recipe["corpus"]
    if corpus["source"] == "hf":
        name, files = corpus["dataset"], corpus.get("data_files")
        local = bool(files) and Path(files).exists() or Path(name).exists()
        out.append(("dataset", name if not files else f"{name} ({files})", local or _dataset_cached(name)))
    return out


def preflight(recipes: list[dict]) -> None:
    """Raises ``HubError`` when resources are missing offline and the hub is unreachable."""
    items = {(k, n): ok for r in recipes for k, n, ok in needed(r)}
    missing = [f"{kind} {name!r}" for (kind, name), ok in items.items() if not ok]
    if not items:
        return
    if not missing:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        return
    if hub_reachable():
        return
    raise HubError(
        f"this suite needs {', '.join(missing)} from the Hugging Face hub, which cannot be reached from"
        " here, and none of them is in the local cache. Provide them by: (1) running once where the hub"
        " is reachable, or copying a Hugging Face cache from such a machine (HF_HOME, default"
        " ~/.cache/huggingface); or (2) pointing the suite's lm: section at local copies:"
        " model: {base: models/gpt2}, gold: hf:models/classifier,"
        " corpus: {source: hf, dataset: csv, data_files: data/reviews.csv} (local paths must lie in"
        " the suite file's folder or in the artifact cache, $BENCH_CACHE)."
    )
