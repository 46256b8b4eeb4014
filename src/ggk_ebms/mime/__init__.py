"""mime layer."""
