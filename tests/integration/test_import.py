"""`bench import` on files written by the real writers: stable-baselines3's TensorBoard logger and
its ``Monitor`` wrapper, and ``torch.utils.tensorboard`` with CleanRL's tag names; the imported
runs beside bench's in a report, a leaderboard over several submissions, and a gate that refuses
to compare across protocols."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.importer import SB3_EVAL, TRAINING_RETURN, WINDOW
from bench.report.synthetic import write_synthetic
from bench.store import Store


@pytest.fixture(scope="module")
def foreign(tmp_path_factory) -> dict[str, Path]:
    """Real logs: SB3 PPO on CartPole with its TensorBoard logger, Monitor and EvalCallback; and a
    CleanRL-style loop writing charts/episodic_return with torch.utils.tensorboard."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor
    from torch.utils.tensorboard import SummaryWriter

    root = tmp_path_factory.mktemp("foreign")
    env = Monitor(gym.make("CartPole-v1"), filename=str(root / "sb3_seed0"))
    evaluation = EvalCallback(Monitor(gym.make("CartPole-v1")), eval_freq=512, n_eval_episodes=3, verbose=0)
    model = PPO(
        "MlpPolicy", env, n_steps=256, batch_size=64, seed=0, tensorboard_log=str(root / "tb"), verbose=0
    )
    model.learn(2048, callback=evaluation)
    env.close()

    writer = SummaryWriter(str(root / "cleanrl" / "CartPole-v1__ppo__1"))
    envs = gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1"))
    rng = np.random.default_rng(1)
    returns = []
    envs.reset(seed=1)
    for global_step in range(1, 3001):
        _, _, terminated, truncated, info = envs.step(int(rng.integers(2)))
        if terminated or truncated:
            returns.append(float(info["episode"]["r"]))
            writer.add_scalar("charts/episodic_return", info["episode"]["r"], global_step)
            writer.add_scalar("charts/episodic_length", info["episode"]["l"], global_step)
            envs.reset()
    writer.add_scalar("charts/SPS", 1000, 3000)
    writer.close()
    (root / "cleanrl_returns.txt").write_text("\n".join(map(str, returns)))
    return {
        "monitor": root / "sb3_seed0.monitor.csv",
        "sb3_tb": next((root / "tb").rglob("events.out.tfevents*")),
        "cleanrl": root / "cleanrl",
        "cleanrl_returns": root / "cleanrl_returns.txt",
        "root": root,
    }


def _import(args, capsys) -> tuple[int, str]:
    rc = main(["import", *map(str, args)])
    return rc, capsys.readouterr().err


def test_import_reads_sb3_monitor_as_the_running_mean_of_training_returns(foreign, tmp_path, capsys):
    out = tmp_path / "monitor.csv"
    rc, err = _import(
        [foreign["monitor"], "--task", "CartPole-v1", "--algorithm", "sb3-ppo-mon", "-o", out], capsys
    )
    assert rc == 0, err
    table = pd.read_csv(out)
    ev = table[table.kind == "eval"]
    episodes = pd.read_csv(foreign["monitor"], skiprows=1)
    # the last point: mean of the last 100 episode returns, at the env steps of all episodes
    assert ev.value.iloc[-1] == pytest.approx(episodes.r.tail(WINDOW).mean())
    assert ev.step.iloc[-1] == episodes.l.sum()
    assert (
        set(table.protocol) == {TRAINING_RETURN}
        and table.source.iloc[0] == "SB3 Monitor: sb3_seed0.monitor.csv"
    )
    assert set(ev.temperature) == {1.0} and table.run_key.nunique() == 1
    assert "1 run" in err and TRAINING_RETURN in err


def test_import_reads_sb3_tensorboard_and_agrees_with_its_monitor(foreign, tmp_path, capsys):
    out = tmp_path / "tb.csv"
    rc, err = _import(
        [foreign["sb3_tb"], "--task", "CartPole-v1", "--algorithm", "sb3-ppo-tb", "-o", out], capsys
    )
    assert rc == 0, err
    ev = pd.read_csv(out).query("kind == 'eval'")
    episodes = pd.read_csv(foreign["monitor"], skiprows=1)
    # SB3 logs rollout/ep_rew_mean after each rollout of 256 steps: the last one at 2048 steps is the
    # mean of the same last 100 episodes the Monitor wrote (float32 in the event file)
    assert list(ev.step) == list(range(256, 2049, 256))
    assert ev.value.iloc[-1] == pytest.approx(episodes.r.tail(WINDOW).mean(), rel=1e-6)
    # the EvalCallback's tag, chosen explicitly: another protocol
    out2 = tmp_path / "tb-eval.csv"
    args = [
        foreign["sb3_tb"],
        "--task",
        "CartPole-v1",
        "--algorithm",
        "sb3-eval",
        "--tag",
        "eval/mean_reward",
    ]
    rc, err = _import([*args, "-o", out2], capsys)
    assert rc == 0, err
    t2 = pd.read_csv(out2)
    assert set(t2.protocol) == {SB3_EVAL} and list(t2.query("kind == 'eval'").step) == [512, 1024, 1536, 2048]
    assert set(t2.query("kind == 'eval'").temperature) == {0.0}


