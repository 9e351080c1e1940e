"""Judges behind one interface: the lexicon extractor, an OpenAI-compatible endpoint (httpx.MockTransport), a local
HF causal LM (tiny random Llama + an offline WordLevel tokenizer); the disk cache; answer parsing; and
fetch-resources against a mocked GitHub."""

from __future__ import annotations

import json

import httpx
import pytest

from affectllm.evaluation.judges import JudgeCache, JudgeError, make_judge
from affectllm.evaluation.judges.base import (
    parse_groups_answer,
    parse_label_answer,
    parse_polarity_answer,
    parse_rating_answer,
)
from affectllm.evaluation.judges.lexicon import LexiconJudge


def test_lexicon_extraction_negation_multiword_and_polarity(tables):
    j = LexiconJudge(tables)
    text = "He was not happy; he felt let down and anxious, then relieved. He used the phrase 'thank you'."
    labels = j.extract_labels(text)
    # 'not happy' skipped; 'used' is not read as useful/useless; "thank" → thankful is kept
    assert labels == ["let down", "anxious", "relieved", "thank"]
    assert j.polarity(["happy", "relieved"]) == 1 and j.polarity(["angry", "sad"]) == -1
    assert j.polarity(["surprised"]) == 0 and j.polarity(["negative"]) == -1
    groups = j.group_synonyms(["happy", "joy", "sad", "flibbertigibbet"])
    assert groups == [["happy", "joy"], ["sad"], ["flibbertigibbet"]]


@pytest.mark.parametrize(("text", "want"), [
    ("Sure! The emotions are ['Happy', 'relieved'].", ["happy", "relieved"]),
    ("happy, excited\nbecause she smiles", ["happy", "excited"]),
    ("[]", []),
])
def test_parse_label_answer(text, want):
    assert parse_label_answer(text) == want


def test_parse_other_answers():
    assert parse_rating_answer("Score: 7") == 7.0
    assert parse_rating_answer("I would give it 8/10.") == 8.0
    assert parse_rating_answer("Score: 14") == 10.0
    assert parse_rating_answer("no idea") is None
    assert parse_polarity_answer("The sentiment is Negative.") == -1 and parse_polarity_answer("hmm") == 0
    assert parse_groups_answer("[['happy', 'joyful'], ['ghost']]", ["happy", "joyful", "sad"]) == \
        [["happy", "joyful"], ["sad"]]


def _openai_transport(seen: list):
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.url.path, request.headers.get("authorization"), body))
        prompt = body["messages"][0]["content"]
        answer = "Score: 6" if "Rate from 1 to 10" in prompt else "['happy', 'grateful']"
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": answer}}]})

    return httpx.MockTransport(handler)


def test_openai_judge_request_parse_and_cache(tmp_path, monkeypatch):
    from affectllm.evaluation.judges.openai_compat import OpenAIJudge

    monkeypatch.setenv("AFFECTLLM_JUDGE_API_KEY", "sk-test")
    seen: list = []
    cache = JudgeCache(tmp_path / "c.sqlite")
    j = OpenAIJudge("http://judge.local/v1", "judge-7b", transport=_openai_transport(seen), cache=cache)
    assert j.extract_labels("She thanks him warmly.") == ["happy", "grateful"]
    path, auth, body = seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
    assert body["model"] == "judge-7b" and body["temperature"] == 0
    assert j.rate("clue", "he shouts", "he yells") == 6.0
    assert j.extract_labels("She thanks him warmly.") == ["happy", "grateful"]
    assert (j.calls, j.cache_hits, len(seen)) == (2, 1, 2)
    # a new judge on the same cache never re-queries; another model does
    j2 = OpenAIJudge("http://judge.local/v1", "judge-7b", transport=_openai_transport(seen), cache=cache)
    j2.extract_labels("She thanks him warmly.")
    assert j2.calls == 0 and len(seen) == 2
    j3 = OpenAIJudge("http://judge.local/v1", "other", transport=_openai_transport(seen), cache=cache)
    j3.extract_labels("She thanks him warmly.")
    assert j3.calls == 1 and len(seen) == 3


