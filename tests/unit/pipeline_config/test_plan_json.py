"""Job specs survive the trip to JSON and back unchanged."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from ferrous.pipeline_config.compiler import compile_pipeline
from ferrous.pipeline_config.context import TriggerContext
from ferrous.pipeline_config.plan_json import job_spec_from_json, job_spec_to_json

PIPELINE = """\
stages: [build, test]
build:
  stage: build
  image: {name: "python:3.12", entrypoint: [""]}
  services: [{name: postgres, alias: db}]
  script: [make]
  artifacts: {paths: [out/], reports: {junit: [report.xml]}}
  cache: {key: {files: [lock]}, paths: [.cache]}
  retry: {max: 2, when: [script_failure]}
  environment: {name: prod, url: "https://x"}
  parallel:
    matrix:
      - OS: [linux, mac]
test:
  stage: test
  script: [make test]
  needs: [{job: build, artifacts: false}]
  allow_failure: {exit_codes: [3]}
  variables: {RAW: {value: "$X", expand: false}}
  timeout: 10m
"""


def test_round_trip_through_json(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(textwrap.dedent(PIPELINE))
    result = compile_pipeline(tmp_path, TriggerContext(branch="main"))
    assert not result.has_errors, result.problems
    for spec in result.plan.jobs:
        encoded = json.loads(json.dumps(job_spec_to_json(spec)))
        assert job_spec_from_json(encoded) == spec
