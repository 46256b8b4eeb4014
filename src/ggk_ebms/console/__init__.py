"""The web console: the GGk portal's tabs per product on the management listener (docs/console.md)."""
