"""Readers for the structured job keywords: artifacts, cache, image, services, environment,
retry, allow_failure and variables.

Each turns a loaded YAML value into the plan's typed value, reporting every problem with its
path; unknown sub-keys are errors, as in GitLab.
"""

from __future__ import annotations

from typing import Any

from ferrous.pipeline_config.checks import Checker
from ferrous.pipeline_config.plan import (
    RETRY_WHEN_VALUES,
    AllowFailure,
    Artifacts,
    Cache,
    Environment,
    Image,
    Retry,
    Service,
)
from ferrous.pipeline_config.problems import Position
from ferrous.pipeline_config.yaml_source import YMap, where

ARTIFACT_KEYS = (
    "paths", "exclude", "expire_in", "expose_as", "name", "public", "access", "reports",
    "untracked", "when",
)  # fmt: skip
REPORT_KEYS = (
    "junit", "coverage_report", "codequality", "sast", "dependency_scanning",
    "container_scanning", "dast", "license_scanning", "performance", "browser_performance",
    "load_performance", "metrics", "requirements", "secret_detection", "terraform",
    "accessibility", "api_fuzzing", "coverage_fuzzing", "cyclonedx", "dotenv", "annotations",
    "repository_xray",
)  # fmt: skip
CACHE_KEYS = (
    "key", "paths", "untracked", "unprotect", "when", "policy", "fallback_keys",
)  # fmt: skip
ARTIFACT_WHEN = ("on_success", "on_failure", "always")
CACHE_POLICIES = ("pull", "push", "pull-push")
IMAGE_KEYS = ("name", "entrypoint", "pull_policy", "docker", "kubernetes")
SERVICE_KEYS = ("name", "alias", "entrypoint", "command", "variables", "pull_policy", "docker",
                "kubernetes")  # fmt: skip
ENVIRONMENT_KEYS = ("name", "url", "on_stop", "action", "auto_stop_in", "kubernetes",
                    "deployment_tier")  # fmt: skip
ENVIRONMENT_ACTIONS = ("start", "prepare", "stop", "verify", "access")
VARIABLE_KEYS = ("value", "description", "expand", "options")


def read_allow_failure(check: Checker, value: Any, path: str, pos: Position) -> AllowFailure | None:
    if isinstance(value, bool):
        return AllowFailure(allowed=value)
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, ("exit_codes",), path, "allow_failure")
    codes = _exit_codes(
        check, mapping.get("exit_codes"), f"{path}.exit_codes", mapping.where("exit_codes")
    )
    if codes is None:
        return None
    return AllowFailure(allowed=False, exit_codes=codes)


def _exit_codes(check: Checker, value: Any, path: str, pos: Position) -> tuple[int, ...] | None:
    items = value if isinstance(value, list) else [value]
    codes: list[int] = []
    for index, item in enumerate(items):
        code = check.integer(
            item,
            path if value is items else f"{path}[{index}]",
            where(value, index) if isinstance(value, list) else pos,
            low=0,
            high=255,
        )
        if code is None:
            return None
        codes.append(code)
    if not codes:
        check.error(path, f"{path} should list at least one exit code", pos)
        return None
    return tuple(codes)


def read_retry(check: Checker, value: Any, path: str, pos: Position) -> Retry | None:
    if isinstance(value, int) and not isinstance(value, bool):
        count = check.integer(value, path, pos, low=0, high=2)
        return None if count is None else Retry(max=count)
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, ("max", "when", "exit_codes"), path, "retry")
    count = 0
    if "max" in mapping:
        read = check.integer(mapping["max"], f"{path}.max", mapping.where("max"), low=0, high=2)
        count = read if read is not None else 0
    when: tuple[str, ...] = ("always",)
    if "when" in mapping:
        read_when = check.strings(mapping["when"], f"{path}.when", mapping.where("when"))
        if read_when is not None:
            for reason in read_when:
                if reason not in RETRY_WHEN_VALUES:
                    check.error(
                        f"{path}.when",
                        f"{path}.when: unknown failure reason {reason!r}; expected one of "
                        + ", ".join(sorted(RETRY_WHEN_VALUES)),
                        mapping.where("when"),
                    )
            when = read_when
    codes: tuple[int, ...] = ()
    if "exit_codes" in mapping:
        codes = (
            _exit_codes(
                check, mapping["exit_codes"], f"{path}.exit_codes", mapping.where("exit_codes")
            )
            or ()
        )
    return Retry(max=count, when=when, exit_codes=codes)


