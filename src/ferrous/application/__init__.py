"""application layer of Ferrous CI."""
