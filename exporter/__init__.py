"""llm-healthcheck: a readiness sidecar for LLM inference servers."""

__version__ = "0.1.0"
