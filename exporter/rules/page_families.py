"""Which metric families a rule reads are absent from a /metrics page, and what the page has
instead: the core of `llm-healthcheck check --against`.

A family counts as absent only where its absence empties the rule: in `a or b` (vLLM's
`kv_cache_usage_perc or gpu_cache_usage_perc`, old and new names of one signal) a missing
side is fine while the other side's families are all there.
"""

import difflib
import re

from exporter.config.fleet_config import SERIES_PREFIX as FLEET_PREFIX
from exporter.promql.selectors import MatrixSelector, VectorSelector

_ENGINE_PREFIX = re.compile(r"^[a-zA-Z0-9]+[:_]")

# The same signal under each engine's name, so a vLLM rule read against a TGI page is pointed
# at TGI's queue rather than at whatever name happens to be spelt alike.
EQUIVALENTS = (
    ("tgi_queue_size", "vllm:num_requests_waiting", "sglang:num_queue_reqs"),
    ("tgi_batch_current_size", "vllm:num_requests_running", "sglang:num_running_reqs"),
    ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"),
    ("vllm:time_to_first_token_seconds_bucket", "sglang:time_to_first_token_seconds_bucket"),
    # TGI has no token counters, but its per-request histograms' _sum grows the same way.
    ("vllm:generation_tokens_total", "sglang:generation_tokens_total", "tgi_request_generated_tokens_sum"),
    ("vllm:prompt_tokens_total", "sglang:prompt_tokens_total", "tgi_request_input_length_sum"),
)


def absent_families(rule, present: set[str]) -> list[str]:
    """Sample names the rule reads that are not on the page, sorted."""
    return sorted(_absent(rule.expr.root, present))


def suggestions(name: str, present: set[str], n: int = 3) -> list[str]:
    """The closest names on the page: the same signal under this engine's name first, then by
    the whole name, else by the part after the engine prefix."""
    same = [other for group in EQUIVALENTS if name in group for other in group if other != name and other in present]
    close = difflib.get_close_matches(name, present, n=n, cutoff=0.6)
    if same or close:
        return (same + [c for c in close if c not in same])[:n]
    bare = {_ENGINE_PREFIX.sub("", other): other for other in sorted(present)}
    found = difflib.get_close_matches(_ENGINE_PREFIX.sub("", name), list(bare), n=n, cutoff=0.4)
    return [bare[match] for match in found]


def _absent(node, present: set[str]) -> set[str]:
    if isinstance(node, MatrixSelector):
        node = node.selector
    if isinstance(node, VectorSelector):
        # fleet:<name> series come from the fleet view (Prometheus), never from the server's page
        name = node.name
        return {name} if name is not None and name not in present and not name.startswith(FLEET_PREFIX) else set()
    if getattr(node, "op", None) == "or" and hasattr(node, "lhs"):
        left, right = _absent(node.lhs, present), _absent(node.rhs, present)
        return left | right if left and right else set()
    missing: set[str] = set()
    for child in _children(node):
        missing |= _absent(child, present)
    return missing


def _children(node):
    for value in vars(node).values() if hasattr(node, "__dict__") else ():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if hasattr(item, "eval") or isinstance(item, MatrixSelector):
                yield item
