"""Security adapters: secrets encrypted at rest (``secret_box``)."""
