"""Any OpenAI-compatible chat endpoint as judge (OpenAI, vLLM, llama.cpp server, Ollama …), through httpx.

Base URL, model and key come from arguments or ``AFFECTLLM_JUDGE_BASE_URL``, ``AFFECTLLM_JUDGE_MODEL``,
``AFFECTLLM_JUDGE_API_KEY``. Requests use temperature 0; responses are cached by the base class (each as it
arrives, so a judge run that stops resumes where it stopped). A rate limit (429), a server error (500, 502, 503,
504), a timeout or a dropped connection is retried ``max_retries`` times with exponential backoff (1, 2, 4 … s,
at most ``MAX_BACKOFF_S``), waiting the server's ``Retry-After`` when it sends one; other errors fail at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from affectllm.evaluation.judges.base import JudgeCache, JudgeError, PromptJudge

RETRY_STATUS = (429, 500, 502, 503, 504)
MAX_BACKOFF_S = 60.0


class OpenAIJudge(PromptJudge):
    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None, *,
                 max_tokens: int = 256, timeout: float = 120.0, transport: Any = None,
                 cache: JudgeCache | None = None, max_retries: int = 5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(cache)
        self.base_url = (base_url or os.environ.get("AFFECTLLM_JUDGE_BASE_URL") or "").rstrip("/")
        self.model = model or os.environ.get("AFFECTLLM_JUDGE_MODEL") or ""
        self.api_key = api_key or os.environ.get("AFFECTLLM_JUDGE_API_KEY") or ""
        if not self.base_url or not self.model:
            raise JudgeError("the OpenAI-compatible judge needs a base URL and a model: pass --judge-base-url and "
                             "--judge-model (or set AFFECTLLM_JUDGE_BASE_URL and AFFECTLLM_JUDGE_MODEL)")
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries, self._sleep = max_retries, sleep
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
        r = None
        for attempt in range(self.max_retries + 1):
            try:
                r = self._http().post("/chat/completions", json=body)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                if attempt == self.max_retries:
                    raise JudgeError(f"{self.base_url}/chat/completions: request failed after {attempt + 1} "
                                     f"tries ({e}); check --judge-base-url and that the server is running") from e
                self._sleep(self._backoff(attempt, None))
                continue
            except httpx.HTTPError as e:
                raise JudgeError(f"{self.base_url}/chat/completions: request failed ({e}); check --judge-base-url "
                                 "and that the server is running") from e
            if r.status_code in RETRY_STATUS and attempt < self.max_retries:
                self._sleep(self._backoff(attempt, r.headers.get("retry-after")))
                continue
            break
        if r.status_code != 200:
            tries = f" after {self.max_retries + 1} tries" if r.status_code in RETRY_STATUS else ""
            raise JudgeError(f"{self.base_url}/chat/completions answered HTTP {r.status_code}{tries}: "
                             f"{r.text[:200]!r}; check the model name and AFFECTLLM_JUDGE_API_KEY"
                             + ("; the answers so far are cached: run again to go on" if tries else ""))
        try:
            return str(r.json()["choices"][0]["message"]["content"] or "").strip()
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise JudgeError(f"{self.base_url}/chat/completions: unexpected response {r.text[:200]!r}") from e

    @staticmethod
    def _backoff(attempt: int, retry_after: str | None) -> float:
        """Seconds before try ``attempt + 2``: the server's Retry-After (seconds) when given, else 2^attempt."""
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), MAX_BACKOFF_S)
            except ValueError:
                pass  # an HTTP date: fall back to the exponential wait
        return min(2.0 ** attempt, MAX_BACKOFF_S)
