"""Ray Tune backend: the same study, its trials placed on a Ray cluster."""
