"""From the text of the root file to one merged config: the entry point of the merge layer.

The steps run in GitLab's order (``Gitlab::Ci::Config#build_config``): includes (with inputs),
``extends``, ``!reference``; then what GitLab does when it builds each job entry: nested
script/rules lists flattened, ``default:`` and global variables copied into jobs. Every step
reports into the same ``Problems`` and keeps going, so one run shows every problem.

The result is one ``YMap`` of top-level keys, globals and jobs (hidden ones too, for tools
that show templates), without ``include`` and ``spec``; values keep the positions of the file
and line they were written at. Values are shared between jobs where they came from one place
(a template, a default): treat the result as read-only, and copy before changing a value.
"""

from __future__ import annotations

import gc
import posixpath
from collections.abc import Mapping
from pathlib import Path

from ferrous.pipeline_config.defaults import apply_defaults
from ferrous.pipeline_config.extends import apply_extends
from ferrous.pipeline_config.includes import expand_includes
from ferrous.pipeline_config.inputs import apply_inputs, split_header
from ferrous.pipeline_config.nested_lists import flatten_nested_lists
from ferrous.pipeline_config.problems import Position, Problems
from ferrous.pipeline_config.references import resolve_references
from ferrous.pipeline_config.repo_files import RepoFiles
from ferrous.pipeline_config.yaml_source import YMap, load_documents

_REMOVED_KEYS = ("include", "spec")


def resolve_config(
    repo_dir: Path,
    root_file: str,
    variables: Mapping[str, str],
    problems: Problems,
    *,
    text: str | None = None,
    repo: RepoFiles | None = None,
) -> YMap:
    """Load ``root_file`` (or ``text``) and merge it into one config; never raises on bad input.

    ``repo`` shares one view of the repository (and its file list) with the caller.
    ``variables`` are the pipeline-level variables (predefined, project, trigger): they decide
    ``include:rules:if`` and expand ``$VAR`` in include paths, as in GitLab. ``text`` lints a
    file that is not in ``repo_dir``; its local includes are still read from ``repo_dir``.
    """
    collecting = gc.isenabled()
    gc.disable()  # tens of thousands of small acyclic objects: a GC pass would be pure cost
    try:
        return _resolve(repo or RepoFiles(repo_dir), root_file, variables, problems, text)
    finally:
        if collecting:
            gc.enable()


def _resolve(
    repo: RepoFiles,
    root_file: str,
    variables: Mapping[str, str],
    problems: Problems,
    text: str | None,
) -> YMap:
    source = _normalise(root_file)
    start = Position(file=source, line=1, column=1)
    if text is None:
        text = repo.read(source)
        if text is None:
            problems.error("", f"`{source}` does not exist in the repository", start)
            return YMap(pos=start)
    documents = load_documents(text, source, problems) if text.strip() else []
    header, body = split_header(documents)
    body = apply_inputs(header, body, None, variables, problems)
    if not isinstance(body, YMap) or not body:
        kind = "empty" if body is None or body == {} else f"a {type(body).__name__}"
        if documents or not problems.has_errors:
            problems.error(
                "",
                f"the pipeline file must be a mapping of keys at top level (it is {kind})",
                start,
            )
        return YMap(pos=start)
    config = expand_includes(body, source, repo, variables, problems)
    for key in _REMOVED_KEYS:
        _drop(config, key)
    apply_extends(config, problems)
    if _may_hold_references(text, repo):
        resolve_references(config, problems)
    flatten_nested_lists(config, problems)
    apply_defaults(config, problems)
    return config


def _may_hold_references(root_text: str, repo: RepoFiles) -> bool:
    """Whether any file read could hold a ``!reference`` tag: the walk is skipped otherwise."""
    return "!reference" in root_text or any("!reference" in text for text in repo.texts())


def _normalise(root_file: str) -> str:
    return posixpath.normpath(root_file.replace("\\", "/").lstrip("/"))


def _drop(config: YMap, key: str) -> None:
    config.pop(key, None)
    config.key_pos.pop(key, None)
    config.value_pos.pop(key, None)
