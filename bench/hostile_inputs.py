"""Hostile inputs against the public CLI and server (issue 12): counts of inputs, crashes, lost records, 5xx.

Builds a corpus in a temporary folder and runs, each in its own process so a crash is counted, not fatal:
``affectllm caption`` over every bad input (then ``--resume``), the server (in-process ASGI) with hostile
requests, and ``affectllm eval score`` over malformed prediction files. Run it against any checkout to compare:

    python bench/hostile_inputs.py                          # this checkout
    python bench/hostile_inputs.py --checkout ../main       # a baseline checkout, same corpus, same script

The corpus is built with this checkout's code; the commands run with ``--checkout``'s (PYTHONPATH).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

AFFECTLLM = [sys.executable, "-c", "from affectllm.cli import main; main()"]
TINY = ""  # the tiny random checkpoint folder, written by main()
HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
ENV = dict(os.environ)


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    # cwd = the checkout: ``python -c`` puts the working folder first on sys.path
    return subprocess.run(cmd, capture_output=True, timeout=timeout, env=ENV, cwd=ENV["PYTHONPATH"])


def _wav(path: Path, seconds: float = 1.0) -> Path:
    import soundfile as sf

    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, format="WAV")
    return path


def caption_corpus(d: Path) -> list[str]:
    """The explicit arguments of one caption run; returns them (each is one expected record)."""
    from affectllm.testing_inputs import write_surround_clip

    folder = d / "names"
    folder.mkdir()
    _wav(folder / "a.wav")
    os.rename(_wav(d / "tmp.wav"), os.fsdecode(os.fsencode(folder) + b"/b_caf\xe9.wav"))
    write_surround_clip(d / "surround.mp4")
    (d / "some_dir.mp4").mkdir()
    (d / "loop.mp4").symlink_to("loop.mp4")
    (d / "broken.mp4").symlink_to("nothing_here.mp4")
    (d / "empty.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    return [str(folder), *(str(d / n) for n in ("surround.mp4", "some_dir.mp4", "loop.mp4", "broken.mp4",
                                                 "empty.mp4", "random.mp4", "missing.mp4"))]


def run_caption(d: Path) -> dict:
    args = caption_corpus(d)
    expected = len(args) + 1  # the folder holds two files
    out = d / "caps.jsonl"
    cmd = [*AFFECTLLM, "caption", *args, "--out", str(out), "--model", TINY, "--max-new-tokens", "2",
           "--no-progress"]
    first = _run(cmd, 1200)
    lines = out.read_bytes().splitlines() if out.exists() else []
    before = out.read_bytes() if out.exists() else b""
    again = _run([*cmd, "--resume"], 1200)
    after = out.read_bytes() if out.exists() else b""
    return {"inputs": expected, "exit": first.returncode, "records": len(lines),
            "lost_records": max(0, expected - len(lines)), "crash": first.returncode < 0,
            "resume_exit": again.returncode, "resume_rewrote": before != after,
            "stderr_tail": first.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]}


SERVER_SCRIPT = r"""
import asyncio, base64, json, sys, time
import httpx
from affectllm.loading import load
from affectllm.perception.pipeline import Experts
from affectllm.serving import MediaPolicy, ServeSettings, create_app
from pathlib import Path
d = Path(sys.argv[1])
model, proc = load(sys.argv[2])
app = create_app(model, proc, ServeSettings(api_key="k", max_new_tokens=2, media=MediaPolicy(allowed_dir=d / "media")),
                 experts=Experts(whisper=None, faces=False))
H = {"Authorization": "Bearer k"}
clip = base64.b64encode((d / "surround.mp4").read_bytes()).decode()
def chat(content, **kw): return {"messages": [{"role": "user", "content": content}], **kw}
def part(url): return [{"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": "why?"}]
async def go():
    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120) as c:
        reqs = [("POST", "/v1/chat/completions", chat(part("data:video/mp4;base64," + clip))),
                ("POST", "/v1/chat/completions", chat(part("data:video/mp4;base64," + base64.b64encode(b"junk" * 99).decode()))),
                ("POST", "/v1/chat/completions", chat(part("subdir/secret.wav"))),
                ("POST", "/v1/chat/completions", chat(part("subdir/missing.wav"))),
                ("POST", "/v1/chat/completions", chat("hi", model="gpt-4o")),
                ("POST", "/v1/chat/completions", chat("hi", model="affectllm-default")),
                ("GET", "/docs", None), ("GET", "/openapi.json", None), ("GET", "/v1/models", None),
                ("GET", "/health", None)]
        for method, url, body in reqs:
            r = await c.request(method, url, json=body, headers=H if url not in ("/docs", "/openapi.json") else {})
            out.append((url, r.status_code, r.text))
        body = json.dumps(chat("x" * 30_000_000)).encode()
        t0 = time.perf_counter()
        task = asyncio.create_task(c.post("/v1/chat/completions", content=body,
                                          headers={**H, "content-type": "application/json"}))
        answered = [t0]  # /health polled until the 30 MB request is answered: the gaps are the loop's stalls
        while not task.done():
            await c.get("/health"); answered.append(time.perf_counter())
            await asyncio.sleep(0.01)
        answered.append(time.perf_counter())  # the poller got the loop back: a stall before this counts too
        health = [b - a for a, b in zip(answered, answered[1:])]
        big = await task
        out.append(("30MB", big.status_code, big.text[:200]))
        return out, health, time.perf_counter() - t0