def test_import_reads_cleanrl_tags_written_by_torch_tensorboard(foreign, tmp_path, capsys):
    out = tmp_path / "cleanrl.csv"
    rc, err = _import([foreign["cleanrl"], "--task", "CartPole-v1", "--algorithm", "cleanrl-ppo",
                       "--seeds", "7", "-o", out], capsys)  # fmt: skip
    assert rc == 0, err
    table = pd.read_csv(out)
    ev = table.query("kind == 'eval'")
    returns = np.array([float(x) for x in foreign["cleanrl_returns"].read_text().split()])
    assert ev.value.iloc[-1] == pytest.approx(returns[-WINDOW:].mean(), rel=1e-6)
    assert ev.value.iloc[0] == pytest.approx(returns[0], rel=1e-6) and len(ev) <= 200
    assert set(table.seed) == {7} and "CleanRL (TensorBoard)" in table.source.iloc[0]


def test_import_errors_are_one_message_and_exit_2(foreign, tmp_path, capsys):
    out = tmp_path / "x.csv"
    rc, err = _import([foreign["cleanrl"], "--task", "CartPole-v1", "--algorithm", "a", "--tag", "nope/x",
                       "-o", out], capsys)  # fmt: skip
    assert rc == 2 and "no scalar tag nope/x" in err and "charts/episodic_return" in err and not out.exists()
    rc, err = _import([tmp_path / "missing", "--task", "CartPole-v1", "--algorithm", "a", "-o", out], capsys)
    assert rc == 2 and "no such file or folder" in err
    bad = tmp_path / "bad.monitor.csv"
    bad.write_text("r,l,t\n1,2,3\n")
    rc, err = _import([bad, "--task", "CartPole-v1", "--algorithm", "a", "-o", out], capsys)
    assert rc == 2 and "not an SB3 Monitor file" in err
    args = [foreign["monitor"], "--task", "CartPole-v1", "--algorithm", "a", "--seeds", "1,2", "-o", out]
    rc, err = _import(args, capsys)
    assert rc == 2 and "--seeds gives 2 seeds for 1 imported runs" in err


@pytest.fixture(scope="module")
def submissions(foreign, tmp_path_factory) -> dict[str, Path]:
    """Three result files: bench's own (a synthetic store exported), an SB3 and a CleanRL import."""
    root = tmp_path_factory.mktemp("subs")
    store = Store(root / "bench.sqlite")
    write_synthetic(store, labels=["ppo", "pg"], tasks=["CartPole-v1"], seeds=3, env_steps=3000)
    store.close()
    bench_csv = root / "bench.csv"
    assert (
        main(["export", "--store", str(root / "bench.sqlite"), "--suite", "synthetic", "-o", str(bench_csv)])
        == 0
    )
    sb3 = root / "sb3.csv"
    assert main(["import", str(foreign["sb3_tb"]), "--task", "CartPole-v1", "--algorithm", "sb3-ppo",
                 "--suite", "synthetic", "-o", str(sb3)]) == 0  # fmt: skip
    cleanrl = root / "cleanrl.csv"
    assert main(["import", str(foreign["cleanrl"]), "--task", "CartPole-v1", "--algorithm", "ppo",
                 "--suite", "synthetic", "-o", str(cleanrl)]) == 0  # fmt: skip
    return {"bench": bench_csv, "sb3": sb3, "cleanrl": cleanrl, "root": root}


