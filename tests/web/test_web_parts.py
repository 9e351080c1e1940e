"""The web page's parts without a browser: label chips, chat history -> engine turns, evidence figures."""

from __future__ import annotations

import numpy as np

from affectllm.report import EmotionReport


def test_labels_html_chips_escape_and_dimensions():
    from affectllm.web.app import labels_html

    html = labels_html(EmotionReport(labels=["happy", "<b>proud</b>"], valence=0.6, arousal=-0.25))
    assert html.count('class="chip"') == 2
    assert "&lt;b&gt;proud&lt;/b&gt;" in html and "<b>" not in html
    assert "valence +0.60 · arousal -0.25" in html
    assert "No labels in the answer" in labels_html(EmotionReport(labels=[]))
    assert "No answer yet." in labels_html(None)


def test_text_turns_drop_files_and_merge_roles():
    from affectllm.web.app import text_turns

    history = [{"role": "user", "content": {"path": "clip.mp4"}}, {"role": "user", "content": "How?"},
               {"role": "user", "content": "And why?"}, {"role": "assistant", "content": "Labels: sad"},
               {"role": "assistant", "content": ""}]
    assert text_turns(history) == [{"role": "user", "content": "How?\nAnd why?"},
                                   {"role": "assistant", "content": "Labels: sad"}]


def test_face_figure_bars_follow_the_frames():
    from affectllm.web.plots import EXPRESSION_COLOURS, face_figure

    face = {"per_frame": [{"t": 0.4, "top": "neutral", "p": 0.7}, {"t": 1.2, "top": "happy", "p": 0.5}],
            "mean_probs": {"neutral": 0.6, "happy": 0.3, "sad": 0.1}}
    fig = face_figure(face)
    over_time, mean = fig.axes[:2]
    bars = over_time.patches
    assert [round(b.get_x() + b.get_width() / 2, 3) for b in bars] == [0.4, 1.2]
    assert [round(b.get_height(), 3) for b in bars] == [0.7, 0.5]
    from matplotlib.colors import to_hex

    assert to_hex(bars[1].get_facecolor()) == EXPRESSION_COLOURS["happy"]
    assert sorted(round(b.get_width(), 3) for b in mean.patches) == [0.1, 0.3, 0.6]
    assert face_figure({}) is None


def test_prosody_figure_pitch_of_a_tone():
    from affectllm.web.plots import prosody_figure

    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    audio = np.concatenate([np.zeros(sr // 2, np.float32), tone])  # 0.5 s silence, then 1 s at 200 Hz
    fig = prosody_figure(audio, {"cues": ["high pitch"], "f0_mean_hz": 200.0})
    pitch_ax = fig.axes[0]
    x, y = pitch_ax.lines[0].get_data()
    voiced = ~np.isnan(y)
    assert abs(np.nanmedian(y) - 200) < 2
    assert x[voiced].min() > 0.4  # no pitch in the leading silence
    assert "high pitch" in pitch_ax.get_title()
    assert prosody_figure(None, {}) is None


def test_an_answer_the_evidence_does_not_support_gets_the_check_and_the_composed_explanation():
    from affectllm.report import EmotionReport
    from affectllm.web.app import evidence_check

    report = EmotionReport(labels=["happy"], explanation="The face looks happy (happy 1.00).",
                           explanation_source="composed",
                           evidence={"face": {"mean_probs": {"happy": 1.0}}, "voice": {"probs": {"angry": 0.86}}})
    assert evidence_check("She is happy: the face reads happy 1.00.", report) == ""
    note = evidence_check("She feels disappointed; the face is sad 0.40.", report)
    assert 'cites "sad 0.40", a figure no expert measured' in note
    assert note.endswith("What the experts measured:* The face looks happy (happy 1.00).")
    assert evidence_check("anything", None) == ""
