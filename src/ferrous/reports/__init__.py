"""Test reports (JUnit XML) read into per-test results."""
