"""Reference bands and π_SFT's calibration with margin.

A task's reference model (π_SFT) is the start of every method and the origin of every frontier.
If its baseline row lands inside or outside its band depending on float summation order, the task
is not sound: verdicts on one machine do not travel to another. So

* ``bench.bands.BANDS`` declares, per LM task, where π_SFT's row must lie (summarisation: the win
  rate against the references at T = 1 in 15–45%) and the margin inside the band that every
  perturbed build must keep;
* ``check`` evaluates a π_SFT against its band once (cached beside it) — every LM run logs the
  result when its context is built, and reports state it at the top;
* ``build_and_evaluate`` builds π_SFT under one perturbation this machine can make (``variants``:
  1 and 2 threads, the loss with the LM head at the reference positions only — the same loss, its
  gradient summed in another order —, other SFT seeds) and evaluates it; ``scripts/calibrate_sft.py
  SUITE`` runs every variant and appends the rows, with the machine's fingerprint, to a CSV: the
  perturbation table of the LM guide (``table_markdown``). Another CPU kind adds its own rows by
  running the same command there.

Layer: pipeline.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bench import machine
from bench.artifacts import LMContext
from bench.bands import BANDS
from bench.cache import cached_json, recipe_hash
from bench.lm.models import build_tiny_lm, load_lm
from bench.lm_evaluation import LMEvaluator
from bench.pipeline import lm as pipeline_lm
from bench.recorder import Recorder

TEMPERATURES = (0.0, 0.5, 1.0)
EVAL_SEEDS = (0, 1, 2, 3, 4)  # the run seeds whose evaluation generators score π_SFT


def head_only_loss(
    model, seqs: list[list[int]], pad_id: int, starts: list[int] | None = None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """``bench.pipeline.lm.lm_loss`` with the LM head applied at the scored positions only: the same
    mean next-token loss, its gradient summed in another order (a calibration perturbation)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    scored = torch.zeros(ids.shape, dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        attn[i, : len(s)] = 1
        scored[i, (starts[i] if starts else 0) : len(s)] = True
    hidden = model.transformer(input_ids=ids, attention_mask=attn).last_hidden_state
    target = scored[:, 1:]  # position t predicts token t + 1
    logits = model.lm_head(hidden[:, :-1][target])
    return F.cross_entropy(logits.float(), ids[:, 1:][target], label_smoothing=label_smoothing)


def evaluate(
    ctx: LMContext, model_path: str, seeds=EVAL_SEEDS, temperatures=TEMPERATURES
) -> dict[str, float]:
    """π_SFT's mean judge score and win rate against the references per temperature, each the
    mean over the evaluation generators of ``seeds`` (T = 0 is greedy: one evaluation)."""
    model = load_lm(model_path).to(ctx.setup.torch_device())
    model.eval()
    out: dict[str, list[float]] = {}
    for seed in seeds:
        rec = Recorder()
        ev = LMEvaluator(ctx, rec, seed, 10**9, list(temperatures))
        temps = [t for t in temperatures if t > 0 or seed == seeds[0]]
        for t in temps:
            completions = ev._sample(model, ev.prompt_ids, t)
            texts = ev.tok.batch_decode(completions, skip_special_tokens=True)
            gold = ev.gold(texts)
            out.setdefault(f"score_T{t:g}", []).append(float(gold.mean()))
            if ev.references is not None:
                ref = ev.reference_gold()
                wins = np.where(np.isclose(gold, ref), 0.5, (gold > ref).astype(float))
                out.setdefault(f"win_T{t:g}", []).append(float(wins.mean()))
    return {k: float(np.mean(v)) for k, v in out.items()}


def check(ctx: LMContext) -> dict | None:
    """π_SFT of a run's context against its task's band, evaluated once per π_SFT (cached beside
    it): {value, lo, hi, margin, inside, text}; None for a task without a band."""
    band = BANDS.get(ctx.task.id)
    if band is None:
        return None
    path = ctx.sft_path()

    def build() -> dict:
        scores = evaluate(ctx, str(path), seeds=EVAL_SEEDS[:1], temperatures=(band.temperature,))
        key = ("win" if band.metric == "eval/win_rate" else "score") + f"_T{band.temperature:g}"
        return {"value": scores[key], "machine": machine.fingerprint()["kind"]}

    data, _ = cached_json(path.with_name(path.name + "-band-" + recipe_hash(band.__dict__) + ".json"), build)
    value = float(data["value"])
    inside = band.inside(value)
    where = "inside" if inside else "OUTSIDE"
    return dict(value=value, lo=band.lo, hi=band.hi, margin=band.margin, inside=inside,
                text=f"pi_SFT {band.text()}: {value:.3f} ({where} the band; evaluation seed 0)")  # fmt: skip


# -- the perturbation table ---------------------------------------------------------------------


def variants(sft_seeds: list[int], base_seed: int) -> list[dict]:
    """The perturbations: the recipe as it is (1 thread), 2 threads, the head-only loss, and the
    other SFT seeds."""
    head = "LM head at the reference positions only"
    out = [dict(variant="as specified", seed=base_seed, threads=1, head_only=False),
           dict(variant="2 threads", seed=base_seed, threads=2, head_only=False),
           dict(variant=head, seed=base_seed, threads=1, head_only=True)]  # fmt: skip
    out += [
        dict(variant=f"SFT seed {s}", seed=s, threads=1, head_only=False) for s in sft_seeds if s != base_seed
    ]
    return out


def build_and_evaluate(ctx: pipeline_lm.LMPipeline, recipe_label: str, v: dict, workdir: Path, log) -> dict:
    """Trains one π_SFT under perturbation ``v`` (not cached: a calibration build) and evaluates it."""
    torch.set_num_threads(v["threads"])
    tok = ctx.tokenizer()
    sft_docs, _ = ctx.documents()
    model = build_tiny_lm(ctx.setup.model, tok, v["seed"])
    head_only = mock.patch.object(pipeline_lm, "lm_loss", head_only_loss)
    patch = head_only if v["head_only"] else contextlib.nullcontext()
    t0 = time.perf_counter()
    with patch:
        info = pipeline_lm.train_sft(model, tok, sft_docs, ctx.setup.sft, v["seed"], log, ctx.task.split)
    seconds = time.perf_counter() - t0
    out = workdir / f"sft-{len(list(workdir.iterdir()))}"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    torch.set_num_threads(1)
    scores = evaluate(ctx, str(out))
    fp = machine.fingerprint()
    fp_threads = {**fp, "threads": v["threads"]}
    return dict(
        recipe=recipe_label, variant=v["variant"], sft_seed=v["seed"], threads=v["threads"],
        final_loss=info["loss_curve"][-1][1], train_seconds=round(seconds, 1), **scores,
        machine=machine.kind_of(fp_threads), cpu=machine.label(fp_threads),
    )  # fmt: skip


def table_markdown(table: pd.DataFrame, task: str = "summarization") -> str:
    """The perturbation table as Markdown: one row per build, then per recipe the lowest and highest
    value of the band's metric over its builds and whether all keep the band's margin."""
    band = BANDS[task]
    key = ("win" if band.metric == "eval/win_rate" else "score") + f"_T{band.temperature:g}"
    scores = [c for c in table.columns if c.startswith("score_T")]
    temps = " / ".join(c.removeprefix("score_T") for c in scores)
    wins = [c.replace("score", "win") for c in scores if c.replace("score", "win") in table.columns]
    win_head = f"win rate, T = {temps} | " if wins else ""
    score_head = f"{'judge' if wins else 'gold'} score, T = {temps}"
    head = f"| recipe | perturbation | machine | final loss | {win_head}{score_head} |"
    lines = [head, "|---|---|---|---:|" + ("---|" if wins else "") + "---|"]
    for r in table.itertuples():
        cells = [" / ".join(f"{table.loc[r.Index, c]:.3f}" for c in wins)] if wins else []
        cells.append(" / ".join(f"{table.loc[r.Index, c]:.2f}" for c in scores))
        lines.append(f"| {r.recipe} | {r.variant} | {r.machine} | {r.final_loss:.3f} | {' | '.join(cells)} |")
    inner = f"[{band.lo + band.margin:g}, {band.hi - band.margin:g}]"
    lines += ["", f"| recipe | builds | lowest {key} | highest {key} | every build within {inner} |",
              "|---|---:|---:|---:|---|"]  # fmt: skip
    for recipe, g in table.groupby("recipe", sort=False):
        ok = all(band.with_margin(v) for v in g[key])
        lines.append(
            f"| {recipe} | {len(g)} | {g[key].min():.3f} | {g[key].max():.3f} | {'yes' if ok else 'no'} |"
        )
    return "\n".join(lines)


def append_row(out: Path, row: dict) -> None:
    """Appends one calibration build's row to the table ``out`` (a CSV; created if missing)."""
    table = pd.read_csv(out) if out.is_file() else pd.DataFrame()
    pd.concat([table, pd.DataFrame([row])], ignore_index=True).to_csv(out, index=False)
