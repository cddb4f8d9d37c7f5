"""bench's built-in algorithms, registered through the public registry (``bench.api``'s
``register_algorithm`` and ``Algorithm`` record — the door plugins use too).

Every ``train`` has the signature ``train(task, cfg, env_steps, seed, evaluator, recorder)``;
alignment methods (``aligned=True``) also take the run's ``AlignmentContext`` (reference policy,
preference data) as a seventh argument and need the suite's ``alignment:`` section. LM methods
(``domain="lm"``) run on LM tasks, get an ``LMEvaluator`` and the run's ``LMContext`` (tokenizer,
π_SFT, preferences, reward model) and count their budget in optimizer updates. Both context types
are in ``bench.artifacts``: methods never import the pipeline that builds them.
"""

from __future__ import annotations

from functools import partial

from bench.algos import (
    aligned,
    dppo,
    external,
    grpo,
    lm,
    online_dpo,
    online_dpo_control,
    pg,
    ppo,
    rlhf_ppo,
    seed_batch,
    trl_dpo,
    trl_grpo,
    trl_online_dpo,
    trpo,
)
from bench.registry import ALGORITHMS, Algorithm, register_algorithm

BUILT_IN = [
        Algorithm(
            "pg",
            pg.PGConfig,
            pg.TASK_DEFAULTS,
            pg.train,
            "REINFORCE with reward-to-go, optional value baseline (project's own)",
            train_seeds=seed_batch.pg_train,
        ),
        Algorithm(
            "ppo",
            ppo.PPOConfig,
            ppo.TASK_DEFAULTS,
            ppo.train,
            "PPO, clipped or adaptive-KL objective, GAE (project's own)",
            train_seeds=seed_batch.ppo_train,
        ),
        Algorithm(
            "dppo",
            dppo.DPPOConfig,
            ppo.TASK_DEFAULTS,
            dppo.train,
            "Distributed PPO: W synchronous workers, gradients all-reduced (torch.distributed)",
        ),
        Algorithm(
            "trpo",
            trpo.TRPOConfig,
            trpo.TASK_DEFAULTS,
            trpo.train,
            "TRPO: natural-gradient step in a KL trust region, conjugate gradient + line search"
            " (project's own)",
        ),
        Algorithm(
            "sb3-ppo",
            external.SB3Config,
            external.TASK_DEFAULTS["sb3-ppo"],
            partial(external.train, "sb3-ppo"),
            "stable-baselines3 PPO (rl-zoo defaults)",
        ),
        Algorithm(
            "sb3-a2c",
            external.SB3Config,
            external.TASK_DEFAULTS["sb3-a2c"],
            partial(external.train, "sb3-a2c"),
            "stable-baselines3 A2C (rl-zoo defaults)",
        ),
        Algorithm(
            "sb3-trpo",
            external.SB3Config,
            external.TASK_DEFAULTS["sb3-trpo"],
            partial(external.train, "sb3-trpo"),
            "sb3-contrib TRPO (rl-zoo defaults)",
        ),
        Algorithm("reference", aligned.ReferenceConfig, {}, aligned.train_reference,
                  "the reference policy pi_ref itself (frontier origin)", aligned=True),
        Algorithm("dpo", aligned.DPOConfig, {}, aligned.train_dpo,
                  "DPO / IPO / hinge / SimPO / ORPO / KTO on trajectory preferences"
                  " (offline; budget = updates)",
                  aligned=True),
        Algorithm("online-dpo", online_dpo_control.OnlineDPOConfig, {}, online_dpo_control.train_online_dpo,
                  "online DPO / IPO: segment pairs sampled from the current policy each batch, labelled by"
                  " the true return (gold) or the reward model, loss to pi_ref (budget = updates)",
                  aligned=True),
        Algorithm("dpo-online-data", online_dpo_control.OnlineDataDPOConfig, {},
                  online_dpo_control.train_dpo_on_online_data,
                  "offline DPO from pi_ref on the pairs an online-dpo run of the same seed and settings"
                  " sampled (Tang et al.'s coverage test; budget = updates)",
                  aligned=True),
        Algorithm("preferred-bc", aligned.BCConfig, {}, aligned.train_preferred_bc,
                  "behaviour cloning on preferred segments (offline; budget = updates)",
                  aligned=True),
        Algorithm("ppo-gt", aligned.PPOGTConfig, aligned.PPO_DEFAULTS, aligned.train_ppo_gt,
                  "PPO from pi_ref on the true reward, per-step KL penalty to pi_ref", aligned=True,
                  train_seeds=aligned.ppo_gt_seeds),
        Algorithm("ppo-rm", aligned.PPORMConfig, aligned.PPO_DEFAULTS, aligned.train_ppo_rm,
                  "PPO from pi_ref on a Bradley-Terry reward model, KL penalty", aligned=True,
                  train_seeds=aligned.ppo_rm_seeds),
        Algorithm("pg-gt", aligned.PGGTConfig, aligned.PG_DEFAULTS, aligned.train_pg_gt,
                  "REINFORCE from pi_ref on the true reward, KL penalty", aligned=True,
                  train_seeds=aligned.pg_gt_seeds),
        Algorithm("grpo-gt", grpo.GRPOGTConfig, {}, grpo.train_grpo_gt,
                  "GRPO from pi_ref on the true reward: groups of episodes from one start state, k3 KL to"
                  " pi_ref in the loss", aligned=True, train_seeds=grpo.train_grpo_gt_seeds),
        Algorithm("pg-rm", aligned.PGRMConfig, aligned.PG_DEFAULTS, aligned.train_pg_rm,
                  "REINFORCE from pi_ref on a reward model, KL penalty", aligned=True,
                  train_seeds=aligned.pg_rm_seeds),
        Algorithm("sft", lm.SFTConfig, {}, lm.train_sft,
                  "pi_SFT itself, the LM reference (frontier origin)", domain="lm"),
        Algorithm("lm-dpo", lm.LMDPOConfig, {}, lm.train_dpo,
                  "DPO / IPO / hinge / SimPO / ORPO / KTO on completion preferences"
                  " (project's own; ORPO in the paper's form: NLL on the response only, TRL's"
                  " ORPOTrainer also on the prompt; budget = updates)",
                  domain="lm"),
        Algorithm("trl-dpo", trl_dpo.TRLDPOConfig, {}, trl_dpo.train_trl_dpo,
                  "TRL DPOTrainer on the same model, data and hyperparameters (cross-check)", domain="lm"),
        Algorithm("lm-online-dpo", online_dpo.LMOnlineDPOConfig, {}, online_dpo.train_online_dpo,
                  "online DPO: pairs sampled from the current policy, labelled by the reward model (or the"
                  " gold), DPO / IPO loss to pi_SFT (project's own; budget = updates)", domain="lm"),
        Algorithm("trl-online-dpo", trl_online_dpo.TRLOnlineDPOConfig, {},
                  trl_online_dpo.train_trl_online_dpo,
                  "TRL OnlineDPOTrainer (experimental) on the same model, prompts, judge and hyperparameters"
                  " as lm-online-dpo (cross-check)", domain="lm"),
        Algorithm("preferred-ft", lm.PreferredFTConfig, {}, lm.train_preferred_ft,
                  "supervised fine-tuning on the chosen completions (budget = updates)", domain="lm"),
        Algorithm("best-of-n", lm.BestOfNConfig, {}, lm.train_best_of_n,
                  "best of N samples from pi_SFT by reward model or gold (no training)", domain="lm"),
        Algorithm("rlhf-ppo", rlhf_ppo.RLHFPPOConfig, {}, rlhf_ppo.train_rlhf_ppo,
                  "RLHF-PPO with actor, critic, reward model and reference (reward: gold = PPO-GT)",
                  domain="lm"),
        Algorithm("lm-grpo", rlhf_ppo.LMGRPOConfig, {}, rlhf_ppo.train_grpo,
                  "GRPO / Dr. GRPO: group-relative advantages, clipped token ratio, k3 KL to pi_SFT in the"
                  " loss (budget = updates)", domain="lm"),
        Algorithm("trl-grpo", trl_grpo.TRLGRPOConfig, {}, trl_grpo.train_trl_grpo,
                  "TRL GRPOTrainer on the same model, prompts, score and hyperparameters as lm-grpo,"
                  " use_bias_correction_kl off as lm-grpo's KL term (cross-check)", domain="lm"),
        Algorithm("rrhf", rlhf_ppo.LMRRHFConfig, {}, rlhf_ppo.train_rrhf,
                  "RRHF: ranking loss over k scored samples per prompt + NLL of the best (budget = updates)",
                  domain="lm"),
        Algorithm("lm-pg", rlhf_ppo.LMPGConfig, {}, rlhf_ppo.train_lm_pg,
                  "REINFORCE on the KL-regularised sequence reward; baseline: rloo = RLOO", domain="lm"),
    ]  # fmt: skip

for _algo in BUILT_IN:
    register_algorithm(_algo)

__all__ = ["ALGORITHMS", "BUILT_IN"]
