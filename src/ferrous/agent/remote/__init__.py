"""The server's agents: the agent protocol's client side and the loop that runs jobs.

- ``client``: ``AgentClient``, the HTTP client of the agent protocol (retries, typed errors,
  streamed file transfers: ``streams``); ``protocol``: its errors and the ``AgentApi`` port.
- ``transfer``: ``ServerFiles``, a job's artifacts and caches on the server, for its thread.
- ``worker``: ``AgentWorker``, which claims jobs up to its capacity, runs each with the
  shared job runner in a thread, heartbeats and reports results.
- ``log_shipper``: ``LogShipper``, a job's output shipped in chunks at byte offsets.
- ``source``, ``assignment``: the build's commit cloned into a workspace; the claim payload.
- ``embedded``: ``run_embedded_agents``, the agents inside ``ferrous serve``.
- ``platform_info``: what an agent tells about its machine when it registers.
"""
