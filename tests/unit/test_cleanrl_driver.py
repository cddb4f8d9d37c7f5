"""examples/cleanrl/run_cleanrl.py, with a stand-in for CleanRL's interpreter (no CleanRL needed):
the command each seed runs, where it runs, the manifest and the `bench import` line it prints."""

import importlib.util
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("run_cleanrl", ROOT / "examples" / "cleanrl" / "run_cleanrl.py")
driver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(driver)

# answers the driver's version query; as `-m cleanrl.X ...` records what it was given and writes an
# event file where CleanRL would (runs/<name>/ under its working folder)
FAKE = f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
if sys.argv[1] == "-c":
    print(json.dumps({{"python": "3.11.0", "cleanrl": "9.9.9", "torch": "0.0.1", "gym": None}}))
    sys.exit(0)
Path("runs/x").mkdir(parents=True)
Path("runs/x/events.out.tfevents.1.host.1.0").write_bytes(b"")
Path("argv.json").write_text(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(),
                                          "threads": os.environ["OMP_NUM_THREADS"]}}))
sys.exit(int(os.environ.get("FAKE_RC", "0")))
"""


def run(tmp_path, *extra):
    python = tmp_path / "python"
    python.write_text(FAKE)
    python.chmod(0o755)
    out = tmp_path / "out"
    argv = ["--env-id", "CartPole-v1", "--seeds", "10", "2", "--total-timesteps", "4096",
            "--out", str(out), "--python", str(python), "--suite", "mine", *extra]  # fmt: skip
    return driver.main(argv), out, str(python)


def test_each_seed_runs_cleanrls_script_in_its_folder_and_the_manifest_says_what_ran(tmp_path, capsys):
    rc, out, python = run(tmp_path, "--", "--ent-coef", "0")
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["seed"] for r in manifest["runs"]] == [10, 2]
    for r in manifest["runs"]:
        folder = out / "CartPole-v1" / "ppo" / f"seed{r['seed']}"
        argv = [python, "-m", "cleanrl.ppo", "--env-id", "CartPole-v1", "--seed", str(r["seed"]),
                "--total-timesteps", "4096", "--track", "False", "--capture-video", "False",
                "--ent-coef", "0"]  # fmt: skip
        assert r["command"] == shlex.join(argv) and r["returncode"] == 0 and r["wall_time_s"] > 0
        assert r["versions"] == {"python": "3.11.0", "cleanrl": "9.9.9", "torch": "0.0.1", "gym": None}
        assert r["event_files"] == [f"CartPole-v1/ppo/seed{r['seed']}/runs/x/events.out.tfevents.1.host.1.0"]
        seen = json.loads((folder / "argv.json").read_text())
        assert seen == {"argv": argv[1:], "cwd": str(folder), "threads": "1"}
    printed = capsys.readouterr().out
    assert "cleanrl 9.9.9" in printed
    # seed order kept (a folder search would sort seed10 before seed2 and mislabel them)
    assert printed.splitlines()[-1] == shlex.join([
        "bench", "import", str(out / "CartPole-v1/ppo/seed10"), str(out / "CartPole-v1/ppo/seed2"),
        "--task", "CartPole-v1", "--algorithm", "cleanrl-ppo", "--seeds", "10,2", "--suite", "mine",
        "-o", "cleanrl-CartPole-v1.csv"])  # fmt: skip


def test_an_earlier_run_is_kept_unless_forced_and_a_failed_run_fails(tmp_path, monkeypatch, capsys):
    assert run(tmp_path)[0] == 0
    assert run(tmp_path)[0] == 2 and "holds an earlier run" in capsys.readouterr().err
    monkeypatch.setenv("FAKE_RC", "3")
    rc, out, _ = run(tmp_path, "--force")
    assert rc == 1 and "2 run(s) failed" in capsys.readouterr().err
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert [(r["seed"], r["returncode"]) for r in runs] == [(10, 3), (2, 3)]  # replaced, not appended