def read_artifacts(check: Checker, value: Any, path: str, pos: Position) -> Artifacts | None:
    if value is None:
        check.warning(path, f"{path} is empty and is ignored", pos)
        return None
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, ARTIFACT_KEYS, path, "artifacts")
    strs = {
        key: check.strings(mapping.get(key), f"{path}.{key}", mapping.where(key)) or ()
        for key in ("paths", "exclude")
    }
    when = "on_success"
    if "when" in mapping:
        when = (
            check.choice(mapping["when"], f"{path}.when", mapping.where("when"), ARTIFACT_WHEN)
            or when
        )
    reports: dict[str, tuple[str, ...]] = {}
    if mapping.get("reports") is not None:
        report_map = check.mapping(mapping["reports"], f"{path}.reports", mapping.where("reports"))
        if report_map is not None:
            check.unknown_keys(report_map, REPORT_KEYS, f"{path}.reports", "artifacts:reports")
            for kind, files in report_map.items():
                if kind in REPORT_KEYS and kind != "coverage_report":
                    read = check.strings(  # GitLab: a string or a list of strings, no numbers
                        files, f"{path}.reports.{kind}", report_map.where(kind), numbers=False
                    )
                    reports[str(kind)] = read or ()
    optional = {
        key: check.string(mapping[key], f"{path}.{key}", mapping.where(key), numbers=True)
        for key in ("expire_in", "name", "expose_as")
        if mapping.get(key) is not None
    }
    if (
        optional.get("expire_in") not in (None, "never")
        and check.duration(optional["expire_in"], f"{path}.expire_in", mapping.where("expire_in"))
        is None
    ):
        optional["expire_in"] = None
    untracked = (
        bool(check.boolean(mapping["untracked"], f"{path}.untracked", mapping.where("untracked")))
        if "untracked" in mapping
        else False
    )
    public = (
        check.boolean(mapping["public"], f"{path}.public", mapping.where("public"))
        if "public" in mapping
        else True
    )
    return Artifacts(
        paths=strs["paths"],
        exclude=strs["exclude"],
        untracked=untracked,
        when=when,
        expire_in=optional.get("expire_in"),
        name=optional.get("name"),
        expose_as=optional.get("expose_as"),
        public=public is not False,
        reports=reports,
    )


def read_caches(check: Checker, value: Any, path: str, pos: Position) -> tuple[Cache, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if len(items) > 4:
        check.error(path, f"{path}: a job can have at most 4 caches", pos)
    caches = []
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]" if isinstance(value, list) else path
        cache = _read_cache(
            check, item, item_path, where(value, index) if isinstance(value, list) else pos
        )
        if cache is not None:
            caches.append(cache)
    return tuple(caches)


def _read_cache(check: Checker, value: Any, path: str, pos: Position) -> Cache | None:
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, CACHE_KEYS, path, "cache")
    key = "default"
    key_files: tuple[str, ...] = ()
    prefix = None
    raw_key = mapping.get("key")
    if isinstance(raw_key, dict):
        key_map = check.mapping(raw_key, f"{path}.key", mapping.where("key"))
        if key_map is not None:
            check.unknown_keys(key_map, ("files", "prefix"), f"{path}.key", "cache:key")
            files = check.strings(  # GitLab's Entry::Files: an array, never a lone string
                key_map.get("files"), f"{path}.key.files", key_map.where("files"), scalar_ok=False
            )
            key_files = files or ()
            if files is not None and not key_files:
                check.error(
                    f"{path}.key.files",
                    f"{path}.key.files should list one or two files",
                    key_map.pos,
                )
            elif len(key_files) > 2:
                check.error(
                    f"{path}.key.files",
                    f"{path}.key.files can list at most 2 files",
                    key_map.where("files"),
                )
            if "prefix" in key_map:
                prefix = check.string(
                    key_map["prefix"], f"{path}.key.prefix", key_map.where("prefix"), numbers=True
                )
    elif raw_key is not None:
        key = check.string(raw_key, f"{path}.key", mapping.where("key"), numbers=True) or key
        if "/" in key or key in (".", "..") or "%2F" in key.upper():
            check.error(
                f"{path}.key",
                f"{path}.key cannot contain '/' or be '.' or '..'",
                mapping.where("key"),
            )
    policy = "pull-push"
    if isinstance(mapping.get("policy"), str) and "$" in mapping["policy"]:
        policy = mapping["policy"]  # a variable: checked once the job's variables are known
    elif "policy" in mapping:
        policy = (
            check.choice(
                mapping["policy"], f"{path}.policy", mapping.where("policy"), CACHE_POLICIES
            )
            or policy
        )
    when = "on_success"
    if "when" in mapping:
        when = (
            check.choice(mapping["when"], f"{path}.when", mapping.where("when"), ARTIFACT_WHEN)
            or when
        )
    flags = {
        name: bool(check.boolean(mapping[name], f"{path}.{name}", mapping.where(name)))
        for name in ("untracked", "unprotect")
        if name in mapping
    }
    return Cache(
        key=key,
        key_files=key_files,
        key_prefix=prefix,
        paths=check.strings(  # GitLab's Entry::Paths: an array of strings
            mapping.get("paths"), f"{path}.paths", mapping.where("paths"), scalar_ok=False
        )
        or (),
        untracked=flags.get("untracked", False),
        policy=policy,
        when=when,
        fallback_keys=check.strings(
            mapping.get("fallback_keys"), f"{path}.fallback_keys", mapping.where("fallback_keys")
        )
        or (),
        unprotect=flags.get("unprotect", False),
    )


