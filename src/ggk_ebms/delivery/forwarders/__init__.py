"""Forwarders: hand one checked, routed message to its route's target (docs/delivery.md)."""
