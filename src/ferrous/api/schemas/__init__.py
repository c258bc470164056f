"""Request and response models of the REST API (responses are built from the query DTOs)."""
