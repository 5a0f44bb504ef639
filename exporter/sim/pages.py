"""What TGI, vLLM and SGLang print on /metrics, computed from one ServerModel.

Each engine is a list of metric families (name, type, HELP, label sets, bucket
bounds) shaped like the real servers' pages in ../shared/fixtures: TGI's
counters without `_total`, its 35 geometric duration buckets and 1,024
`tgi_batch_next_size` buckets; vLLM's `vllm:` names with `model_name` and
`engine` labels and `le` first; SGLang's `_sum` line before its buckets.

The same family objects give both the exposition text (for the fake server) and
the samples the rule engine reads directly (for the simulation), so the two can
never disagree.
"""

from exporter.sim.model import ModelConfig
from exporter.sim.page_families import Engine, python_number, rust_number

Labels = tuple[tuple[str, str], ...]
ENGINES = ("tgi", "vllm", "sglang")


def _geometric(start: float, factor: float, count: int) -> list[float]:
    # Multiplied step by step, as TGI's exporter does, so the bounds print exactly alike.
    out, bound = [], start
    for _ in range(count):
        bound *= factor
        out.append(bound)
    return out


def _linear(width: float, count: int) -> list[float]:
    return [width * k for k in range(1, count + 1)]


def _one_two_five(limit: int) -> list[float]:
    out, exponent = [], 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > limit:
                return [float(v) for v in out]
            out.append(value)
        exponent += 1


TGI_DURATION = _geometric(0.0001, 1.5, 35)
VLLM_TTFT = [
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
]
VLLM_LATENCY = [
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
]
VLLM_TPOT = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0]
SGLANG_TTFT = [
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    25.0,
    30.0,
]
SGLANG_E2E = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0]
SGLANG_TPOT = [0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5]


def build_engine(name: str, config: ModelConfig) -> Engine:
    if name == "tgi":
        return _tgi(config)
    if name == "vllm":
        return _vllm(config)
    if name == "sglang":
        return _sglang(config)
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")


def _tgi(config: ModelConfig) -> Engine:
    # TGI registers each series on first use, so a fresh server prints none of them.
    e = Engine(
        "tgi", rust_number, blank_after_family=True, sum_first=False, le_first=False, visible=lambda m: m.arrived > 0
    )
    e.scalar("tgi_request_success", "counter", "Number of successful requests", [([], lambda m: m.completed)])
    e.scalar("tgi_request_count", "counter", "Total number of requests", [([], lambda m: m.arrived + m.refused)])
    # Only once a request was refused, as TGI creates the series on first use.
    e.scalar(
        "tgi_request_failure",
        "counter",
        None,
        [([("err", "overloaded")], lambda m: m.refused)],
        visible=lambda m: m.refused > 0,
    )
    e.scalar(
        "tgi_batch_inference_success",
        "counter",
        "Number of successful inference calls per method (prefill or decode)",
        [([("method", "prefill")], lambda m: m.prefill_batches), ([("method", "decode")], lambda m: int(m.g))],
    )
    e.scalar(
        "tgi_batch_inference_count",
        "counter",
        "Inference calls per method (prefill or decode)",
        [([("method", "decode")], lambda m: int(m.g)), ([("method", "prefill")], lambda m: m.prefill_batches)],
    )
    e.scalar("tgi_queue_size", "gauge", "Current queue size", [([], lambda m: m.queue_size)])
    e.scalar(
        "tgi_batch_current_max_tokens",
        "gauge",
        "Maximum tokens for the current batch",
        [([], lambda m: m.kv_reserved_tokens)],
    )
    e.scalar("tgi_batch_current_size", "gauge", "Current batch size", [([], lambda m: m.running)])
    e.histogram(
        "tgi_request_input_length",
        "Input token length per request",
        [([], "prompt_tokens")],
        _linear(config.prompt_tokens.high / 100, 100),
    )
    e.histogram(
        "tgi_request_max_new_tokens",
        "Maximum new tokens per request",
        [([], "max_new_tokens")],
        _linear(config.max_new_tokens / 100, 100),
    )
    e.histogram("tgi_request_inference_duration", "Request inference duration", [([], "inference_time")], TGI_DURATION)
    e.histogram(
        "tgi_batch_forward_duration",
        "Batch forward duration per method (prefill or decode)",
        [([("method", "prefill")], "prefill_forward"), ([("method", "decode")], "decode_forward")],
        TGI_DURATION,
    )
    e.histogram("tgi_request_duration", "Request duration", [([], "e2e")], TGI_DURATION)
    e.histogram("tgi_request_queue_duration", "Request queue duration", [([], "queue_time")], TGI_DURATION)
    e.histogram(
        "tgi_request_mean_time_per_token_duration", "Mean time per token per request", [([], "tpot")], TGI_DURATION
    )
    e.histogram(
        "tgi_request_generated_tokens",
        "Generated tokens per request",
        [([], "output_tokens")],
        _linear(config.max_new_tokens / 100, 100),
    )
    e.histogram(
        "tgi_batch_next_size",
        "Batch size of the next batch",
        [([], "batch_next_size")],
        [float(k) for k in range(1, 1025)],
    )
    return e


