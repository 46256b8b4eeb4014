"""The GGk portal's daily work as use cases: one module per use case, one function per action.

Every function takes a ``ServiceContext`` (database, settings, clock, ids, the actor for the audit
trail) first, typed inputs after it, and returns frozen dataclasses; none does I/O of its own
beyond the store and the adapters it names. The CLI calls them now, the HTTP API and console
later. The list of functions and their types is docs/services.md.
"""
