"""pipeline_config layer of Ferrous CI."""
