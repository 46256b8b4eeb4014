"""Aanleveren (the GGk portal's batch upload): safe unpacking, per-file checks, the verslag texts.

``upload`` opens a ZIP or XML upload with caps against zip bombs and path tricks; ``checks`` holds
the portal's refusal texts; ``estimate`` computes the expected end of a batch. The use case itself
is ``ggk_ebms.services.aanleveren``. See docs/operations.md.
"""
