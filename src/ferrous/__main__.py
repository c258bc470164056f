"""``python -m ferrous``: the same as the ``ferrous`` command."""

from __future__ import annotations

from ferrous.cli.main import main

if __name__ == "__main__":
    main()
