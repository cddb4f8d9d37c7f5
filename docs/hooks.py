"""MkDocs hook: the reference pages are generated from the code at build time, so they cannot
drift from it. A page asks for a generated block with a marker on a line of its own:

    <!-- bench:cli -->          every `bench` subcommand's --help text
    <!-- bench:algorithms -->   every registered algorithm: its config fields (type, default,
                                bounds, description) and shipped per-task defaults
"""

from __future__ import annotations

import os


def _cli() -> str:
    from bench.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help text to the terminal width
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    out = ["```text", parser.format_help().rstrip(), "```", ""]
    for name, p in sub.choices.items():
        out += [f"## bench {name}", "", "```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _algorithms() -> str:
    from bench.algos import ALGORITHMS
    from bench.cli import describe_fields

    out = []
    for a in ALGORITHMS.values():
        needs = "; needs a suite's `alignment:` section" if a.aligned else ""
        out += [f"## `{a.name}`", "", f"{a.description}. Domain: {a.domain}{needs}.", ""]
        out += ["| field | type | default | bounds | description |", "|---|---|---|---|---|"]
        for row in describe_fields(a.config):
            name, kind, default, bounds, desc = (_cell(x) for x in row)
            out.append(f"| `{name}` | {kind} | `{default}` | {bounds} | {desc} |")
        out.append("")
        if a.task_defaults:
            out += ["Shipped per-task defaults (`use_task_defaults: true`, the default):", ""]
            out += ["| task | values |", "|---|---|"]
            for task, values in a.task_defaults.items():
                shown = ", ".join(f"`{k}={v!r}`" for k, v in values.items()) or "—"
                out.append(f"| {task} | {_cell(shown)} |")
            out.append("")
    return "\n".join(out)


BLOCKS = {"<!-- bench:cli -->": _cli, "<!-- bench:algorithms -->": _algorithms}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, make in BLOCKS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
