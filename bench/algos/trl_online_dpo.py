"""``trl-online-dpo``: online DPO run through TRL's ``OnlineDPOTrainer`` (``trl.experimental``, TRL 1.x),
the cross-check of ``lm-online-dpo``.

The same π_SFT (policy; the reference passed explicitly, a second copy of π_SFT), the same training
prompts (text: TRL tokenises them), the same judge as a TRL reward function (the frozen reward
model's raw score, or the gold), and the same hyperparameters: β and the loss (``dpo`` is TRL's
``sigmoid``, ``ipo`` its ``ipo``), prompts per step, sampling temperature with top-k and top-p off,
the missing-eos penalty, AdamW at a constant learning rate without weight decay and the gradient
clip. TRL samples with ``transformers``' ``generate`` and draws its own random numbers, so the two
agree in behaviour (the suites compare them), not sample for sample; on identical completions and
scores their losses and gradients are equal (``tests/unit/test_online_dpo.py``).
"""

from __future__ import annotations

import os

import numpy as np

from bench.algos.online_dpo import LMOnlineDPOConfig
from bench.algos.rlhf_ppo import SequenceScorer
from bench.algos.trl_dpo import run_trl
from bench.artifacts import LMContext
from bench.lm.tasks import LMTask
from bench.lm_evaluation import LMEvaluator
from bench.recorder import Recorder

TRL_LOSS = {"dpo": "sigmoid", "ipo": "ipo"}


class TRLOnlineDPOConfig(LMOnlineDPOConfig):
    """``lm-online-dpo``'s parameters, passed to TRL's ``OnlineDPOConfig``."""


def unpadded(ids, pad: int) -> list[int]:
    """A TRL completion without the padding after its end."""
    ids = list(ids)
    while ids and ids[-1] == pad:
        ids.pop()
    return ids


def online_dpo_args(cfg: LMOnlineDPOConfig, steps: int, seed: int, out_dir: str, max_new_tokens: int,
                    use_cpu: bool):  # fmt: skip
    """TRL's ``OnlineDPOConfig`` for ``cfg``."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # bench pins the TRL it cross-checks against
    from trl.experimental.online_dpo import OnlineDPOConfig

    return OnlineDPOConfig(
        output_dir=out_dir,
        beta=cfg.beta,
        loss_type=TRL_LOSS[cfg.loss],
        per_device_train_batch_size=cfg.prompts_per_batch,
        max_new_tokens=max_new_tokens,
        max_length=100_000,  # no left truncation (bench never truncates)
        temperature=cfg.temperature,
        top_p=1.0,
        top_k=0,
        missing_eos_penalty=cfg.missing_eos_penalty,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=cfg.max_grad_norm,
        max_steps=max(1, steps),
        seed=seed,
        data_seed=seed,
        disable_dropout=True,
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        disable_tqdm=True,
        use_cpu=use_cpu,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )


def online_dpo_trainer(policy, ref, tok, prompt_texts: list[str], args, reward_func, callbacks=()):
    """TRL's ``OnlineDPOTrainer`` on ``policy`` against ``ref`` over ``prompt_texts``. Sets the
    tokenizer to pad on the left (TRL's generation needs it); the caller restores it."""
    from datasets import Dataset

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.online_dpo import OnlineDPOTrainer

    tok.padding_side = "left"
    return OnlineDPOTrainer(model=policy, ref_model=ref, reward_funcs=reward_func, args=args,
                            train_dataset=Dataset.from_dict({"prompt": list(prompt_texts)}),
                            processing_class=tok, callbacks=list(callbacks))  # fmt: skip


def train_trl_online_dpo(task: LMTask, cfg: TRLOnlineDPOConfig, steps: int, seed: int, evaluator: LMEvaluator,
                         recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    tok = ctx.tokenizer()
    pad = tok.pad_token_id
    # the judge's raw score (the reward model's, which is also the evaluations' proxy; or the gold)
    scorer = SequenceScorer(ctx, cfg.judge, recorder, cfg.rm_pairs, evaluator, standardise=False)

    def judge(prompts, completions, completion_ids, **_) -> list[float]:
        ids = tok(list(prompts), add_special_tokens=False)["input_ids"]
        comps = [unpadded(c, pad) for c in completion_ids]
        return np.asarray(scorer.raw(list(prompts), ids, comps), float).tolist()

    judge.__name__ = f"bench_{cfg.judge}"
    train = [t for t, _ in ctx.prompts()["train"]]
    policy, ref = ctx.policy(), ctx.reference()
    curves = {"loss": "train/loss", "rewards/margins": "train/reward_margin",
              "rewards/accuracies": "train/reward_accuracy", "objective/scores": "train/score",
              "objective/scores_margin": "train/score_margin",
              "val/contain_eos_token": "train/contain_eos"}  # fmt: skip
    side = tok.padding_side
    try:
        run_trl(
            lambda out, callbacks: online_dpo_trainer(
                policy, ref, tok, train,
                online_dpo_args(cfg, steps, seed, out, ctx.setup.max_new_tokens, policy.device.type == "cpu"),
                judge, callbacks,
            ),
            steps, evaluator, recorder, curves,
        )  # fmt: skip
    finally:
        tok.padding_side = side
