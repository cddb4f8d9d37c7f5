"""A byte-level BPE tokenizer trained with ``tokenizers`` on a task corpus, wrapped as a
transformers ``PreTrainedTokenizerFast`` (the class GPT-2's own tokenizer loads as).

Special tokens: ``<|endoftext|>`` ends every text (eos, also bos as in GPT-2) and ``<pad>`` pads
batches. No bos is prepended: a sequence is ``text + eos``, so prompts are plain token prefixes
(the same convention TRL's DPOTrainer uses for non-chat data).
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOS = "<|endoftext|>"
PAD = "<pad>"


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """Byte-level BPE with ``vocab_size`` entries (including the 256 bytes and 2 specials)."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    return wrap(core)


def wrap(core: Tokenizer):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, bos_token=EOS, pad_token=PAD)
    tok.padding_side = "right"
    return tok


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, no special tokens added."""
    return tokenizer(texts, add_special_tokens=False)["input_ids"]
