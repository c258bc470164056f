"""The ``ferrous`` command: one Typer app, each command defined in its own module."""

from __future__ import annotations

from typing import Annotated

import typer

from ferrous.cli import (
    admin,
    agent,
    agent_tokens,
    artifacts,
    audit,
    lint,
    login,
    notifications,  # noqa: F401  # adds `project notify`
    project_forge,  # noqa: F401  # adds `project update`
    project_secrets,  # noqa: F401  # adds `project secret`
    project_show,  # noqa: F401  # adds `project show`
    project_trigger_tokens,  # noqa: F401  # adds `project trigger-token`
    project_webhooks,  # noqa: F401  # adds its commands to `project`
    remote,
    run,
    schedules,
    secrets,
    serve,
    test_reports,
)

app = typer.Typer(
    name="ferrous",
    help="Ferrous CI: run GitLab CI pipelines locally or on a server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="API token for the server's API (else FERROUS_TOKEN, else `ferrous login`'s).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Ferrous CI: run GitLab CI pipelines locally or on a server."""


app.command("lint", help=lint.HELP)(lint.lint_command)
app.command("run", help=run.HELP)(run.run_command)
app.command("serve", help=serve.HELP)(serve.serve_command)
app.command("agent", help=agent.HELP)(agent.agent_command)
app.add_typer(remote.projects_app, name="project")
app.add_typer(agent_tokens.agent_tokens_app, name="agent-token")
app.add_typer(admin.admin_app, name="admin")
app.add_typer(schedules.schedules_app, name="schedule")
app.add_typer(artifacts.artifacts_app, name="artifacts")
app.add_typer(secrets.secrets_app, name="secrets")
app.command("trigger", help="Start a build of a project; --wait follows it.")(
    remote.trigger_command
)
app.command("builds", help="List builds, newest first.")(remote.builds_command)
app.command("logs", help="Print a job's log; -f follows it live.")(remote.logs_command)
app.command("cancel", help="Cancel a build.")(remote.cancel_command)
app.command("retry", help="Retry a build's failed jobs, or one job.")(remote.retry_command)
app.command("play", help="Start a manual job.")(remote.play_command)
app.command("audit", help="Show the audit log, newest first (admins).")(audit.audit_command)
app.command("tests", help=test_reports.HELP)(test_reports.build_tests_command)
app.command("login", help="Sign in to a server; keeps a personal API token.")(login.login_command)
app.command("logout", help="Revoke and forget the token `login` kept.")(login.logout_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
