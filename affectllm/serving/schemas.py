"""Request and response models of the OpenAI chat-completions subset that ``affectllm serve`` speaks.

Requests follow OpenAI's shape so any OpenAI client works: messages whose content is a string or a list of
parts (``text``, ``image_url``, ``video_url``, ``audio_url``, ``input_audio``). Unknown top-level fields are
ignored (clients send ``user``, ``frequency_penalty`` …); unknown content part types are refused (400).
Decoding is greedy unless ``temperature`` > 0 (then ``top_p`` and ``seed`` apply); ``stop`` cuts the answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- content parts ----------------------------------------------------------------------------------------
class URLRef(_Lenient):
    url: str = Field(description="data: URL (base64), file:// URL or path inside --allowed-media-dir, or "
                                 "http(s) URL when the server runs with --allow-remote-media")
    detail: str | None = None


class InputAudio(_Lenient):
    data: str = Field(description="base64-encoded audio file bytes")
    format: str = Field(description="container format, e.g. wav, mp3, flac")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImageURLPart(_Strict):
    type: Literal["image_url"]
    image_url: URLRef


class VideoURLPart(_Strict):
    type: Literal["video_url"]
    video_url: URLRef


class AudioURLPart(_Strict):
    type: Literal["audio_url"]
    audio_url: URLRef


class InputAudioPart(_Strict):
    type: Literal["input_audio"]
    input_audio: InputAudio


ContentPart = Annotated[TextPart | ImageURLPart | VideoURLPart | AudioURLPart | InputAudioPart,
                        Field(discriminator="type")]
MEDIA_PART_TYPES = ("image_url", "video_url", "audio_url", "input_audio")


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class JSONSchemaSpec(_Lenient):
    """OpenAI's ``response_format.json_schema``: a name and the schema the answer must satisfy."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    name: str = Field("report", max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="a JSON Schema whose properties are "
                                           "EmotionReport fields; omitted: the whole report")
    strict: bool | None = None


class ResponseFormat(_Lenient):
    """``json_object`` / ``json_schema``: the content is the EmotionReport as JSON (``affectllm.report.schema``)."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JSONSchemaSpec | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatCompletionRequest(_Lenient):
    """POST /v1/chat/completions body."""

    model: str | None = Field(None, description="the served model id (GET /v1/models); omitted = that model")
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, description="capped by the server's --max-new-tokens")
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    n: int | None = Field(None, description="choices to generate; only 1 is supported")
    temperature: float | None = Field(None, ge=0, le=2, description="0 or omitted: greedy decoding (the "
                                      "default); above 0: sampling at this temperature")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling mass (when temperature > 0)")
    seed: int | None = Field(None, ge=-(2**63), lt=2**64, description="makes sampling reproducible")
    stop: str | list[str] | None = Field(None, description="up to 4 strings; the answer ends before the first")


# --- responses --------------------------------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    """A non-streamed answer. ``report`` (an AffectLLM extension) is the parsed EmotionReport."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    report: dict[str, Any] = Field(default_factory=dict)


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer; the last data line is ``[DONE]``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    report: dict[str, Any] | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "affectllm"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    queued: int = Field(description="requests waiting for or using the model")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope."""

    error: ErrorDetail
