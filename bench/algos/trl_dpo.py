"""``trl-dpo``: the same DPO run through Hugging Face TRL's ``DPOTrainer`` (cross-check).

Same π_SFT (as policy and, passed explicitly, as ``ref_model``), same preference texts, same β,
learning rate, batch size, gradient clip and constant schedule with AdamW (no weight decay) as the
project's ``lm-dpo``; fp32 on CPU, no gradient checkpointing. Evaluations run from a trainer
callback on the same schedule and protocol. TRL's ``ipo`` loss averages each log-ratio over the
completion's tokens: it is the project's ``ipo-mean`` row (the project's ``ipo`` sums them, as
the IPO paper writes it, and has no TRL counterpart), so ``dpo`` (TRL's ``sigmoid``), ``ipo-mean``
(TRL's ``ipo``) and ``hinge`` are offered here.
"""

from __future__ import annotations

import os
import tempfile
from typing import Literal

from pydantic import Field

from bench.algos.guard import Diverged, check_finite
from bench.algos.lm import OfflineLMConfig
from bench.artifacts import LMContext
from bench.lm.tasks import LMTask
from bench.lm_evaluation import LMEvaluator
from bench.recorder import Recorder

TRL_LOSS = {"dpo": "sigmoid", "ipo-mean": "ipo", "hinge": "hinge"}


class TRLDPOConfig(OfflineLMConfig):
    loss: Literal["dpo", "ipo-mean", "hinge"] = Field(
        "dpo", description="dpo (TRL: sigmoid), ipo-mean (TRL: ipo) or hinge"
    )
    beta: float = Field(0.1, gt=0, description="KL strength beta (ipo-mean: tau)")
    precompute_ref: bool = Field(True, description="reference log-probs once up front (as lm-dpo does)")


def make_trainer(policy, ref, tok, texts: tuple[list[str], list[str], list[str]], cfg: TRLDPOConfig,
                 steps: int, seed: int, out_dir: str, callbacks=()):  # fmt: skip
    """A ``DPOTrainer`` over (prompt, chosen, rejected) texts with ``cfg``'s hyperparameters."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    prompts, chosen, rejected = texts
    data = Dataset.from_dict({"prompt": prompts, "chosen": chosen, "rejected": rejected})
    args = DPOConfig(
        output_dir=out_dir,
        beta=cfg.beta,
        loss_type=[TRL_LOSS[cfg.loss]],
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=cfg.max_grad_norm,
        per_device_train_batch_size=cfg.batch_size,
        max_steps=max(1, steps),
        seed=seed,
        data_seed=seed,
        precompute_ref_log_probs=cfg.precompute_ref,
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        disable_tqdm=True,
        use_cpu=policy.device.type == "cpu",
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )
    return DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=data, processing_class=tok,
                      callbacks=list(callbacks))  # fmt: skip


def run_trl(make, steps: int, evaluator: LMEvaluator, recorder: Recorder, curves: dict[str, str]) -> None:
    """Trains a TRL trainer under bench's run contract: ``make(out_dir, callbacks)`` builds it;
    each update is counted, checked for NaN parameters and evaluated on the evaluator's schedule;
    TRL's logs named in ``curves`` (TRL name -> bench metric) become curve points; TRL's progress
    bars and log lines stay off the terminal; the final evaluation ends the run."""
    from transformers import PrinterCallback, TrainerCallback

    class Hooks(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            recorder.steps(state.global_step)
            # NaN / inf parameters after TRL's update stop the run (before it evaluates or steps again)
            check_finite(state.global_step, None, model, unit="update")
            if evaluator.due(state.global_step) and state.global_step < steps:
                evaluator(state.global_step, model)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                check_finite(state.global_step, {"loss": logs["loss"]}, unit="update")
            for name, metric in curves.items():
                if logs and name in logs:
                    recorder.curve(state.global_step, metric, float(logs[name]))

    quiet = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # TRL's bars (reference log-probs, ...) would go to the terminal
    try:
        with tempfile.TemporaryDirectory(prefix="bench-trl-") as out:
            trainer = make(out, [Hooks()])
            trainer.remove_callback(PrinterCallback)  # so would its log lines
            try:
                trainer.train()
            except Diverged:
                raise
            except Exception:  # an error of a run whose parameters went NaN: report the divergence
                check_finite(trainer.state.global_step, None, trainer.model, unit="update")
                raise
    finally:
        if quiet is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = quiet
    evaluator.final(steps, trainer.model)


def train_trl_dpo(task: LMTask, cfg: TRLDPOConfig, steps: int, seed: int, evaluator: LMEvaluator,
                  recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    prefs = ctx.preferences()
    train, _ = prefs.split()
    if not train:
        raise ValueError("no training preference pairs")
    policy = ctx.policy()
    curves = {"loss": "train/loss", "rewards/accuracies": "train/reward_accuracy",
              "rewards/margins": "train/reward_margin"}  # fmt: skip
    run_trl(
        lambda out, callbacks: make_trainer(policy, ctx.reference(), ctx.tokenizer(), prefs.texts(train), cfg,
                                            steps, seed, out, callbacks),
        steps, evaluator, recorder, curves,
    )  # fmt: skip
