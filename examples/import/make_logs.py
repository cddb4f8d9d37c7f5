"""Writes the kind of logs `bench import` reads, with the real writers, for trying it out:

* ``OUT/sb3/``: stable-baselines3 PPO on CartPole-v1 (rl-baselines3-zoo's hyperparameters) with its
  TensorBoard logger (``rollout/ep_rew_mean``) and ``Monitor`` files, one run per seed;
* ``OUT/cleanrl-tags/``: stable-baselines3 A2C whose episodes are logged the way CleanRL's scripts
  log them — ``torch.utils.tensorboard.SummaryWriter`` with ``charts/episodic_return`` and
  ``charts/episodic_length`` at the global step — one run per seed.

    python examples/import/make_logs.py --out /tmp/logs --steps 50000 --seeds 0 1
    bench import /tmp/logs/sb3/tb --task CartPole-v1 --algorithm sb3-ppo-tb --suite NAME -o sb3.csv
    bench import /tmp/logs/cleanrl-tags --task CartPole-v1 --algorithm a2c-cleanrl --suite NAME -o cleanrl.csv
    bench report --results bench.csv --results sb3.csv --results cleanrl.csv --suite NAME -o reports/mine

(``--suite NAME``: the suite of ``bench.csv``, which the imported runs are set beside; without it
they are in a suite named ``imported`` and the report stops at "no rows for suite 'NAME'".)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym


def sb3_ppo(out: Path, steps: int, seed: int) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.monitor import Monitor

    (out / "monitor").mkdir(parents=True, exist_ok=True)
    env = make_vec_env(lambda: Monitor(gym.make("CartPole-v1")), n_envs=8, seed=seed,
                       monitor_dir=str(out / "monitor" / f"seed{seed}"))  # fmt: skip
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                ent_coef=0.0, learning_rate=0.001, clip_range=0.2, seed=seed, verbose=0,
                tensorboard_log=str(out / "tb"))  # fmt: skip
    model.learn(steps, tb_log_name=f"PPO_seed{seed}")


def a2c_with_cleanrl_tags(out: Path, steps: int, seed: int) -> None:
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / f"CartPole-v1__a2c__{seed}"))

    class Episodes(BaseCallback):  # what CleanRL writes when an episode ends
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    writer.add_scalar("charts/episodic_return", info["episode"]["r"], self.num_timesteps)
                    writer.add_scalar("charts/episodic_length", info["episode"]["l"], self.num_timesteps)
            return True

    env = gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1"))
    model = A2C("MlpPolicy", env, seed=seed, verbose=0)
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default makes a tempdir folder
    model.learn(steps, callback=Episodes())
    writer.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args()
    for seed in args.seeds:
        sb3_ppo(args.out / "sb3", args.steps, seed)
        a2c_with_cleanrl_tags(args.out / "cleanrl-tags", args.steps, seed)
        print(f"seed {seed}: done", flush=True)


if __name__ == "__main__":
    main()
