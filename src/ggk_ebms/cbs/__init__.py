"""CBS Monitor Sociaal Domein deliveries through RINIS (pure core; docs/cbs.md)."""
