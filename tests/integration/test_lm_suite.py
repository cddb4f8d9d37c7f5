"""The controlled-sentiment pipeline end to end: the LM smoke suite through the CLI (records,
samples, report), suite validation across domains, and the paper-scale path with local models."""

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from tests.conftest import run_in_cache
from tests.integration.test_cli import _rows

SUITES = Path(__file__).resolve().parents[2] / "suites"
# the LM smoke suite end to end (about 30 s): the slow tier, with the paper-scale path; the default
# tier keeps the LM methods' unit tests (tests/unit/test_lm.py, test_rlhf_ppo.py, test_relatives.py)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm")
    store = run_in_cache(tmp, SUITES / "lm-smoke.yaml")  # in-process; --jobs 2: the slow determinism test
    # a second run finds everything done and trains nothing
    assert run_in_cache(tmp, SUITES / "lm-smoke.yaml") == store
    return tmp, store


def _evals(store) -> pd.DataFrame:
    return pd.DataFrame(
        _rows(
            store,
            "SELECT r.algorithm, r.algo, e.step, e.temperature, e.metric, e.value, e.n"
            " FROM evals e JOIN runs r ON r.key = e.run_key",
        ),
        columns=["algorithm", "algo", "step", "temperature", "metric", "value", "n"],
    )


def test_every_lm_method_runs_and_records_gold_reward_and_kl(lm_run):
    tmp, store = lm_run
    runs = dict(_rows(store, "SELECT algorithm, status FROM runs"))
    assert set(runs.values()) == {"done"} and len(runs) == 22
    preference_losses = {"dpo", "ipo", "ipo-mean", "trl-ipo-mean", "simpo", "orpo", "kto", "trl-dpo"}
    others = {"sft", "preferred-ft", "rlhf-ppo", "rlhf-ppo-details", "ppo-gt", "grpo", "trl-grpo", "dr-grpo",
              "rrhf", "rloo"}  # fmt: skip
    assert preference_losses | others <= set(runs)
    ev = _evals(store)
    # the reference has KL exactly 0 to itself
    sft = ev[ev.algo == "sft"]
    assert (sft[sft.metric.isin(["eval/kl", "eval/kl_k1"])].value == 0.0).all()
    # trained methods: checkpoints every 10 updates with KL at T = 1, final sweep at T = 0 and 1
    for algo in ("lm-dpo", "trl-dpo", "preferred-ft", "rlhf-ppo", "lm-pg", "lm-grpo", "trl-grpo"):
        e = ev[ev.algo == algo]
        assert sorted(e[e.metric == "eval/kl"].step.unique()) == [10, 20]
        assert set(e[e.metric == "eval/kl"].temperature) == {1.0}
        assert set(e[(e.metric == "eval/return") & (e.step == 20)].temperature) == {0.0, 1.0}
        assert (e[e.metric == "eval/return"].n == 24).all()  # one completion per test prompt
        assert (e[e.metric == "eval/kl"].value > 0).all()  # the policy moved
    # Best-of-N: the bound log N - (N - 1)/N as eval/kl_bound, and the estimate (ties counted) in
    # eval/kl, between 0 and the bound
    bound = ev[(ev.algo == "best-of-n") & (ev.metric == "eval/kl_bound")].set_index("algorithm").value
    assert sorted(round(v, 6) for v in bound) == [0.0, 0.0, 0.636294, 0.636294]
    estimate = ev[(ev.algo == "best-of-n") & (ev.metric == "eval/kl")].set_index("algorithm").value
    assert ((estimate >= 0) & (estimate <= bound[estimate.index] + 1e-12)).all()
    assert (estimate[bound[estimate.index] == 0] == 0).all()
    # the models each run holds, and its peak resident memory: RLHF-PPO's four models (actor, reference,
    # reward model, critic: four of π_SFT's body, two with a scalar head), DPO's two, SFT's one
    held = dict(_rows(store, "SELECT algorithm, parameters FROM runs"))
    assert held["rlhf-ppo"] == 4 * held["sft"] + 2 * 32 and held["dpo"] == 2 * held["sft"]  # 32: a value head
    assert held["simpo"] == 2 * held["sft"]  # reference-free, but its KL to π_SFT is measured
    assert all(m > 0 for (m,) in _rows(store, "SELECT peak_rss_mb FROM runs"))
    # the reward-model runs of Best-of-N (2), RLHF-PPO (2: plain and with the detail switches), GRPO,
    # TRL GRPO, Dr. GRPO, RRHF and RLOO (not PPO-GT) carry its accuracy
    rm_runs = ev[ev.metric == "rm/accuracy"].algorithm
    assert sorted(rm_runs) == sorted(
        ["best-of-n[n=1,ranker=rm]", "best-of-n[n=4,ranker=rm]", "rlhf-ppo", "rlhf-ppo-details", "grpo",
         "trl-grpo", "dr-grpo", "rrhf", "rloo"]
    )  # fmt: skip
    assert not len(ev[(ev.algorithm == "ppo-gt") & (ev.metric == "rm/accuracy")])
    # RLHF-PPO with a target KL adapts its coefficient between iterations
    query = (
        "SELECT c.value FROM curves c JOIN runs r ON r.key = c.run_key"
        " WHERE r.algorithm = 'rlhf-ppo' AND c.metric = 'train/kl_coef' ORDER BY c.step"
    )
    coef = _rows(store, query)
    assert coef[0][0] == 0.05 and len({v for (v,) in coef}) == len(coef)


