"""Job specs to and from JSON, for storing them with a build and sending them to agents.

The server compiles a pipeline once, at trigger time; agents get the compiled spec and never
look at YAML, so both sides must agree on this one encoding.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ferrous.domain.statuses import When
from ferrous.pipeline_config.plan import (
    AllowFailure,
    Artifacts,
    Cache,
    Environment,
    Image,
    JobSpec,
    Need,
    Retry,
    Service,
)


def job_spec_to_json(spec: JobSpec) -> dict[str, Any]:
    data = dataclasses.asdict(spec)
    data["when"] = spec.when.value
    data["raw_variables"] = sorted(spec.raw_variables)
    return data


def _tuple(value: Any) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def job_spec_from_json(data: dict[str, Any]) -> JobSpec:
    fields = dict(data)
    fields["when"] = When(data["when"])
    fields["allow_failure"] = AllowFailure(
        allowed=data["allow_failure"]["allowed"],
        exit_codes=tuple(data["allow_failure"]["exit_codes"]),
    )
    fields["needs"] = (
        None if data["needs"] is None else tuple(Need(**need) for need in data["needs"])
    )
    fields["dependencies"] = _tuple(data["dependencies"])
    for key in ("before_script", "script", "after_script", "tags"):
        fields[key] = tuple(data[key])
    fields["raw_variables"] = frozenset(data["raw_variables"])
    retry = data["retry"]
    fields["retry"] = Retry(
        max=retry["max"], when=tuple(retry["when"]), exit_codes=tuple(retry["exit_codes"])
    )
    artifacts = data["artifacts"]
    fields["artifacts"] = (
        None
        if artifacts is None
        else Artifacts(
            **{
                **artifacts,
                "paths": tuple(artifacts["paths"]),
                "exclude": tuple(artifacts["exclude"]),
                "reports": {k: tuple(v) for k, v in artifacts["reports"].items()},
            }
        )
    )
    fields["cache"] = tuple(
        Cache(
            **{
                **cache,
                "key_files": tuple(cache["key_files"]),
                "paths": tuple(cache["paths"]),
                "fallback_keys": tuple(cache["fallback_keys"]),
            }
        )
        for cache in data["cache"]
    )
    image = data["image"]
    fields["image"] = (
        None
        if image is None
        else Image(
            **{
                **image,
                "entrypoint": _tuple(image["entrypoint"]),
                "pull_policy": tuple(image["pull_policy"]),
            }
        )
    )
    fields["services"] = tuple(
        Service(
            **{
                **service,
                "entrypoint": _tuple(service["entrypoint"]),
                "command": _tuple(service["command"]),
            }
        )
        for service in data["services"]
    )
    environment = data["environment"]
    fields["environment"] = None if environment is None else Environment(**environment)
    return JobSpec(**fields)