out, health, big_s = asyncio.run(go())
health_s = max(health) if health else 0.0
leaks = sum(str(d) in text or "/home/" in text or "site-packages" in text for _, _, text in out)
print(json.dumps({"requests": len(out), "statuses": [s for _, s, _ in out], "5xx": sum(s >= 500 for _, s, _ in out),
                  "health_answers_during_30MB": len(health), "longest_health_wait_s_during_30MB": round(health_s, 3), "30MB_refused_after_s": round(big_s, 2),
                  "responses_showing_a_path": leaks}))
"""


def run_server(d: Path) -> dict:
    (d / "media").mkdir()
    (d / "outside").mkdir()
    _wav(d / "outside" / "secret.wav")
    (d / "media" / "subdir").symlink_to(d / "outside", target_is_directory=True)
    done = _run([sys.executable, "-c", SERVER_SCRIPT, str(d), TINY], 1200)
    if done.returncode != 0:
        return {"crash": done.returncode < 0, "exit": done.returncode,
                "stderr_tail": done.stderr.decode("utf-8", "replace").strip().splitlines()[-2:]}
    return {"crash": False, **json.loads(done.stdout.decode().strip().splitlines()[-1])}


def run_eval(d: Path) -> dict:
    buf = io.BytesIO()
    np.savez(buf, filenames=np.array(["s1", "s2"]), fileitems=np.array(["happy", "sad"]))
    files = {"huge.csv": ("name,openset\ns1,\"['" + "a" * 140_000 + "']\"\ns2,sad\n").encode(),
             "truncated.npz": buf.getvalue()[:300], "zero.npz": b"",
             "latin1.csv": "name,openset\ns1,happy\ns2,caf\u00e9\n".encode("latin-1"),
             "unclosed.csv": b"name,openset\ns1,\"['happy']\ns2,\"['sad']\"\n", "empty.jsonl": b"",
             "empty.csv": b"", "random.npz": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()}
    gt = d / "gt.csv"
    gt.write_text("name,openset\ns1,\"['happy']\"\ns2,\"['sad']\"\n")
    codes, named = {}, 0
    for name, data in files.items():
        (d / name).write_bytes(data)
        r = _run([*AFFECTLLM, "eval", "score", "--task", "ov-mer", "--gt", str(gt), "--pred", str(d / name),
                  "--out", str(d / f"out-{name}"), "--no-html"], 600)
        codes[name] = r.returncode
        named += str(d / name) in r.stderr.decode("utf-8", "replace") and b"Traceback" not in r.stderr
    return {"files": len(files), "exit_codes": codes, "exit_2": sum(c == 2 for c in codes.values()),
            "messages_naming_the_file_without_traceback": named}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=HERE, help="the checkout whose affectllm is tested")
    parser.add_argument("--parts", default="caption,server,eval_score", help="comma-separated parts to run")
    args = parser.parse_args()
    checkout, parts = args.checkout.resolve(), args.parts.split(",")
    ENV["PYTHONPATH"] = str(checkout)
    t0 = time.perf_counter()
    report: dict = {"checkout": checkout.name}
    global TINY
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        from affectllm.testing import save_tiny_checkpoint

        TINY = str(save_tiny_checkpoint(d / "tiny"))
        for name, fn in (("caption", run_caption), ("server", run_server), ("eval_score", run_eval)):
            if name not in parts:
                continue
            sub = d / name
            sub.mkdir()
            if name == "server":
                from affectllm.testing_inputs import write_surround_clip

                write_surround_clip(sub / "surround.mp4")
            report[name] = fn(sub)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
