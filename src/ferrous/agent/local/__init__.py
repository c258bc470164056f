"""``ferrous run``: a whole pipeline on this machine, with the agent's job runner."""
