"""Any OpenAI-compatible chat endpoint as judge (OpenAI, vLLM, llama.cpp server, Ollama …), through httpx.

Base URL, model and key come from arguments or ``AFFECTLLM_JUDGE_BASE_URL``, ``AFFECTLLM_JUDGE_MODEL``,
``AFFECTLLM_JUDGE_API_KEY``. Requests use temperature 0; responses are cached by the base class.
"""

from __future__ import annotations

import os
from typing import Any

from affectllm.evaluation.judges.base import JudgeCache, JudgeError, PromptJudge


class OpenAIJudge(PromptJudge):
    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None, *,
                 max_tokens: int = 256, timeout: float = 120.0, transport: Any = None,
                 cache: JudgeCache | None = None) -> None:
        super().__init__(cache)
        self.base_url = (base_url or os.environ.get("AFFECTLLM_JUDGE_BASE_URL") or "").rstrip("/")
        self.model = model or os.environ.get("AFFECTLLM_JUDGE_MODEL") or ""
        self.api_key = api_key or os.environ.get("AFFECTLLM_JUDGE_API_KEY") or ""
        if not self.base_url or not self.model:
            raise JudgeError("the OpenAI-compatible judge needs a base URL and a model: pass --judge-base-url and "
                             "--judge-model (or set AFFECTLLM_JUDGE_BASE_URL and AFFECTLLM_JUDGE_MODEL)")
        self.max_tokens = max_tokens
        self.timeout = timeout
        self._transport = transport
        self._client: Any = None
        self.fingerprint = f"openai:{self.base_url}:{self.model}:t0:{max_tokens}"

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout,
                                        transport=self._transport)
        return self._client

    def _complete(self, prompt: str) -> str:
        import httpx

        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
                "max_tokens": self.max_tokens}
        try:
            r = self._http().post("/chat/completions", json=body)
        except httpx.HTTPError as e:
            raise JudgeError(f"{self.base_url}/chat/completions: request failed ({e}); check --judge-base-url "
                             "and that the server is running") from e
        if r.status_code != 200:
            raise JudgeError(f"{self.base_url}/chat/completions answered HTTP {r.status_code}: {r.text[:200]!r}; "
                             "check the model name and AFFECTLLM_JUDGE_API_KEY")
        try:
            return str(r.json()["choices"][0]["message"]["content"] or "").strip()
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise JudgeError(f"{self.base_url}/chat/completions: unexpected response {r.text[:200]!r}") from e