def _vllm(config: ModelConfig) -> Engine:
    e = Engine("vllm", python_number, blank_after_family=False, sum_first=False, le_first=True)
    labels = [("model_name", config.model_name), ("engine", "0")]
    block = 16
    e.scalar(
        "vllm:cache_config_info",
        "gauge",
        "Information of the LLMEngine CacheConfig",
        [
            (
                [
                    ("block_size", str(block)),
                    ("cache_dtype", "auto"),
                    ("enable_prefix_caching", "False"),
                    ("gpu_memory_utilization", "0.9"),
                    ("num_gpu_blocks", str(config.kv_cache_tokens // block)),
                ],
                lambda m: 1.0,
            )
        ],
    )
    e.scalar(
        "vllm:num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        [(labels, lambda m: m.running)],
    )
    e.scalar(
        "vllm:num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        [(labels, lambda m: m.queue_size)],
    )
    e.scalar(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        [(labels, lambda m: m.kv_usage)],
    )
    e.scalar(
        "vllm:engine_sleep_state",
        "gauge",
        "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; "
        "weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.",
        [
            (labels + [("sleep_state", "awake")], lambda m: 1.0),
            (labels + [("sleep_state", "weights_offloaded")], lambda m: 0.0),
            (labels + [("sleep_state", "discard_all")], lambda m: 0.0),
        ],
    )
    e.scalar(
        "vllm:num_preemptions_total",
        "counter",
        "Cumulative number of preemption from the engine.",
        [(labels, lambda m: 0.0)],
    )
    e.scalar(
        "vllm:prompt_tokens_total",
        "counter",
        "Number of prefill tokens processed.",
        [(labels, lambda m: m.prompt_tokens_total)],
    )
    e.scalar(
        "vllm:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        [(labels, lambda m: float(int(m.generated_tokens_total + 1e-9)))],
    )
    e.scalar(
        "vllm:request_success_total",
        "counter",
        "Count of successfully processed requests.",
        [
            ([("finished_reason", "stop")] + labels, lambda m: m.completed - m.finished_length),
            ([("finished_reason", "length")] + labels, lambda m: m.finished_length),
        ],
    )
    e.histogram(
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        [(labels, "ttft")],
        VLLM_TTFT,
    )
    e.histogram(
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        [(labels, "e2e")],
        VLLM_LATENCY,
    )
    e.histogram(
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        [(labels, "queue_time")],
        VLLM_LATENCY,
    )
    e.histogram(
        "vllm:request_inference_time_seconds",
        "Histogram of time spent in RUNNING phase for request.",
        [(labels, "inference_time")],
        VLLM_LATENCY,
    )
    e.histogram(
        "vllm:request_prefill_time_seconds",
        "Histogram of time spent in PREFILL phase for request.",
        [(labels, "prefill_time")],
        VLLM_LATENCY,
    )
    e.histogram(
        "vllm:request_decode_time_seconds",
        "Histogram of time spent in DECODE phase for request.",
        [(labels, "decode_time")],
        VLLM_LATENCY,
    )
    e.histogram(
        "vllm:request_time_per_output_token_seconds",
        "Histogram of time_per_output_token_seconds per request.",
        [(labels, "tpot")],
        VLLM_TPOT,
    )
    max_len = config.prompt_tokens.high + config.output_tokens.high
    e.histogram(
        "vllm:request_prompt_tokens",
        "Number of prefill tokens processed.",
        [(labels, "prompt_tokens")],
        _one_two_five(max_len),
    )
    e.histogram(
        "vllm:request_generation_tokens",
        "Number of generation tokens processed.",
        [(labels, "output_tokens")],
        _one_two_five(max_len),
    )
    return e


def _sglang(config: ModelConfig) -> Engine:
    e = Engine("sglang", python_number, blank_after_family=False, sum_first=True, le_first=True)
    labels = [("model_name", config.model_name)]
    e.scalar(
        "sglang:prompt_tokens_total",
        "counter",
        "Number of prefill tokens processed.",
        [(labels, lambda m: m.prompt_tokens_total)],
    )
    e.scalar(
        "sglang:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        [(labels, lambda m: float(int(m.generated_tokens_total + 1e-9)))],
    )
    e.scalar("sglang:token_usage", "gauge", "The token usage", [(labels, lambda m: round(m.kv_usage, 2))])
    e.scalar("sglang:cache_hit_rate", "gauge", "The cache hit rate", [(labels, lambda m: 0.0)])
    e.histogram(
        "sglang:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        [(labels, "ttft")],
        SGLANG_TTFT,
    )
    e.histogram(
        "sglang:e2e_request_latency_seconds",
        "Histogram of End-to-end request latency in seconds",
        [(labels, "e2e")],
        SGLANG_E2E,
    )
    e.histogram(
        "sglang:time_per_output_token_seconds",
        "Histogram of time per output token in seconds.",
        [(labels, "tpot")],
        SGLANG_TPOT,
    )
    e.scalar("sglang:num_running_reqs", "gauge", "The number of running requests", [(labels, lambda m: m.running)])
    e.scalar(
        "sglang:num_used_tokens",
        "gauge",
        "The number of used tokens",
        [(labels, lambda m: float(int(m.kv_used_tokens)))],
    )
    e.scalar(
        "sglang:gen_throughput",
        "gauge",
        "The generate throughput (token/s)",
        [(labels, lambda m: m.decoding / m.step_seconds)],
    )
    e.scalar(
        "sglang:num_queue_reqs",
        "gauge",
        "The number of requests in the waiting queue",
        [(labels, lambda m: m.queue_size)],
    )
    return e
