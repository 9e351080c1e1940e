"""Label-set size vs the OV-MER emotion-wheel F, on the clips that have both a subtitle and open-vocabulary
references: EMER-V1's English subtitles (``../shared/data/emer_v1/gt-eng.csv``) joined with the MER2024-OV
references (``../shared/data/mer2024_ov/check-openset.csv``).

    PYTHONPATH=$PWD python bench/label_sets.py [--shared ../shared]

The text path of the pipeline, as ``perceive(subtitle=...)`` runs it (no audio or video in these files): the text
expert -> fusion -> ``label_sets.select`` at several mass thresholds and maximum sizes. Scored with the project's
own OV-MER metric (``affectllm.evaluation.scoring.score("ov-mer", ...)``: EW-L1 = the MER-UniBench OV score, the
mean level-1 wheel F). Baselines from the same run: the shipped setting (``LABEL_MASS``, ``LABEL_MAX``), the
constant guess of the k most frequent reference labels (k = 1..4; a guess that knows the references: an upper
baseline for a constant), and the fused top class alone (one label).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from affectllm.evaluation.scoring import score
    from affectllm.perception.label_sets import LABEL_MASS, LABEL_MAX, label_set
    from affectllm.perception.pipeline import Experts, perceive

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    with (args.shared / "data" / "emer_v1" / "gt-eng.csv").open(encoding="utf-8", newline="") as f:
        subs = {r["names"]: r["subtitles"] for r in csv.DictReader(f)}
    with (args.shared / "data" / "mer2024_ov" / "check-openset.csv").open(encoding="utf-8", newline="") as f:
        refs = {r["name"]: r["openset"] for r in csv.DictReader(f) if r["name"] in subs}
    names = sorted(refs)
    experts = Experts(whisper=None, faces=False)
    perceived = {n: perceive(subtitle=subs[n], experts=experts) for n in names}
    fused = {n: q.fused for n, q in perceived.items()}
    read = {n: q.text.get("expert") for n, q in perceived.items()}  # the text expert's reading, made once
    tmp = Path(tempfile.mkdtemp())
    gt = tmp / "gt.csv"
    with gt.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "openset"])
        w.writerows([n, refs[n]] for n in names)

    def f_of(sets: dict[str, list[str]]) -> dict[str, float]:
        pred = tmp / "pred.csv"
        with pred.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["name", "openset"])
            w.writerows([n, str(sets[n])] for n in names)
        r = score("ov-mer", str(gt), str(pred))
        return {"EW-L1": round(r["EW-L1"], 4), "M-avg": round(r["M-avg"], 4),
                "mean_size": round(sum(len(sets[n]) for n in names) / len(names), 2)}

    def labels(n: str, mass: float, size: int) -> list[str]:
        fu = fused[n]
        if not fu.get("probs"):
            return []
        expert = read[n]
        rho = fu.get("weights", {}).get("text", 0.0)
        # the rule fusion uses (evidence.fused.labels is this at the shipped setting)
        sets = label_set(fu["probs"], (expert or {}).get("fine"), rho if expert else 0.0, mass, size)
        return [lab for lab, _ in sets]

    res: dict = {"clips": len(names), "command": "PYTHONPATH=$PWD python bench/label_sets.py",
                 "shipped": {"mass": LABEL_MASS, "max": LABEL_MAX,
                             **f_of({n: [lab for lab, _ in fused[n].get("labels") or []] for n in names})},
                 "fused_top_only": f_of({n: [fused[n]["top"]] if fused[n].get("top") else [] for n in names})}
    counts: dict[str, int] = {}
    from ast import literal_eval

    for n in names:
        for lab in literal_eval(refs[n]):
            counts[lab] = counts.get(lab, 0) + 1
    common = sorted(counts, key=lambda k: (-counts[k], k))
    res["constant_guess"] = {str(k): {"labels": common[:k], **f_of({n: common[:k] for n in names})} for k in (1, 2, 3, 4)}
    grid = {}
    for mass in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        for size in (1, 2, 3, 4, 6):
            grid[f"mass={mass} max={size}"] = f_of({n: labels(n, mass, size) for n in names})
    res["grid"] = grid
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
