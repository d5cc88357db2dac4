"""The versioned JSON API: /api/v1 and /api/v2, errors, parameters, OpenAPI schema."""
