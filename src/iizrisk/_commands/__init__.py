"""Sub-commands of the ``iizrisk`` command line, one module each (see :mod:`iizrisk.cli`)."""
