"""The job runner: what executes jobs, for ``ferrous run`` now and the server's agents later.

- ``executor``: the Executor protocol and its lifecycle; ``shell`` (bash) implements it, on
  top of ``process`` (a process group with its output pumped, killed as a whole).
- ``job_runner``: one job, attempt by attempt (workspace, artifacts, caches, scripts, retry,
  allow_failure); ``job_env``: the variables its shell sees.
- ``workspace``, ``file_copy``: the source a job starts from, copied fast;
  ``file_selection``, ``artifacts``, ``cache``: which files to keep and where they go (the
  ``ArtifactTransfer``/``CacheTransfer`` ports); ``archive_store``: ``.tar.zst`` archives in a
  folder, for ``ferrous run``; ``coverage``: the ``coverage:`` regex over a job's output.
- ``logs``: raw log files and the shared, prefixed console.
- ``local``: a whole pipeline on this machine (``ferrous run``), scheduled by the domain's
  progression rules.
"""
