"""A study as data: its file's sections (config), its identity and fingerprint (identity), its data
(datasets) and the metrics it may name (metrics). Below both ``run`` (the run directory) and ``search``
(the backends that run trials), so that neither imports the other."""
