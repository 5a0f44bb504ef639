"""The fake server's inference endpoints: OpenAI `POST /v1/completions` and TGI `POST /generate`.

Lengths: the prompt's token count is its number of whitespace-separated words (or the
length of a list of token ids), and the request produces exactly `max_tokens`
(`parameters.max_new_tokens` for TGI) output tokens, as a server with `ignore_eos` would.
Without a maximum the length is drawn from the model's output distribution. Both are
clamped to the model's limits, as a server truncates what it cannot hold.

Answers: 200 with a small body in the API's own shape, 429 with TGI's overloaded error
when the server already holds --max-concurrent-requests, 400/422 for a body that is not
a request. Every answer names the pod in `X-Served-By` and carries TGI's timing headers
(`x-queue-time`, `x-inference-time`, `x-total-time`, in milliseconds of model time).
"""

import json
import time

from exporter.sim.model import Request

INFERENCE_PATHS = ("/v1/completions", "/generate")
MAX_BODY_BYTES = 1 << 20
OVERLOADED = {"error": "Model is overloaded", "error_type": "overloaded"}


class BadRequest(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_request(path: str, body: bytes) -> tuple[int | None, int | None]:
    """(prompt tokens, output tokens) from a request body; None means "draw it"."""
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest(400, "the body must be a JSON object")
    if path == "/generate":
        prompt = data.get("inputs")
        params = data.get("parameters") or {}
        if not isinstance(params, dict):
            raise BadRequest(422, "parameters must be an object")
        limit = params.get("max_new_tokens")
        limit_name = "parameters.max_new_tokens"
        prompt_name = "inputs"
    else:
        prompt = data.get("prompt")
        limit = data.get("max_tokens")
        limit_name = "max_tokens"
        prompt_name = "prompt"
    if prompt is None:
        raise BadRequest(422, f"{prompt_name} is required")
    if isinstance(prompt, str):
        tokens = len(prompt.split())
    elif isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        tokens = len(prompt)
    else:
        raise BadRequest(422, f"{prompt_name} must be text or a list of token ids")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise BadRequest(422, f"{limit_name} must be a whole number >= 1, got {json.dumps(limit)}")
    return max(tokens, 1), limit


def answer_body(path: str, req: Request, model_name: str, seq: int) -> dict:
    text = " ".join(["tok"] * min(req.output, 16))
    if path == "/generate":
        return {"generated_text": text, "details": {"finish_reason": "length", "generated_tokens": req.output}}
    return {
        "id": f"cmpl-{seq}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}],
        "usage": {
            "prompt_tokens": req.prompt,
            "completion_tokens": req.output,
            "total_tokens": req.prompt + req.output,
        },
    }


def timing_headers(req: Request) -> dict:
    def ms(seconds: float) -> str:
        return str(max(0, round(seconds * 1000)))

    return {
        "x-queue-time": ms(req.admitted - req.arrival),
        "x-inference-time": ms(req.finished - req.admitted),
        "x-total-time": ms(req.finished - req.arrival),
        "x-prompt-tokens": str(req.prompt),
        "x-generated-tokens": str(req.output),
    }
