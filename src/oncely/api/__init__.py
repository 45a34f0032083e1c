"""The HTTP surface: health and readiness; the REST API and the dashboard join here."""
