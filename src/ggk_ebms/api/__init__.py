"""The management API: our REST API (/api/v1), the ebms-core REST v19 compatible API
(/service/rest/v19), health checks and Prometheus metrics, on a listener of its own (docs/api.md)."""
