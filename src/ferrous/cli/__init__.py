"""cli layer of Ferrous CI."""
