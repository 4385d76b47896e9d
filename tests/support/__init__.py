"""Real servers on loopback that tests run against (Prometheus, a scripted OpenAI-compatible API)."""
