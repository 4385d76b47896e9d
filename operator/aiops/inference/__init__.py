"""The private LLM gateway: versioned persona prompts and a validated, retried chat-completion call
to any OpenAI-compatible server (vLLM, llama.cpp, Ollama, a hosted API)."""
