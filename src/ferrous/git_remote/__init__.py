"""The git command line, pointed at a remote repository with its credentials.

Shared by the server's mirrors (``infrastructure.git``) and the agents' checkouts
(``agent.remote``), which must not import each other; it imports only ``domain``.
Credentials reach git through the environment and temporary files (an askpass script, an
SSH key), never through argv; whatever git prints is scrubbed before it is raised.
"""
