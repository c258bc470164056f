"""domain layer of Ferrous CI."""
