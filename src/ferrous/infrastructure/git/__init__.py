"""Git repositories through the git CLI."""
