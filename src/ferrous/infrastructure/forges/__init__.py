"""Forge adapters: verifying and reading webhook deliveries from GitHub, GitLab, Gitea/Forgejo,
Gogs and Bitbucket into ``ferrous.application.webhooks`` types (see ``registry``)."""
