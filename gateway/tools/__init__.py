"""Developer tools: what a person working on the gateway runs, not what it serves."""