def test_openai_judge_errors(monkeypatch):
    from affectllm.evaluation.judges.openai_compat import OpenAIJudge

    monkeypatch.delenv("AFFECTLLM_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("AFFECTLLM_JUDGE_MODEL", raising=False)
    with pytest.raises(JudgeError, match="needs a base URL and a model"):
        OpenAIJudge()
    bad = httpx.MockTransport(lambda r: httpx.Response(401, text="invalid key"))
    j = OpenAIJudge("http://x/v1", "m", transport=bad)
    with pytest.raises(JudgeError, match="HTTP 401.*invalid key"):
        j.polarity(["happy"])
    with pytest.raises(JudgeError, match="unknown judge"):
        make_judge("gpt")


def test_openai_judge_retries_rate_limits_server_errors_and_timeouts(tmp_path):
    from affectllm.evaluation.judges.openai_compat import OpenAIJudge

    script = [httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"), "timeout",
              httpx.Response(503, text="overloaded"), None]  # None: answer
    seen: list = []
    answer = _openai_transport(seen)

    def handler(request: httpx.Request) -> httpx.Response:
        step = script.pop(0)
        if step == "timeout":
            raise httpx.ReadTimeout("read timed out", request=request)
        return answer.handle_request(request) if step is None else step

    waits: list[float] = []
    j = OpenAIJudge("http://x/v1", "m", transport=httpx.MockTransport(handler), sleep=waits.append,
                    cache=JudgeCache(tmp_path / "c.sqlite"))
    assert j.extract_labels("She thanks him warmly.") == ["happy", "grateful"]
    assert waits == [7.0, 2.0, 4.0]  # the server's Retry-After, then 2^attempt
    # a server that keeps refusing: the error says how often it tried and that the cache keeps what was done
    always = OpenAIJudge("http://x/v1", "m", transport=httpx.MockTransport(lambda r: httpx.Response(429, text="no")),
                         sleep=waits.append, max_retries=2)
    with pytest.raises(JudgeError, match="HTTP 429 after 3 tries.*cached: run again"):
        always.polarity(["happy"])
    # not retried: a client error
    n = []
    bad = OpenAIJudge("http://x/v1", "m", sleep=waits.append,
                      transport=httpx.MockTransport(lambda r: n.append(1) or httpx.Response(400, text="bad")))
    with pytest.raises(JudgeError, match="HTTP 400"):
        bad.polarity(["happy"])
    assert len(n) == 1


def _tiny_llama_and_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "<s>", "</s>", "happy", "sad", "angry", "[", "]", "'", ",", "score", ":", "7"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>")
    cfg = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=1, bos_token_id=2, eos_token_id=3)
    return LlamaForCausalLM(cfg).eval(), fast


def test_hf_judge_greedy_cached_and_from_folder(tmp_path):
    import torch

    from affectllm.evaluation.judges.hf import HFJudge

    torch.manual_seed(0)
    model, tok = _tiny_llama_and_tokenizer()
    cache = JudgeCache(tmp_path / "hf.sqlite")
    j = HFJudge(model=model, tokenizer=tok, fingerprint="tiny-llama", max_new_tokens=8, cache=cache)
    first = j.complete("describe : happy")
    assert isinstance(first, str) and j.calls == 1
    assert j.complete("describe : happy") == first and (j.calls, j.cache_hits) == (1, 1)
    labels = j.extract_labels("He smiles.")
    assert labels == parse_label_answer(cache.get(j.fingerprint, _extract_prompt("He smiles.")))
    # saved folder: loaded lazily, deterministic greedy output equals the in-memory model's
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    jf = HFJudge(tmp_path / "m", max_new_tokens=8)
    assert jf.fingerprint.startswith("hf:m:") and jf._model is None
    assert jf.complete("describe : happy") == first
    assert HFJudge(tmp_path / "m", max_new_tokens=8).fingerprint == jf.fingerprint
    with pytest.raises(JudgeError, match="no such model folder"):
        HFJudge(tmp_path / "missing")


def _extract_prompt(text: str) -> str:
    from affectllm.evaluation.judges import prompts

    return prompts.EXTRACT_LABELS.format(text=text)


def test_free_text_predictions_go_through_the_judge(tmp_path, wheel_dir):
    from affectllm.evaluation import score

    gt = tmp_path / "gt.csv"
    gt.write_text("name,openset\na,\"['happy', 'grateful']\"\nb,\"['angry']\"\n", encoding="utf-8")
    pred = tmp_path / "p.csv"
    pred.write_text("name,reason\na,He smiles and thanks her; he is grateful and happy.\nb,He shouts in anger.\n",
                    encoding="utf-8")
    r = score("ov-mer", gt, pred, wheel_dir)
    assert r["prediction_sources"] == {"judge": 2}
    assert r["M1"]["recall"] == pytest.approx(1.0)


def test_fetch_resources_with_mock_github(tmp_path, wheel_dir):
    from affectllm.evaluation.fetch import DEFAULT_BASE_URL, FetchError, fetch_resources

    served: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[1]
        served.append(str(request.url))
        return httpx.Response(200, content=(wheel_dir / name).read_bytes())

    status = fetch_resources(tmp_path / "wheel", transport=httpx.MockTransport(handler))
    assert set(status.values()) == {"downloaded"} and len(served) == 7
    assert served[0] == f"{DEFAULT_BASE_URL}/format.csv"
    assert (tmp_path / "wheel" / "wheel5.xlsx").read_bytes() == (wheel_dir / "wheel5.xlsx").read_bytes()
    again = fetch_resources(tmp_path / "wheel", transport=httpx.MockTransport(handler))
    assert set(again.values()) == {"present"} and len(served) == 7
    tampered = httpx.MockTransport(lambda r: httpx.Response(200, content=b"name,format\n"))
    with pytest.raises(FetchError, match=r"format\.csv: sha256 .* differs .*--no-verify"):
        fetch_resources(tmp_path / "w2", transport=tampered)
    missing = httpx.MockTransport(lambda r: httpx.Response(404))
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_resources(tmp_path / "w3", transport=missing)
