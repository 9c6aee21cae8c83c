"""State that outlives a request: each concern (entity cache, change bus, deliveries seen,
provider tokens) is a protocol with its in-process implementation in the package's
`__init__` and the Redis one beside it in `redis.py`, which several replicas share when
`redis_url` is configured. The vault of secrets handed over at run time lives here too."""
