"""infrastructure layer of Ferrous CI."""
