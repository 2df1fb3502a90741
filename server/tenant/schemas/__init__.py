"""Request and response bodies of the tenant API (declared in the OpenAPI spec; validated at
the edge with Chinese messages). `parse_body` is the one way a window reads a JSON body: it
lives in server.core.bodies (the login window in server.accounts uses it too)."""

from server.core.bodies import Body, parse_body, query_params

__all__ = ["Body", "parse_body", "query_params"]
