"""Test reports: a build's totals, suites and cases; a test's and a job's history."""

from __future__ import annotations

from pydantic import Field

from ferrous.api.schemas.common import ApiModel, UtcDatetime


class ReportTotalsOut(ApiModel):
    total: int
    passed: int
    failed: int
    errored: int
    skipped: int
    duration: float = Field(description="The sum of the cases' durations, in seconds.")


class SuiteOut(ReportTotalsOut):
    name: str


class CaseOut(ApiModel):
    job_id: str
    job_name: str
    key: str = Field(
        description="The test's key, the same in every build: "
        "`GET /projects/{project}/tests/history?key=` gives its runs."
    )
    suite: str
    class_name: str
    name: str
    file: str | None
    duration: float | None = Field(description="Seconds; null when the report gave none.")
    status: str = Field(description="passed, failed, error or skipped.")
    failure: str | None = Field(
        description="The failure's or error's message and text, or why it was skipped "
        "(at most 64 KiB)."
    )


class BuildTestReport(ApiModel):
    totals: ReportTotalsOut
    suites: list[SuiteOut] = Field(description="By name; a suite run by two jobs is one.")
    cases: list[CaseOut] = Field(
        description="One page: failures and errors first, then by suite, class and name."
    )
    next_offset: int | None = Field(
        description="Pass as `offset` to get the next page; null on the last page."
    )


class CaseRunOut(ApiModel):
    build_id: str
    job_id: str
    status: str
    duration: float | None
    created_at: UtcDatetime


class CaseHistory(ApiModel):
    items: list[CaseRunOut] = Field(description="Newest first.")


class JobRunOut(ApiModel):
    build_id: str
    job_id: str
    status: str
    duration: float | None = Field(description="finished_at - started_at, in seconds.")
    finished_at: UtcDatetime


class JobHistory(ApiModel):
    items: list[JobRunOut] = Field(description="Newest build first.")
