"""Reading a suite file as untrusted data: plain YAML only (strings, numbers, booleans, null,
lists and mappings with string keys; no tags, no timestamps, no duplicate keys), at most
``MAX_FILE_BYTES`` large, ``MAX_YAML_NODES`` nodes with aliases expanded and ``MAX_YAML_DEPTH``
levels deep; where an ``include:`` may point; where the shipped suites are."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from bench.suite.errors import _CONTROL, SuiteError, _child_field, _kind, _show

MAX_FILE_BYTES = 1 << 20  # 1 MiB: suites are a few KB


MAX_YAML_NODES = 100_000  # YAML nodes of one file, aliases expanded (billion-laughs guard)


MAX_YAML_DEPTH = 32  # nesting levels of one file (suites need about 8)


MAX_NUMBER_CHARS = 100  # digits of one YAML number


_YAML = "tag:yaml.org,2002:"


_PLAIN_TAGS = {_YAML + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


_NUMBER_TAGS = {_YAML + "int", _YAML + "float"}


class _SuiteLoader(yaml.SafeLoader):
    """PyYAML's safe loader without implicit timestamps (``2024-01-01`` stays a string) and
    YAML 1.1's ``=`` value key; ``_check_nodes`` rejects every tag outside ``_PLAIN_TAGS``."""


_SuiteLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in _PLAIN_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _check_nodes(path: Path, root: yaml.Node) -> None:
    """Plain data only, checked on the composed node graph before anything is constructed:
    allowed tags, string keys without repeats, numbers of sane length, no recursive aliases,
    at most ``MAX_YAML_NODES`` nodes with aliases expanded and ``MAX_YAML_DEPTH`` levels
    (iterative, and an alias bomb is stopped at the first node over the limit)."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes with aliases expanded, height)
    open_: set[int] = set()  # nodes on the current path (a repeat is a recursive alias)
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
    while stack:
        node, field, finished = stack.pop()
        nid = id(node)
        children: list[yaml.Node]
        if isinstance(node, yaml.MappingNode):
            children = [v for _, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if finished:
            open_.discard(nid)
            size = 1 + sum(done[id(c)][0] for c in children)
            height = 1 + max((done[id(c)][1] for c in children), default=0)
            if size > MAX_YAML_NODES:
                raise SuiteError(
                    path, field, f"more than {MAX_YAML_NODES} YAML values (aliases expanded) at {_line(node)}"
                )
            if height > MAX_YAML_DEPTH:
                raise SuiteError(path, field, f"nested deeper than {MAX_YAML_DEPTH} levels at {_line(node)}")
            done[nid] = (size, height)
            continue
        if nid in done:
            continue
        if nid in open_:
            raise SuiteError(path, field, f"recursive alias at {_line(node)}")
        if node.tag not in _PLAIN_TAGS:
            raise SuiteError(
                path,
                field,
                f"invalid YAML: tag {_show(_short_tag(node.tag))} at {_line(node)} is not allowed; a suite"
                " is plain data (strings, numbers, booleans, lists and mappings)",
            )
        if isinstance(node, yaml.ScalarNode) and node.tag in _NUMBER_TAGS:
            if len(node.value) > MAX_NUMBER_CHARS:
                raise SuiteError(path, field, f"number at {_line(node)} is too long")
        keyed: list[str | int] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, yaml.Node] = {}
            for key, _ in node.value:
                if key.tag == _YAML + "merge":
                    keyed.append("<<")
                    continue
                if not isinstance(key, yaml.ScalarNode) or key.tag != _YAML + "str":
                    shown = key.value if isinstance(key, yaml.ScalarNode) else "a list or mapping"
                    raise SuiteError(
                        path,
                        field,
                        f"key {_show(shown)} at {_line(key)} is not a string (keys are names; quote it)",
                    )
                if key.value in seen:
                    raise SuiteError(
                        path,
                        _child_field(field, key.value),
                        f"duplicate key at {_line(key)} (first at {_line(seen[key.value])})",
                    )
                seen[key.value] = key
                keyed.append(key.value)
        else:
            keyed = list(range(len(children)))
        open_.add(nid)
        stack.append((node, field, True))
        for key, child in zip(keyed, children, strict=True):
            if id(child) not in done:
                stack.append((child, _child_field(field, key) if key != "<<" else field, False))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise SuiteError(path, "", "is a directory, not a suite file")
        if not stat.S_ISREG(mode):
            raise SuiteError(path, "", "is not a regular file")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SuiteError(path, "", "file not found") from None
    except OSError as e:
        raise SuiteError(path, "", f"cannot read: {e.strerror or e}") from None
    except ValueError as e:  # e.g. a NUL byte in the name
        raise SuiteError(path, "", f"not a valid file name ({e})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SuiteError(path, "", f"larger than {MAX_FILE_BYTES // 1024} KiB; a suite is a few KB of YAML")
    try:
        text = raw.decode("utf-8-sig")  # a UTF-8 byte-order mark is fine
    except UnicodeDecodeError as e:
        bad = f"byte 0x{raw[e.start]:02x} at offset {e.start}"
        raise SuiteError(path, "", f"not UTF-8 text ({bad})") from None
    loader = None
    try:
        loader = _SuiteLoader(text)  # checks every character first
        node = loader.get_single_node()
        if node is None:
            raise SuiteError(path, "", "empty file: a suite is a YAML mapping of fields")
        _check_nodes(path, node)
        data = loader.construct_document(node)
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        code = ord(e.character) if isinstance(e.character, str) else e.character
        char = f"U+{code:04X}" if isinstance(code, int) else _show(code)
        raise SuiteError(path, "", f"invalid YAML at line {line}: character {char} is not allowed") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SuiteError(path, "", f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise SuiteError(path, "", f"invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise SuiteError(path, "", f"a suite must be a YAML mapping of fields (got a {_kind(data)})")
    return data


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _inside(target: Path, folder: Path | None) -> bool:
    return folder is not None and (target == folder or folder in target.parents)


def shipped_suites() -> Path:
    """bench's shipped suites (installed with the package; ``suites/`` of a source checkout
    links here). Variants anywhere may include them."""
    return Path(__file__).resolve().parent.parent / "suites"


def find_suite(name_or_path: str) -> Path:
    """A suite file: the path itself when it exists, else the shipped suite of that name
    (``smoke`` or ``smoke.yaml``, ``paper/imdb-sentiment``), else the path (for the error)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    folder = shipped_suites()
    for candidate in (folder / name_or_path, folder / f"{name_or_path}.yaml"):
        try:
            if candidate.is_file() and _inside(candidate.resolve(), folder):
                return candidate
        except (OSError, ValueError):
            break
    return path


def _include_target(path: Path, include: str, root: Path) -> Path:
    """The resolved file ``include`` (from ``path``) names, which must lie inside ``root`` (the
    folder of the suite file run) or among the shipped suites."""
    if not include.strip():
        raise SuiteError(path, "include", "empty")
    if _CONTROL.search(include):
        raise SuiteError(path, "include", f"{_show(include)} is not a valid path (control characters)")
    try:
        target = (path.parent / include).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # symlink loop, name too long, NUL byte
        raise SuiteError(path, "include", f"{_show(include)} is not a valid path ({e})") from None
    if not (_inside(target, root) or _inside(target, shipped_suites())):
        raise SuiteError(
            path,
            "include",
            f"include {_show(include)} is outside the suite's folder {root} (an included file must"
            " lie in the folder of the suite file run or below it, or be one of bench's shipped suites)",
        )
    return target
