"""YAML to plain data, keeping the line of every node and expanding ${VAR} references.

PyYAML's composer keeps a mark on every node; we build the Python values ourselves so that each
path into the document (``("routes", "chat", "targets", 1)``) remembers the line it came from.
Validation errors can then point at ``FILE:LINE`` instead of at a path the reader must hunt for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class YamlError(Exception):
    """A document that is not well-formed, or refers to a missing variable, at a given line."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


@dataclass
class MarkedDocument:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """The line of the deepest node along `path` that the document has (1-based)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def expand_env(text: str, line: int, env: Mapping[str, str]) -> str:
    """Replace ${VAR} and ${VAR:-default}; a missing VAR without a default is an error naming it."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is not None and value != "":
            return value
        if default is not None:
            return default
        raise YamlError(line, f"environment variable {name} is not set (write ${{{name}:-default}} for a default)")

    return _ENV_REF.sub(substitute, text)


class _Builder:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.lines: dict[Path_, int] = {}
        self.scalars = yaml.SafeLoader("")  # only its scalar constructors are used

    def build(self, node: yaml.Node, path: Path_) -> Any:
        line = node.start_mark.line + 1
        self.lines[path] = line
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.build_scalar(key_node)
                if isinstance(key, (dict, list)) or key is None:
                    raise YamlError(key_node.start_mark.line + 1, "a mapping key must be a plain string")
                key = str(key)
                if key in out:
                    raise YamlError(key_node.start_mark.line + 1, f"duplicate key '{key}'")
                out[key] = self.build(value_node, path + (key,))
                # A key's own line reads better in errors than its value's line.
                self.lines[path + (key,)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.build_scalar(node)

    def build_scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise YamlError(node.start_mark.line + 1, "a mapping key must be a plain string")
        value = self.scalars.construct_object(node, deep=True)
        if isinstance(value, str) and "${" in value:
            return expand_env(value, node.start_mark.line + 1, self.env)
        return value


def load_marked(text: str, env: Mapping[str, str] | None = None) -> MarkedDocument:
    """Parse one YAML document; `env` defaults to the process environment."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        # An unclosed bracket or quote is noticed far below where it began: point at the beginning.
        mark = exc.context_mark or exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        reason = f"not valid YAML: {exc.problem or exc.context}"
        if exc.context_mark is not None and exc.problem_mark is not None and exc.context:
            reason += f" ({exc.context}, noticed at line {exc.problem_mark.line + 1})"
        raise YamlError(line, reason) from None
    if node is None:
        raise YamlError(1, "the file is empty")
    builder = _Builder(os.environ if env is None else env)
    data = builder.build(node, ())
    return MarkedDocument(data=data, lines=builder.lines)
