"""The ``ggk-ebms`` command line."""
