"""Outbound transport: the mutual-TLS HTTP client (adapter), retry decisions and the ping diagnosis.

``result`` (values), ``failures`` (exception -> layer), ``retry`` (pure retry table, timing and
status model) and ``diagnosis`` (plain words) do no I/O; only ``client`` opens sockets.
"""
