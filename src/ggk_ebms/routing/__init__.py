"""The routing table: which forwarder gets a message for (gemeentecode, berichttype), and who may send it.

``table`` is pure; ``load`` reads a routes.toml (an adapter function taking a Path).
"""
