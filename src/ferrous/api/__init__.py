"""api layer of Ferrous CI."""
