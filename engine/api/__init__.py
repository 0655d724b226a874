"""The HTTP layer: thin routers over plain functions, one error handler, middleware."""
