"""Tests against the shared real-world corpus; each skips when the corpus is absent."""