def read_image(check: Checker, value: Any, path: str, pos: Position) -> Image | None:
    if isinstance(value, str):
        return Image(name=value)
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, IMAGE_KEYS, path, "image")
    name = check.string(mapping.get("name"), f"{path}.name", mapping.where("name"))
    if name is None:
        return None
    entrypoint = (
        check.strings(mapping["entrypoint"], f"{path}.entrypoint", mapping.where("entrypoint"))
        if "entrypoint" in mapping
        else None
    )
    pull = (
        check.strings(
            mapping.get("pull_policy"), f"{path}.pull_policy", mapping.where("pull_policy")
        )
        or ()
    )
    docker = mapping.get("docker") if isinstance(mapping.get("docker"), dict) else {}
    return Image(name=name, entrypoint=entrypoint, pull_policy=pull, docker=dict(docker or {}))


def read_services(check: Checker, value: Any, path: str, pos: Position) -> tuple[Service, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        check.error(path, f"{path} should be a list of images", pos)
        return ()
    services = []
    for index, item in enumerate(value):
        item_path, item_pos = f"{path}[{index}]", where(value, index)
        if isinstance(item, str):
            services.append(Service(name=item))
            continue
        mapping = check.mapping(item, item_path, item_pos)
        if mapping is None:
            continue
        check.unknown_keys(mapping, SERVICE_KEYS, item_path, "services")
        name = check.string(mapping.get("name"), f"{item_path}.name", mapping.where("name"))
        if name is None:
            continue
        alias = (
            check.string(mapping["alias"], f"{item_path}.alias", mapping.where("alias"))
            if "alias" in mapping
            else None
        )
        variables = read_variables(
            check, mapping.get("variables"), f"{item_path}.variables", mapping.where("variables")
        )[0]
        services.append(Service(name=name, alias=alias, variables=variables))
    return tuple(services)


def read_environment(check: Checker, value: Any, path: str, pos: Position) -> Environment | None:
    if isinstance(value, str):
        return Environment(name=value)
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return None
    check.unknown_keys(mapping, ENVIRONMENT_KEYS, path, "environment")
    name = check.string(mapping.get("name"), f"{path}.name", mapping.where("name"))
    if name is None:
        return None
    texts = {
        key: check.string(mapping[key], f"{path}.{key}", mapping.where(key))
        for key in ("url", "on_stop", "auto_stop_in", "deployment_tier")
        if key in mapping
    }
    action = "start"
    if "action" in mapping:
        action = (
            check.choice(
                mapping["action"], f"{path}.action", mapping.where("action"), ENVIRONMENT_ACTIONS
            )
            or action
        )
    return Environment(
        name=name,
        url=texts.get("url"),
        action=action,
        on_stop=texts.get("on_stop"),
        auto_stop_in=texts.get("auto_stop_in"),
        deployment_tier=texts.get("deployment_tier"),
    )


def read_variables(
    check: Checker, value: Any, path: str, pos: Position
) -> tuple[dict[str, str], frozenset[str]]:
    """Variables as name -> value, and the names marked ``expand: false``."""
    if value is None:
        return {}, frozenset()
    mapping = check.mapping(value, path, pos)
    if mapping is None:
        return {}, frozenset()
    values: dict[str, str] = {}
    raw: set[str] = set()
    for name, item in mapping.items():
        item_path, item_pos = f"{path}.{name}", mapping.where(name)
        if not isinstance(name, str) or not name:
            check.error(
                item_path, f"{path}: variable names must be strings", mapping.where_key(name)
            )
            continue
        if isinstance(item, dict):
            detail = check.mapping(item, item_path, item_pos)
            if detail is None:
                continue
            check.unknown_keys(detail, VARIABLE_KEYS, item_path, "a variable")
            text = _variable_value(
                check, detail.get("value", ""), f"{item_path}.value", detail.where("value")
            )
            if detail.get("expand") is False:
                raw.add(name)
        else:
            text = _variable_value(check, item, item_path, item_pos)
        if text is not None:
            values[name] = text
    return values, frozenset(raw)


def _variable_value(check: Checker, value: Any, path: str, pos: Position) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # GitLab accepts booleans and stores Ruby's to_s
    if isinstance(value, str | int | float):
        return str(value)
    check.error(path, f"{path} should be a string or a number, not a {type(value).__name__}", pos)
    return None


def as_map(value: Any) -> YMap | None:
    return value if isinstance(value, YMap) else None
