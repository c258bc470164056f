"""The ``ferrous`` command: one Typer app, each command defined in its own module."""

from __future__ import annotations

import typer

from ferrous.cli import lint, run

app = typer.Typer(
    name="ferrous",
    help="Ferrous CI: run GitLab CI pipelines locally or on a server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("lint", help=lint.HELP)(lint.lint_command)
app.command("run", help=run.HELP)(run.run_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
