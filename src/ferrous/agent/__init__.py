"""agent layer of Ferrous CI."""