def test_per_seed_pair_artifacts_are_the_references_own_log_probs(lm_run):
    """The encoded pairs and π_SFT's log-probs of them are cached once per seed (every preference
    method of the seed loads them) and are exactly what π_SFT computes for those pairs; the prompts
    are cached beside the tokenizer."""
    import torch

    from bench.algos.lm import encode_pairs, frozen_pair_logps
    from bench.artifacts import CompletionPreferences
    from bench.lm.models import load_lm

    tmp, _ = lm_run
    root = tmp / "cache" / "lm" / "sentiment"
    (pairs_file,) = root.glob("pairs-s0-*.json")
    (logps_file,) = root.glob("reference-logps-s0-*.pt")
    (prefs_file,) = root.glob("prefs-s0-*.json")
    assert len(list(root.glob("prompts-*.json"))) == 1
    (sft_dir,) = [d for d in root.glob("sft-s0-*") if d.is_dir()]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(sft_dir))
    prefs = CompletionPreferences(json.loads(prefs_file.read_text()))
    train, held = prefs.split()
    cached_pairs = json.loads(pairs_file.read_text())
    assert cached_pairs["train"] == [list(map(list, x)) for x in encode_pairs(tok, *prefs.texts(train))]
    ref = load_lm(str(sft_dir)).eval()
    want_w, want_l = frozen_pair_logps(ref, [tuple(x) for x in cached_pairs["train"]], tok.pad_token_id)
    got = torch.load(logps_file, weights_only=True)
    assert torch.equal(got["train_w"], want_w) and torch.equal(got["train_l"], want_l)
    assert len(got["held_w"]) == len(held) and len(got["train_w"]) == len(train)


def test_lm_runs_store_text_samples_and_the_report_shows_them(lm_run):
    tmp, store = lm_run
    samples = _rows(store, "SELECT prompt, completion, score, temperature FROM samples")
    assert samples and {t for *_, t in samples} == {0.0, 1.0}
    assert all(isinstance(p, str) and isinstance(c, str) for p, c, *_ in samples)
    out = tmp / "report"
    assert main(["report", "--suite", "lm-smoke", "--store", str(store), "--out", str(out), "-q"]) == 0
    md = (out / "summary.md").read_text()
    assert "Samples at T = 1" in md and "reward vs KL" in md
    table = pd.read_csv(out / "samples.csv")
    assert (table.method == "sft").sum() == 5 and table.method.iloc[0] == "sft"
    assert (out / "frontier.csv").is_file()


