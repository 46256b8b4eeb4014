"""cpa layer."""
