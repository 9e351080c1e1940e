"""The composed explanations (``instruct.reasoning.explain``: the starter's training targets and the engine's
explanation for free-form answers) on real media, measured against the issue's rules.

    PYTHONPATH=$PWD python bench/explanations.py [--shared ../shared] [--show 5]

Inputs: the 8 real TV clips (``media/tv``), the RAVDESS video, 6 EmoDB and 5 RAVDESS audio clips, the package's
example clip: 20 reports, perceived by the embedded default's experts (Whisper base, the face experts, the voice
expert, the text expert). Per report:
- cites every channel that measured: each channel in ``evidence.fused.sources`` is named (face: "face"; voice:
  "voice" / "prosody"; words: the quotation or "words" / "text expert");
- states the conflict when the firm readings disagree (``reasoning.conflict``);
- faithful: the report's own check (``report.faithful``: quotes only from the transcript, no unmeasured cue);
- sentence skeletons: each sentence with quotations, numbers and emotion names blanked; the share of reports
  whose skeleton sequence is unique, and the number of distinct sentence skeletons.
Beside it, the same counts for the old one-sentence template (``The voice shows …; the speaker says …. Together
this suggests the person feels X.``) on the same evidence, the baseline the composer replaced.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFLICT = ("disagree", "another way", "conflict", "Against the")


def skeleton(sentence: str) -> str:
    from affectllm.perception.label_sets import ADJECTIVE
    from affectllm.report.grounded import EMOTIONS

    s = re.sub(r'"[^"]*"', "Q", sentence)
    s = re.sub(r"\d+(\.\d+)?", "N", s)
    words = {w for names, _, _ in EMOTIONS.values() for w in names} | set(ADJECTIVE) | set(ADJECTIVE.values())
    words |= set(EMOTIONS)
    return " ".join("E" if w.strip(".,;()").lower() in words else w for w in s.split())


def sentences(text: str) -> list[str]:
    return [x for x in re.split(r"(?<=[.!?])\s+", text.strip()) if x]


def old_template(p) -> str:
    """The pre-composer target: one sentence of voice cues, the quote and the fused top class."""
    cues = "; ".join((p.voice or {}).get("cues") or [])
    said = f'the speaker says "{p.transcript}"' if p.transcript else ""
    top = (p.fused or {}).get("top") or "neutral"
    parts = [x for x in (f"The voice shows {cues}" if cues else "", said) if x]
    return ("; ".join(parts) + ". " if parts else "") + f"Together this suggests the person feels {top}."


def measure(texts: list[str], evidences: list[dict]) -> dict:
    from affectllm.instruct.reasoning import conflict, uncited_channels

    cited, conflicts, stated = 0, 0, 0
    for t, ev in zip(texts, evidences):
        cited += not uncited_channels(t, ev)
        if conflict(ev):
            conflicts += 1
            stated += any(k in t for k in CONFLICT)
    skels = [tuple(skeleton(s) for s in sentences(t)) for t in texts]
    flat = [s for sk in skels for s in sk]
    return {"reports": len(texts), "cite_every_measured_channel": round(cited / len(texts), 3),
            "conflicts": conflicts, "conflict_stated": round(stated / conflicts, 3) if conflicts else None,
            "unique_skeleton_sequences": len(set(skels)), "distinct_sentence_skeletons": len(set(flat)),
            "sentences": len(flat)}


def main(argv: list[str] | None = None) -> int:
    from affectllm.instruct.reasoning import explain
    from affectllm.perception.pipeline import Experts, perceive
    from affectllm.report import parse_report

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--show", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    m = args.shared / "media"
    paths = sorted((m / "tv").glob("*.mp4")) + [m / "ravdess" / "01-01-01-01-01-01-01.mp4"]
    paths += sorted((m / "emodb").glob("*.wav"))[:6] + sorted((m / "ravdess").glob("*_audio.wav"))[::2][:5]
    paths += [REPO / "affectllm" / "assets" / "examples" / "astronaut.mp4"]
    experts = Experts(whisper="base")
    texts, evs, olds, faithful, rows = [], [], [], [], []
    t0 = time.time()
    for path in paths:
        p = perceive(path, experts=experts)
        text = explain(p)
        report = parse_report(f"Labels: {', '.join(lab for lab, _ in p.fused.get('labels') or []) or 'neutral'}\n"
                              f"Explanation: {text}", perception=p)
        ev = dict(p.evidence())
        texts.append(text)
        evs.append(ev)
        olds.append(old_template(p))
        faithful.append(report.faithful)
        rows.append({"clip": path.name, "sources": (p.fused or {}).get("sources"), "faithful": report.faithful,
                     "problems": report.faithfulness_problems, "explanation": text})
    res = {"command": "PYTHONPATH=$PWD python bench/explanations.py", "seconds": round(time.time() - t0, 1),
           "composer": {**measure(texts, evs), "faithful": round(sum(faithful) / len(faithful), 3)},
           "old_template": measure(olds, evs), "examples": rows[: args.show], "all": rows}
    print(json.dumps({k: v for k, v in res.items() if k != "all"}, indent=1, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
