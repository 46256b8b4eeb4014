"""StUF-GGk envelope: parse the Di01/Du01/Fo01 that carry iWmo/iJw/iEb traffic, and build our own.

Pure core: bytes in, values out. See docs/stuf-routing.md for the versions accepted and the checks.
"""
