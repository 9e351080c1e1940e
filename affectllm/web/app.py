"""The Gradio multimodal chat: upload a video, audio clip or image, ask, watch the answer stream in, and see
the labels as chips beside the evidence the model read (transcript, face expression over time, prosody).

``build_demo(model, processor)`` answers through the same job queue and ``affectllm.engine.Engine`` as
``affectllm serve``, so the page shows what the evaluated model reports. An upload stays in the user turn where
it was given (perceived once: the engine caches by content) until another one replaces it or the chat is
cleared, like ``affectllm chat``'s ``/attach``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr

from affectllm.model.limits import MAX_NEW_TOKENS
from affectllm.serving.errors import RequestError
from affectllm.serving.job_queue import Job, JobQueue
from affectllm.serving.media import MediaPolicy, ResolvedMedia, check_duration
from affectllm.web.plots import EXPRESSION_COLOURS, face_figure, prosody_figure

CSS = """
#labels .chip { display: inline-block; margin: 2px 4px 2px 0; padding: 3px 10px; border-radius: 999px;
                background: #ffe7a8; color: #3b2a00; font-weight: 600; font-size: 0.95em; }
#labels .dims { margin-top: 6px; font-size: 0.9em; color: #555; }
#labels .empty { color: #777; font-style: italic; }
"""
INTRO = ("### AffectLLM\nUpload a video, audio clip or image and ask about the emotions it shows. "
         "The answer streams in; the labels and the evidence the model read appear on the right.")


def evidence_check(answer: str, report: Any | None) -> str:
    """What the page appends to a free-form answer about a clip that the evidence does not support: the
    problems (a figure no expert measured, a quote nobody said) and the explanation composed from the evidence;
    "" when the answer passes the faithfulness check or there is no report."""
    from affectllm.report.faithful import Grounding, check_faithfulness

    if report is None or not report.evidence or not answer.strip():
        return ""
    problems = check_faithfulness(answer, Grounding.from_report(report))
    if not problems:
        return ""
    composed = report.explanation if report.explanation_source == "composed" else ""
    return ("\n\n---\n*Checked against the evidence: " + "; ".join(problems) + "."
            + (f" What the experts measured:* {composed}" if composed else "*"))


def labels_html(report: Any | None) -> str:
    """The report's labels as chips, with valence/arousal when the model gave them."""
    if report is None:
        return '<div id="labels-body"><span class="empty">No answer yet.</span></div>'
    chips = "".join(f'<span class="chip">{html.escape(lab)}</span>' for lab in report.labels)
    if chips and getattr(report, "labels_source", None) == "fused":
        chips += '<span class="empty"> (from the fused experts: the answer named none)</span>'
    if not chips:
        chips = '<span class="empty">No labels in the answer (the model did not follow the report format).</span>'
    dims = []
    for name in ("valence", "arousal"):
        value = getattr(report, name)
        if value is not None:
            dims.append(f"{name} {value:+.2f}")
    extra = f'<div class="dims">{" · ".join(dims)}</div>' if dims else ""
    return f'<div id="labels-body">{chips}{extra}</div>'


def evidence_markdown(report: Any, perception: Any) -> str:
    """Transcript, language and the text cues, as Markdown."""
    from affectllm.perception.pipeline import cue_lines

    lines = ["**Transcript**: " + (f"“{report.transcript}”" if report.transcript else "_none recognised_")]
    if report.language:
        lines.append(f"**Language**: {report.language}")
    cues = cue_lines(perception) if perception is not None else []
    if cues:
        lines.append("**Cues the model read**:\n" + "\n".join(f"- {c}" for c in cues))
    return "\n\n".join(lines)


