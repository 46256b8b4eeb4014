"""Ketendata: the gemeente's own chain dataset built from its own iWmo/iJw/iEb traffic (pure core)."""
