"""Compiled execution: each validated query planned once, its objects built by generated
functions straight from the model records, graphql-core's executor for the rest.

`executor.py` is the executor class graphql-core runs (it falls back to its parent,
graphql-core's own, per operation); `plan.py` compiles an operation into the functions
it runs. Plans are kept with the parsed document (`schema/documents.py`).
"""

from schema.compiled.executor import COMPILED, GRAPHQL_CORE, CompiledExecutor, GraphQLCoreExecutor

__all__ = ["COMPILED", "GRAPHQL_CORE", "CompiledExecutor", "GraphQLCoreExecutor"]
