"""Local stand-ins for the paper suites' hub resources, to rehearse the paper-scale path offline.

Builds, with transformers and randomly initialised weights, checkpoints of the architectures the
paper suites name, at their real sizes, saved with ``save_pretrained``:

* the policy: GPT-2 (``--policy gpt2``, 124 M parameters, the default; ``gpt2-medium``;
  ``gpt2-large``, 774 M, the IMDb suite's) with a GPT-2-format byte-level BPE tokenizer of GPT-2's
  50,257 entries (merges learned on the local texts; the rest of the table made-up short words,
  so that a random model's samples decode to word-length pieces), used for
  the IMDb policy and as the stand-in for the TL;DR SFT model;
* the gold sentiment classifier: RoBERTa-large (355 M, as siebert/sentiment-roberta-large-english)
  with labels NEGATIVE / POSITIVE and a RoBERTa-format tokenizer of 50,265 entries;
* the judge reward model: DeBERTa-v3-large (435 M, as OpenAssistant/reward-model-deberta-v3-large-v2)
  with one output and a 128,100-entry byte-level BPE tokenizer ([CLS] a [SEP] b [SEP] pairs);

and writes local datasets in the formats the paper suites read: IMDb's (``text``, ``label``) and
TL;DR's (``prompt`` ending in "TL;DR:", ``label`` the summary), as JSON lines, from the project's
generated reviews and articles. Last, two suite files beside them that include the shipped paper
suites and point their ``lm:`` section at these local paths (the documented overrides), and a copy
of each with training batches of 8 (``imdb-small-batch.yaml``, ``tldr-small-batch.yaml``: the
paper's 64 does not fit a 24 GiB CPU machine):

    python scripts/paper_checkpoints.py runs/paper-local
    bench run runs/paper-local/imdb-sentiment.yaml --rehearse
    bench run runs/paper-local/tldr-summarization.yaml --rehearse

The weights are random: the rehearsal proves the path (loaders, shapes, memory, time per step),
not any number. Nothing here is downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {  # GPT-2's published sizes
    "gpt2": dict(n_layer=12, n_embd=768, n_head=12),
    "gpt2-medium": dict(n_layer=24, n_embd=1024, n_head=16),
    "gpt2-large": dict(n_layer=36, n_embd=1280, n_head=20),
}
GPT2_VOCAB, ROBERTA_VOCAB, DEBERTA_VOCAB = 50257, 50265, 128100


def _bpe(texts: list[str], merges_vocab: int):
    """(vocab: token -> id, merges) of a byte-level BPE learned on ``texts``."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=merges_vocab, min_frequency=2, show_progress=False)
    data = json.loads(bpe.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["merges"]]
    return data["vocab"], merges


def _table(vocab: dict, size: int, first: list[str], last: list[str]) -> tuple[dict, list[str]]:
    """A vocabulary of exactly ``size`` entries — ``first`` specials, the learned tokens, fillers,
    then ``last`` specials — and the merges that spell the fillers. The fillers are made-up short
    words in one order for every table ("Ġ" is byte-level BPE's space), so a random policy's samples
    decode to word-length pieces that the classifier's and the judge's tokenizers read as one token
    each (as real vocabularies would), not as a string of letters."""
    out = {t: i for i, t in enumerate(first)}
    for t in sorted(vocab, key=vocab.get):
        if t not in out:
            out[t] = len(out)
    n_fill = size - len(out) - len(last)
    if n_fill < 0:
        raise ValueError(f"learned vocabulary too large for {size} entries")
    i, merges = 0, []
    while n_fill:
        word, i = _word(i), i + 1
        token = "Ġ" + word
        if token not in out:  # its prefix came before it: a learned token or a filler
            out[token] = len(out)
            merges.append(f"Ġ{word[:-1]} {word[-1]}" if len(word) > 1 else f"Ġ {word}")
            n_fill -= 1
    for t in last:
        out[t] = len(out)
    return out, merges


def _word(i: int) -> str:
    """The ``i``-th word over the letters a-z: a, b, ..., z, aa, ab, ..."""
    letters = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        letters = chr(97 + r) + letters
    return letters


