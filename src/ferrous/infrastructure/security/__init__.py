"""Security adapters: secrets encrypted at rest (``secret_box``), password hashes
(``passwords``) and signed access tokens (``access_tokens``)."""
