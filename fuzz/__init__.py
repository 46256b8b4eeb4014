"""Fuzz targets for the parsers that read partner input (docs/security.md, "Fuzzing")."""
