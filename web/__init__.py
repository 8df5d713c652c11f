"""The Quart API: validate -> enqueue -> 202; read-only endpoints; health and metrics."""
