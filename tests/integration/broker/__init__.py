"""Contract tests of the broker adapters (memory, Redis, RabbitMQ) and their outage behaviour."""
