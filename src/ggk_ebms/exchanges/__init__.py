"""Berichtuitwisselingen (exchanges): what each pair of berichttypen may do (docs/exchanges.md)."""
