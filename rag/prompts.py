"""Strict prompt rendering: templates live in the ``prompts`` package as ``<name>.txt``.

Templates use ``str.format`` fields (``{question}``; literal braces are doubled). Rendering fails
with :class:`PromptError` when a field has no value OR a value is given that the template never uses,
so a renamed variable can never silently drop context from a prompt.
"""
from __future__ import annotations

import string
from functools import lru_cache
from importlib.resources import files


class PromptError(ValueError):
    """A template is missing, or its fields and the given variables disagree."""


@lru_cache(maxsize=None)
def load(name: str) -> str:
    """The raw text of ``prompts/<name>.txt``."""
    path = files("prompts") / f"{name}.txt"
    if not path.is_file():
        raise PromptError(f"prompt template '{name}' not found (expected prompts/{name}.txt)")
    return path.read_text(encoding="utf-8")


def fields(template: str) -> set[str]:
    """Names of the ``{fields}`` a template uses (only plain names are allowed)."""
    names: set[str] = set()
    for _, name, spec, conv in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise PromptError(f"unsupported template field '{{{name}}}': use plain names like {{question}}")
        names.add(name)
    return names


def render(name: str, **variables: object) -> str:
    """Fill template ``name``; every field must be given and every variable must be used."""
    template = load(name)
    wanted = fields(template)
    missing = sorted(wanted - variables.keys())
    unused = sorted(variables.keys() - wanted)
    if missing:
        raise PromptError(f"prompt '{name}': missing variable(s) {', '.join(missing)}")
    if unused:
        raise PromptError(f"prompt '{name}': unused variable(s) {', '.join(unused)}")
    return template.format(**{k: str(v) for k, v in variables.items()})