def test_report_draws_imported_runs_beside_bench_with_their_protocol(submissions, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["report", "--results", f"bench={submissions['bench']}", "--results", str(submissions["sb3"]),
            "--results", f"cleanrl={submissions['cleanrl']}", "--suite", "synthetic", "-o", str(out),
            "-q"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    html = (out / "index.html").read_text()
    # both submissions used the label "ppo" on CartPole: kept apart, each named by its submission
    assert "ppo (bench)" in html and "ppo (cleanrl)" in html
    assert f"sb3-ppo (imported; protocol: {TRAINING_RETURN})" in html
    assert f"ppo (cleanrl) (imported; protocol: {TRAINING_RETURN})" in html
    board = pd.read_csv(out / "leaderboard.csv")
    assert {"ppo (bench)", "ppo (cleanrl)", "sb3-ppo", "pg"} == set(board.algorithm)
    assert "submissions" in html and "bench (" in html  # provenance keeps each submission
    assert (out / "figures" / "task1.svg").is_file()


def test_compare_refuses_to_gate_across_protocols_unless_told(submissions, tmp_path, capsys):
    # the CleanRL import labelled "ppo" against bench's ppo: a training return against an evaluation
    args = ["compare", "--results", str(submissions["cleanrl"]), "--baseline", str(submissions["bench"]),
            "--suite", "synthetic", "--allow-missing", "-o", str(tmp_path / "cmp")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "CartPole-v1 / ppo: the two sides measure different things" in err and "--protocols-match" in err
    assert not (tmp_path / "cmp").exists()
    assert main([*args, "--protocols-match"]) in (0, 1)


def test_leaderboard_page_over_three_submissions(submissions, tmp_path, capsys):
    page = tmp_path / "board.html"
    args = ["leaderboard", "--results", f"bench={submissions['bench']}", "--results", str(submissions["sb3"]),
            "--results", f"cleanrl={submissions['cleanrl']}", "--suite", "synthetic", "--format", "html",
            "-o", str(page)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    html = page.read_text()
    assert html.count('<tr data-task="CartPole-v1"') == 4 and "<script>" in html
    for name in ("bench", "sb3", "cleanrl"):
        assert f"<td>{name}</td>" in html
    assert 'class="imported"' in html and "http" not in html.split("<script>")[1]  # no network


def test_import_reads_the_monitor_files_of_a_vectorised_env_as_one_run(tmp_path, capsys, monkeypatch):
    from stable_baselines3 import A2C

    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3"))  # not a folder in the system's tempdir
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.results_plotter import load_results

    folder = tmp_path / "monitor"
    env = make_vec_env("CartPole-v1", n_envs=3, seed=0, monitor_dir=str(folder))
    A2C("MlpPolicy", env, seed=0, verbose=0).learn(1500)
    env.close()
    assert len(list(folder.glob("*.monitor.csv"))) == 3
    out = tmp_path / "vec.csv"
    rc, err = _import([folder, "--task", "CartPole-v1", "--algorithm", "a2c", "-o", out], capsys)
    assert rc == 0, err
    table = pd.read_csv(out)
    assert table.run_key.nunique() == 1  # three files, one run
    ev = table.query("kind == 'eval'")
    episodes = load_results(str(folder))  # SB3's own reader: every file's episodes, by end time
    assert ev.step.iloc[-1] == episodes.l.sum()
    assert ev.value.iloc[-1] == pytest.approx(episodes.sort_values("t").r.tail(WINDOW).mean())


def test_an_imported_tensorboard_runs_clock_starts_when_its_writer_opened(tmp_path):
    """Wall time runs from the writer's first record (the file's opening) to its last record of any
    tag, not from the first episode's end to the last's: CleanRL logs SPS and losses after."""
    import time

    from torch.utils.tensorboard import SummaryWriter

    from bench.importer import _tidy, read_tensorboard

    t0 = time.time()
    writer = SummaryWriter(str(tmp_path / "run"))
    for k, ret in enumerate([10.0, 20.0, 30.0]):
        writer.add_scalar("charts/episodic_return", ret, 100 * (k + 1), walltime=t0 + 5 + 5 * k)
    writer.add_scalar("charts/SPS", 1000.0, 300, walltime=t0 + 40)
    writer.close()
    (path,) = (tmp_path / "run").glob("events.out.tfevents.*")
    run = read_tensorboard(path)
    assert run.points.wall_time.tolist() == pytest.approx([5, 10, 15], abs=1.0)  # from the writer's start
    assert run.duration == pytest.approx(40, abs=1.0)
    table = _tidy(run, "CartPole-v1", "cleanrl-ppo", "s", None, 0)
    wall = table[(table.kind == "run") & (table.metric == "run/wall_time")].value
    assert wall.tolist() == pytest.approx([40], abs=1.0)


def test_episodes_ending_in_one_vector_step_give_one_point_at_that_step(tmp_path):
    """CleanRL's continuous PPO with several envs logs the episodes that end in the same vector step
    at the same global step: the import keeps one point there, the mean after the last of them."""
    from torch.utils.tensorboard import SummaryWriter

    from bench.importer import read_tensorboard

    writer = SummaryWriter(str(tmp_path / "run"))
    for step, ret in [
        (200, -1000.0),
        (200, -900.0),
        (400, -800.0),
        (400, -700.0),
        (400, -600.0),
        (600, -500.0),
    ]:
        writer.add_scalar("charts/episodic_return", ret, step)
    writer.close()
    (path,) = (tmp_path / "run").glob("events.out.tfevents.*")
    points = read_tensorboard(path).points
    assert points.step.tolist() == [200, 400, 600]
    assert points.value.tolist() == pytest.approx([-950.0, -800.0, -750.0])  # running means of 2, 5, 6
    assert points.n.tolist() == [2, 5, 6]