def _write_bpe_files(folder: Path, vocab: dict, merges: list[str]) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return str(folder / "vocab.json"), str(folder / "merges.txt")


def gpt2_tokenizer(vocab: dict, merges: list[str], tmp: Path):
    from transformers import GPT2TokenizerFast

    table, extra = _table(vocab, GPT2_VOCAB, [], ["<|endoftext|>"])
    files = _write_bpe_files(tmp / "gpt2-tok", table, merges + extra)
    return GPT2TokenizerFast(
        *files,
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        model_max_length=1024,
    )


def roberta_tokenizer(vocab: dict, merges: list[str], tmp: Path):
    from transformers import RobertaTokenizerFast

    table, extra = _table(vocab, ROBERTA_VOCAB, ["<s>", "<pad>", "</s>", "<unk>"], ["<mask>"])
    files = _write_bpe_files(tmp / "roberta-tok", table, merges + extra)
    return RobertaTokenizerFast(*files, model_max_length=512)


def deberta_tokenizer(vocab: dict, merges: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    table, extra = _table(vocab, DEBERTA_VOCAB, ["[PAD]", "[CLS]", "[SEP]", "[UNK]"], ["[MASK]"])
    tok = Tokenizer(models.BPE(table, [tuple(m.split(" ")) for m in merges + extra], unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", table["[CLS]"]), ("[SEP]", table["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        unk_token="[UNK]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def save(model, tokenizer, folder: Path) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    n = sum(p.numel() for p in model.parameters())
    print(f"  {folder.name}: {type(model).__name__}, {n / 1e6:.0f} M parameters", file=sys.stderr)


def datasets(out: Path, documents: int) -> tuple[list[str], Path, Path]:
    """IMDb- and TL;DR-format JSON lines from the project's generated reviews and articles."""
    from bench.lm.corpus import generate_reviews
    from bench.lm.summaries import SEPARATOR, generate_articles

    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    reviews = generate_reviews(documents, seed=11)
    imdb = data / "imdb-train.jsonl"
    with imdb.open("w") as fh:
        for r in reviews:  # IMDb: text and a 0/1 label (mixed reviews count as negative here)
            fh.write(json.dumps({"text": r.text, "label": int(r.sentiment == "positive")}) + "\n")
    articles = generate_articles(documents, seed=11)
    tldr = data / "tldr-train.jsonl"
    with tldr.open("w") as fh:
        for a in articles:  # TL;DR: the post ending in "TL;DR:" and the summary
            fh.write(
                json.dumps({"prompt": f"POST: {a.document}\n{SEPARATOR.strip()}", "label": a.reference})
                + "\n"
            )
    texts = [r.text for r in reviews] + [a.text for a in articles]
    return texts, imdb, tldr


def suites(
    out: Path, policy: Path, classifier: Path, judge: Path, imdb: Path, tldr: Path, documents: int
) -> None:
    shipped = ROOT / "suites" / "paper"
    (out / "imdb-sentiment.yaml").write_text(
        f"# The shipped IMDb paper suite on local stand-ins (scripts/paper_checkpoints.py): random weights.\n"
        f"include: {shipped / 'imdb-sentiment.yaml'}\n"
        f"name: paper-imdb-sentiment-local\n"
        f"lm:\n"
        f"  corpus: {{source: hf, dataset: json, data_files: {imdb}, split: train, text_field: text,"
        f" documents: {documents}}}\n"
        f"  model: {{base: {policy}}}\n"
        f"  gold: hf:{classifier}\n"
    )
    (out / "tldr-summarization.yaml").write_text(
        f"# The shipped TL;DR paper suite on local stand-ins (scripts/paper_checkpoints.py):"
        f" random weights.\n"
        f"include: {shipped / 'tldr-summarization.yaml'}\n"
        f"name: paper-tldr-summarization-local\n"
        f"lm:\n"
        f"  corpus: {{source: hf, dataset: json, data_files: {tldr}, split: train, text_field: prompt,"
        f" reference_field: label, documents: {documents}}}\n"
        f"  model: {{base: {policy}}}\n"
        f"  gold: hf-rm:{judge}\n"
    )
    # the same suites with training batches of 8 (the paper's 64 does not fit a 24 GiB CPU machine),
    # Best-of-N first; everything else (models, loaders, lengths, N) stays the paper's
    for local, name in (("imdb-sentiment", "imdb-small-batch"), ("tldr-summarization", "tldr-small-batch")):
        (out / f"{name}.yaml").write_text(
            f"# The local {local} paper suite with training batches of 8 (docs/guides/paper-scale.md).\n"
            + yaml.safe_dump(small_batch(shipped / f"{local}.yaml", f"{local}.yaml"), sort_keys=False)
        )


def small_batch(paper_suite: Path, include: str, batch: int = 8) -> dict:
    """A suite (as a mapping) that includes ``include`` and sets every training batch
    of ``paper_suite``'s algorithms, and its reward model's, to ``batch`` (RLHF-PPO's minibatch at
    most that), Best-of-N listed first."""
    paper = yaml.safe_load(paper_suite.read_text())
    algorithms = []
    for entry in paper["algorithms"]:
        params = dict(entry.get("params", {}))
        if "batch_size" in params:
            params["batch_size"] = batch
        if "minibatch_size" in params:
            params["minibatch_size"] = min(params["minibatch_size"], batch)
        algorithms.append({**entry, "params": params} if params else dict(entry))
    algorithms.sort(key=lambda e: e["algo"] != "best-of-n")  # stable: the rest keep their order
    return {
        "include": include,
        "name": f"{paper['name']}-local-b{batch}",
        "lm": {"reward_model": {"batch_size": batch}},
        "algorithms": algorithms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write models, data and suites into")
    parser.add_argument(
        "--policy", choices=sorted(POLICIES), default="gpt2", help="policy size (default gpt2)"
    )
    parser.add_argument(
        "--documents",
        type=int,
        default=12_000,
        help="documents per dataset (default 12000: enough for the paper suites' 5000 + 500 prompts)",
    )
    args = parser.parse_args(argv)
    import torch
    from transformers import (
        DebertaV2Config,
        DebertaV2ForSequenceClassification,
        GPT2Config,
        GPT2LMHeadModel,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    out = args.out.resolve()
    models = out / "models"
    print(f"writing datasets ({args.documents} documents each)", file=sys.stderr)
    texts, imdb, tldr = datasets(out, args.documents)
    print("learning the BPE merges", file=sys.stderr)
    vocab, merges = _bpe(texts, 8000)
    torch.manual_seed(0)
    print("building checkpoints (random weights)", file=sys.stderr)
    gtok = gpt2_tokenizer(vocab, merges, out / "tmp")
    cfg = GPT2Config(
        vocab_size=GPT2_VOCAB,
        n_positions=1024,
        bos_token_id=GPT2_VOCAB - 1,
        eos_token_id=GPT2_VOCAB - 1,
        **POLICIES[args.policy],
    )
    policy = models / args.policy
    save(GPT2LMHeadModel(cfg), gtok, policy)
    rtok = roberta_tokenizer(vocab, merges, out / "tmp")
    rcfg = RobertaConfig(
        vocab_size=ROBERTA_VOCAB,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    classifier = models / "sentiment-roberta-large"
    save(RobertaForSequenceClassification(rcfg), rtok, classifier)
    dtok = deberta_tokenizer(vocab, merges)
    dcfg = DebertaV2Config(
        vocab_size=DEBERTA_VOCAB,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=256,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        type_vocab_size=0,
        layer_norm_eps=1e-7,
        pad_token_id=0,
        num_labels=1,
    )
    judge = models / "reward-model-deberta-v3-large"
    save(DebertaV2ForSequenceClassification(dcfg), dtok, judge)
    suites(out, policy, classifier, judge, imdb, tldr, args.documents)
    import shutil

    shutil.rmtree(out / "tmp", ignore_errors=True)
    print(
        f"wrote the suites {out}/imdb-sentiment.yaml, tldr-summarization.yaml and their small-batch"
        " copies imdb-small-batch.yaml, tldr-small-batch.yaml",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
