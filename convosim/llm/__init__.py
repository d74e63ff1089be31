"""LLM access through litellm: model config, a robust client, a response cache, usage accounting."""
