"""Test-only code: fault knobs, the dev PKI minter and the demo's machinery.

Nothing on a production path imports this package. ``serve`` imports ``testing.faults`` only when
the ``test_faults`` setting is set; ``dev-certs`` and ``demo`` import their parts when they run.
See docs/architecture.md.
"""
