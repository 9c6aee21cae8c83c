"""What several gateway replicas share through Redis when `redis_url` is configured: provider
tokens, the entity cache, webhook de-duplication and the change feed behind subscriptions."""
