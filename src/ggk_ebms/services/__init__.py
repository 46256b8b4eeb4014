"""Use cases: one function per use case, a context object first, typed inputs and results."""
