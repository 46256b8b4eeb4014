"""ebms layer."""
