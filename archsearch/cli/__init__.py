"""The ``archsearch`` command line: one module per command group; heavy imports happen inside the commands."""
