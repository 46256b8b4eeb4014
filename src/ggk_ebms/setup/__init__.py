"""The guided first set-up of an installation (``ggk-ebms init``): checks and the settings file."""
