"""Brokers: how server processes tell each other about events, wake-ups and log chunks."""