def text_turns(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat history -> the engine's text turns (files dropped, consecutive same-role texts merged)."""
    return conversation_turns(history)[0]


def conversation_turns(history: list[dict[str, Any]], media: str | None = None) -> tuple[list[dict[str, str]], int]:
    """-> (text turns as ``text_turns``, the index of the user turn the upload ``media`` was given in).

    The index is ``len(turns)`` (the question about to be asked) when ``media`` is not in the history.
    """
    turns: list[dict[str, str]] = []
    where = None
    for msg in history:
        content = msg.get("content")
        if media is not None and msg.get("role") == "user" and not isinstance(content, str) and content:
            if _file_path(content) == media:
                where = len(turns) - 1 if turns and turns[-1]["role"] == "user" else len(turns)
            continue
        if not isinstance(content, str) or not content.strip():
            continue
        if turns and turns[-1]["role"] == msg["role"]:
            turns[-1]["content"] += "\n" + content
        else:
            turns.append({"role": msg["role"], "content": content})
    return turns, (len(turns) if where is None else where)


def _file_path(f: Any) -> str:
    return f if isinstance(f, str) else (f.get("path") if isinstance(f, dict) else getattr(f, "path", str(f)))


def build_demo(model, processor, experts=None, max_new_tokens: int = MAX_NEW_TOKENS, max_media_seconds: float = 300.0,
               engine: JobQueue | None = None) -> gr.Blocks:
    """The Blocks app for one loaded model (launch it with ``demo.queue().launch(...)``)."""
    engine = engine or JobQueue(model, processor, experts=experts, max_new_tokens=max_new_tokens)
    policy = MediaPolicy(max_media_seconds=max_media_seconds, max_media_bytes=2**40)

    async def respond(message: dict[str, Any] | None, history: list[dict[str, Any]], media: str | None):
        message = message or {}
        text = (message.get("text") or "").strip()
        files = [_file_path(f) for f in message.get("files") or []]
        media = files[-1] if files else media
        prior, media_turn = conversation_turns(history, None if files else media)
        history = list(history)
        for f in files:
            history.append({"role": "user", "content": {"path": f}})
        if not text and not files:
            yield history, gr.MultimodalTextbox(value=None), media, gr.skip(), gr.skip(), gr.skip(), gr.skip(), \
                gr.skip()
            return
        if text:
            history.append({"role": "user", "content": text})
        history.append({"role": "assistant", "content": ""})
        busy = gr.MultimodalTextbox(value=None, interactive=False)
        yield history, busy, media, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        result = None
        try:
            job = Job(prompt=text or None, history=prior, max_new_tokens=max_new_tokens, media_turn=media_turn,
                      media=ResolvedMedia(Path(media), Path(media).name, "upload") if media else None)
            engine.check_conversation(job)
            if job.media is not None:
                check_duration(job.media, policy)
            async for kind, value in engine.stream(job):
                if kind == "text":
                    history[-1]["content"] += value
                    yield history, busy, media, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                elif kind == "done":
                    result = value
        except RequestError as err:
            history[-1]["content"] = f"⚠️ {err.message}"
        ready = gr.MultimodalTextbox(value=None, interactive=True)
        if result is None:
            yield history, ready, media, labels_html(None), "", None, None, None
            return
        report, p = result.report, result.perception
        history[-1]["content"] += evidence_check(result.text, report)
        yield (history, ready, media, labels_html(report), evidence_markdown(report, p),
               face_figure(report.evidence.get("face") or {}),
               prosody_figure(getattr(p, "audio", None), report.evidence.get("voice") or {}), report.to_dict())

    def clear():
        return [], gr.MultimodalTextbox(value=None, interactive=True), None, labels_html(None), "", None, None, None

    with gr.Blocks(title="AffectLLM") as demo:
        gr.Markdown(INTRO)
        media_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(elem_id="chat", label="Conversation", height=460, buttons=["copy"])
                box = gr.MultimodalTextbox(elem_id="ask", file_types=["video", "audio", "image"],
                                           placeholder="Upload a clip and ask, e.g. “How does she feel, and why?”",
                                           show_label=False)
                clear_btn = gr.Button("Clear conversation", elem_id="clear", size="sm")
            with gr.Column(scale=2):
                gr.Markdown("#### Labels")
                labels = gr.HTML(labels_html(None), elem_id="labels")
                gr.Markdown("#### Evidence")
                transcript = gr.Markdown(elem_id="transcript")
                face_plot = gr.Plot(label="Face expression over time", show_label=False, elem_id="face-plot")
                prosody_plot = gr.Plot(label="Prosody", show_label=False, elem_id="prosody-plot")
                with gr.Accordion("Report JSON", open=False):
                    report_json = gr.JSON(elem_id="report-json")
        outputs = [chatbot, box, media_state, labels, transcript, face_plot, prosody_plot, report_json]
        box.submit(respond, [box, chatbot, media_state], outputs, concurrency_limit=1)
        clear_btn.click(clear, None, outputs)
    demo.affectllm_engine = engine  # type: ignore[attr-defined]
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           prevent_thread_lock: bool = False):
    """Start the page (queue on) with the offline theme and the chip styles; returns Gradio's launch result."""
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: the page works offline
    return demo.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock, theme=theme,
        css=CSS, footer_links=[], quiet=True, show_error=True)


__all__ = ["EXPRESSION_COLOURS", "build_demo", "conversation_turns", "evidence_check", "evidence_markdown",
           "labels_html", "launch",
           "text_turns"]
