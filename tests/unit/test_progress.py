"""The run progress bar of `bench run`."""


def test_progress_bar_shows_the_finished_runs_rate_when_none_is_in_flight():
    from bench.executors import Progress

    p = Progress(3, "s", disable=True)
    p.update_live("a", 1000, 4000.0)
    assert "4.0k env-steps/s" in p.bar.postfix
    p.finished({"key": "a", "status": "done", "env_steps": 3000, "train_time": 1.0})
    p.finished({"key": "b", "status": "failed", "env_steps": 1000, "train_time": 1.0})
    assert p.bar.postfix == "2.0k env-steps/s per run, 1 failed"  # 4000 steps in 2 s, not 0.0k
