"""``affectllm serve``: an OpenAI-compatible chat-completions server around one loaded AffectLLM model.

- ``schemas``: the request/response models; ``protocol``: requests -> engine jobs, results -> responses/SSE;
- ``media``: content parts -> local files under the media policy (allowed folder, remote switch, limits);
- ``engine``: one model, a FIFO worker thread, streaming; ``auth``: bearer key; ``app``: the FastAPI app.
"""

from affectllm.serving.app import ServeSettings, create_app
from affectllm.serving.errors import RequestError
from affectllm.serving.job_queue import Job, JobQueue, Result
from affectllm.serving.media import MediaPolicy

__all__ = ["Job", "JobQueue", "MediaPolicy", "RequestError", "Result", "ServeSettings", "create_app"]