def test_lm_methods_and_control_tasks_do_not_mix(write_suite, tmp_path, capsys):
    path = write_suite(
        """
        name: mixed
        version: 1
        tasks: [CartPole-v1, sentiment]
        seeds: 1
        env_steps: 10
        algorithms:
          - algo: lm-dpo
        """
    )
    assert main(["run", str(path), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert "'lm-dpo' runs on LM tasks only, not on 'CartPole-v1'" in err
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize(
    ("suite", "names"),
    [
        (
            "imdb-sentiment.yaml",
            ("gpt2-large", "siebert/sentiment-roberta-large-english", "stanfordnlp/imdb"),
        ),
        (
            "tldr-summarization.yaml",
            (
                "CarperAI/openai_summarize_tldr_sft",
                "judge reward model 'OpenAssistant/reward-model-deberta-v3-large-v2'",
                "CarperAI/openai_summarize_tldr",
            ),
        ),
    ],
)
def test_paper_suite_stops_before_training_without_the_hub(suite, names, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as if unreachable, whatever this machine can reach
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # and an empty cache
    store = tmp_path / "paper.sqlite"
    assert main(["run", str(SUITES / "paper" / suite), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    for name in names:
        assert name in err
    assert "HF_HOME" in err and "data_files" in err
    assert not store.exists()


def test_paper_path_runs_on_local_models_and_data(write_suite, tmp_path, monkeypatch):
    """The paper suite's loaders (from_pretrained on model.base and gold: hf:..., load_dataset with
    data_files) on tiny models and a CSV saved to disk."""
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from bench.lm.corpus import generate_reviews
    from bench.lm.models import ModelRecipe, build_tiny_lm
    from bench.lm.tokenizer import train_tokenizer

    texts = [r.text for r in generate_reviews(400, seed=1)]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "reviews.csv", index=False)
    tok = train_tokenizer(texts, 320)
    base = tmp_path / "base"
    build_tiny_lm(ModelRecipe(n_layer=1, n_embd=16, n_head=2, n_positions=64), tok, 0).save_pretrained(base)
    tok.save_pretrained(base)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=16, n_layer=1, n_head=2, num_labels=2,
                        id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1},
                        pad_token_id=tok.pad_token_id)  # fmt: skip
    judge = tmp_path / "judge"
    GPT2ForSequenceClassification(config).save_pretrained(judge)
    tok.save_pretrained(judge)
    path = write_suite(
        f"""
        include: {SUITES / "paper" / "imdb-sentiment.yaml"}
        name: paper-local
        seeds: 1
        env_steps: 4
        evaluation: {{eval_every: 2, temperatures: [1.0], final_temperatures: [0.0, 1.0]}}
        lm:
          corpus: {{source: hf, dataset: csv, data_files: {tmp_path / "reviews.csv"}, documents: 400}}
          model: {{base: {base}}}
          sft: {{steps: 5, batch_size: 8, max_len: 48}}
          prompts: {{train: 16, test: 8}}
          max_new_tokens: 6
          reward_model: {{steps: 3, batch_size: 8}}
          gold: hf:{judge}
          device: cpu
        algorithms:
          - algo: lm-dpo
            params: {{beta: 0.1, batch_size: 4}}
          - algo: best-of-n
            params: {{n: 2}}
        """
    )
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = tmp_path / "local.sqlite"
    assert main(["run", str(path), "--store", str(store), "-q"]) == 0
    assert {s for (s,) in _rows(store, "SELECT status FROM runs")} == {"done"}
    gold = [v for (v,) in _rows(store, "SELECT value FROM evals WHERE metric = 'eval/return'")]
    assert gold and all(-1.0 <= v <= 1.0 for v in gold)


@pytest.fixture(scope="module")
def summary_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("summ")
    return tmp, run_in_cache(tmp, SUITES / "lm-summarization-smoke.yaml", "--jobs", "2")


@pytest.mark.slow  # the summarisation pipeline: 26 s of setup
def test_summarization_records_win_rate_rouge_and_per_prompt_outcomes(summary_run):
    tmp, store = summary_run
    runs = dict(_rows(store, "SELECT algorithm, status FROM runs"))
    assert set(runs.values()) == {"done"} and len(runs) == 14
    ev = _evals(store)
    final = ev[(ev.metric == "eval/win_rate") & (ev.step == ev.groupby("algorithm").step.transform("max"))]
    assert set(final.algorithm) == set(runs)
    assert sorted(final[final.algorithm == "dpo"].temperature) == [0.0, 0.5, 1.0]
    assert ((final.value >= 0) & (final.value <= 1)).all()
    rouge = ev[ev.metric == "eval/rouge_l"]
    assert (
        len(rouge) == len(ev[ev.metric == "eval/win_rate"])
        and ((rouge.value >= 0) & (rouge.value <= 1)).all()
    )
    # per prompt: 24 test prompts x 3 temperatures x (win, gold) per run; the win outcomes are
    # 0, 1/2 or 1 and average to the recorded win rate
    out = pd.DataFrame(
        _rows(
            store,
            "SELECT r.algorithm, o.temperature, o.metric, o.item, o.value FROM outcomes o"
            " JOIN runs r ON r.key = o.run_key",
        ),  # fmt: skip
        columns=["algorithm", "temperature", "metric", "item", "value"],
    )
    assert len(out) == 14 * 24 * 3 * 2
    wins = out[out.metric == "eval/win_rate"]
    assert set(wins.value) <= {0.0, 0.5, 1.0}
    for (algo, temp), g in wins.groupby(["algorithm", "temperature"]):
        rec = final[(final.algorithm == algo) & (final.temperature == temp)].value.iloc[0]
        assert g.value.mean() == pytest.approx(rec)
    # every run's log states pi_SFT against its band (evaluated once, the same line in every log)
    lines = {
        line.split(" ", 2)[2]
        for log in (tmp / "logs").rglob("*.log")
        for line in log.read_text().splitlines()
        if "pi_SFT win rate against the references at T = 1 in [0.15, 0.45]" in line
    }
    assert len(lines) == 1 and "the band; evaluation seed 0)" in lines.pop()


@pytest.mark.slow  # the summarisation pipeline: 26 s of setup
def test_summarization_report_has_win_rates_kl_curves_and_samples(summary_run):
    tmp, store = summary_run
    out = tmp / "report"
    assert (
        main(["report", "--suite", "lm-summarization-smoke", "--store", str(store), "--out", str(out), "-q"])
        == 0
    )
    md = (out / "summary.md").read_text()
    assert "Win rate against the reference" in md and "KL over training" in md and "Samples at T = 1" in md
    wins = pd.read_csv(out / "win_rates.csv")
    # per-prompt outcomes of one seed: the two-way t interval needs two seeds, so none is drawn
    assert set(wins.ci) == {"1 seed: no interval"} and (wins.prompts == 24).all()
    assert sorted(wins.temperature.unique()) == [0.0, 0.5, 1.0]
    assert wins.lo.isna().all() and wins.hi.isna().all()
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"winrate1.png", "kl1.png", "frontier1.png"} <= figures
    # the DPO paper's four claims (and Gao et al.'s on its Best-of-N and RLHF-PPO runs), each with a
    # verdict; every method's KL span
    claims = pd.read_csv(out / "claims.csv")
    assert claims.paper.str.startswith("Rafailov").sum() == 4
    assert set(claims.paper.str.split(",").str[0]) == {"Rafailov et al. 2023", "Gao"}
    assert {v.split(":")[0] for v in claims.verdict} <= {"holds", "does not hold", "inconclusive"}
    assert claims.caveats.str.contains("parameters").all()  # the caveats travel with the verdicts
    assert "DPO's win rate is flatter over temperature than PPO's" in set(claims.claim)
    assert "Paper claims, measured here" in md
    # the smoke pi_SFT (60 updates) wins nothing: the report says at the top it left its band
    html = (out / "index.html").read_text()
    assert "Reference out of its band." in html and "π_SFT&#39;s win rate against the references" in html
    span = pd.read_csv(out / "kl_span.csv").set_index("method")
    assert span.loc["sft"].kl_max == 0 and (span.drop(index="sft").kl_max > 0).all()


@pytest.mark.slow  # the summarisation pipeline: 26 s of setup
def test_online_methods_are_deterministic_for_a_seed(summary_run, write_suite, monkeypatch):
    tmp, _ = summary_run
    monkeypatch.setenv("BENCH_CACHE", str(tmp / "cache"))  # pi_SFT and reward model already built
    text = (SUITES / "lm-summarization-smoke.yaml").read_text()
    head, _ = text.split("algorithms:")
    suite = write_suite(
        head.replace("name: lm-summarization-smoke", "name: determinism")
        + """algorithms:
  - algo: rlhf-ppo
    params: {batch_size: 8, minibatch_size: 4, ppo_epochs: 2}
  - algo: lm-pg
    label: rloo
    params: {prompts_per_batch: 4, k: 4}
"""
    )
    stores = [tmp / "det-a.sqlite", tmp / "det-b.sqlite"]
    for store in stores:
        assert main(["run", str(suite), "--store", str(store), "-q"]) == 0
    a, b = (
        _evals(s).sort_values(["algorithm", "step", "temperature", "metric"]).reset_index(drop=True)
        for s in stores
    )
    assert len(a) > 20
    pd.testing.assert_frame_equal(a, b)
