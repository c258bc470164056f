"""Ferrous CI: a self-hosted CI/CD server that runs GitLab CI pipelines unchanged."""

__version__ = "0.1.0"
