"""Language-model preference tasks: corpora, tokenizer, tiny GPT-2, gold rewards, generation."""


def quiet_hf() -> None:
    """Silences transformers / datasets progress bars and info logs (run logs stay readable)."""
    import os
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
