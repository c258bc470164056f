"""web layer of Ferrous CI."""
