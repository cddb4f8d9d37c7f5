"""``trl-grpo``: GRPO run through Hugging Face TRL's ``GRPOTrainer`` (cross-check of ``lm-grpo``).

The same π_SFT (policy; TRL loads its reference from the same checkpoint), the same training
prompts, the same sequence score (the frozen reward model's or the gold reward, standardised over
π_SFT's preference completions and clipped, as ``lm-grpo``'s ``SequenceScorer`` gives it), and the
same hyperparameters: k completions per prompt (``num_generations``), ``prompts_per_batch`` × k
completions per optimizer step with one generation per ``iterations`` steps
(``steps_per_generation`` 1, ``num_iterations``), ratio clip ε, KL coefficient β (k3 estimator,
not weighted by the importance ratio: ``use_bias_correction_kl=False``, where TRL 1.16 defaults to
True; see ``grpo_args``), TRL's ``loss_type`` = ``aggregation`` and ``scale_rewards``, the sampling
temperature, AdamW at a constant learning rate without weight decay and the gradient clip. TRL
samples with ``transformers``' ``generate`` and draws its own random numbers, so the two agree in
behaviour (the suites compare them), not sample for sample; on identical log-probabilities their
losses and gradients are equal (``tests/unit/test_relatives.py``).
"""

from __future__ import annotations

import numpy as np

from bench.algos.rlhf_ppo import LMGRPOConfig, SequenceScorer
from bench.algos.trl_dpo import run_trl
from bench.artifacts import LMContext
from bench.lm.tasks import LMTask
from bench.lm_evaluation import LMEvaluator
from bench.recorder import Recorder


class TRLGRPOConfig(LMGRPOConfig):
    """``lm-grpo``'s parameters, passed to TRL's ``GRPOConfig``."""


def grpo_args(cfg: TRLGRPOConfig, steps: int, seed: int, out_dir: str, max_completion_length: int,
              use_cpu: bool):  # fmt: skip
    """TRL's ``GRPOConfig`` for ``cfg``: the arguments ``make_trainer`` gives ``GRPOTrainer``.

    ``use_bias_correction_kl=False``: TRL 1.16 defaults to True, which multiplies each token's k3
    KL term by the importance ratio π/π_old (DeepSeek-V3.2's unbiased reverse-KL gradient). The
    ratio is differentiable, so that changes the gradient whenever β ≠ 0, on-policy included;
    ``lm-grpo`` (``losses.grpo_loss``) adds β · k3 unweighted, as the GRPO paper does. With the
    flag off TRL's per-token loss is ``lm-grpo``'s, value and gradient
    (``tests/unit/test_relatives.py``)."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=out_dir,
        num_generations=cfg.k,
        per_device_train_batch_size=cfg.prompts_per_batch * cfg.k,
        steps_per_generation=1,
        num_iterations=cfg.iterations,
        max_completion_length=max_completion_length,
        temperature=cfg.temperature,
        top_p=1.0,
        top_k=0,
        beta=cfg.kl_coef,
        use_bias_correction_kl=False,  # lm-grpo's KL term: β · k3, not weighted by the ratio
        epsilon=cfg.clip_range,
        loss_type=cfg.aggregation,
        scale_rewards=cfg.scale_rewards,
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
        logging_steps=5,
        disable_tqdm=True,
        use_cpu=use_cpu,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )


def grpo_trainer(policy, tok, prompts: list[tuple[str, list[int]]], args, reward_func, callbacks=()):
    """TRL's ``GRPOTrainer`` on ``policy`` (TRL loads the reference from the policy's checkpoint)
    over the (text, token ids) ``prompts``, with the ``GRPOConfig`` ``args``. Sets the tokenizer to
    pad on the left (TRL's generation needs it); the caller restores it."""
    from datasets import Dataset
    from trl import GRPOTrainer

    data = Dataset.from_dict(
        {"prompt": [t for t, _ in prompts], "prompt_token_ids": [list(i) for _, i in prompts]}
    )
    tok.padding_side = "left"  # TRL pads prompts on the left for generation
    return GRPOTrainer(model=policy, reward_funcs=reward_func, args=args, train_dataset=data,
                       processing_class=tok, callbacks=list(callbacks))  # fmt: skip


def make_trainer(ctx: LMContext, cfg: TRLGRPOConfig, steps: int, seed: int, out_dir: str, reward_func,
                 callbacks=()):  # fmt: skip
    train = ctx.prompts()["train"]  # (text, ids)
    policy = ctx.policy()
    args = grpo_args(cfg, steps, seed, out_dir, ctx.setup.max_new_tokens, use_cpu=policy.device.type == "cpu")
    return grpo_trainer(policy, ctx.tokenizer(), train, args, reward_func, callbacks)


def train_trl_grpo(task: LMTask, cfg: TRLGRPOConfig, steps: int, seed: int, evaluator: LMEvaluator,
                   recorder: Recorder, ctx: LMContext) -> None:  # fmt: skip
    scorer = SequenceScorer(ctx, cfg.reward, recorder, cfg.rm_pairs, evaluator)

    def sequence_score(prompts, completions, completion_ids, prompt_token_ids, **_) -> list[float]:
        score = scorer(list(prompts), [list(p) for p in prompt_token_ids], [list(c) for c in completion_ids])
        return np.clip(score.numpy(), -cfg.clip_reward, cfg.clip_reward).astype(float).tolist()

    sequence_score.__name__ = f"bench_{cfg.reward}"
    # TRL's "kl" is the mean per-token k3 estimate (lm-grpo's train/kl is the sequence sum of k1)
    curves = {"loss": "train/loss", "reward": "train/score", "kl": "train/kl_token_k3",
              "completions/mean_length": "train/length"}  # fmt: skip
    tok = ctx.tokenizer()
    side = tok.padding_side
    try:
        run_trl(lambda out, callbacks: make_trainer(ctx, cfg, steps, seed, out, sequence_score, callbacks),
                steps, evaluator, recorder, curves)  # fmt: skip
    finally:
        tok.padding_side = side  # make_trainer pads prompts on the left for TRL's generation
