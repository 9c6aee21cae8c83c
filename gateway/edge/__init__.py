"""The HTTP edge: the FastAPI app and its routes, the GraphQL router's guards, responses by the
GraphQL-over-HTTP rules, GraphiQL, callers' identity, and persisted queries.
"""
