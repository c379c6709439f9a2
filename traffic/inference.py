"""LLM inference requests on a disaggregated (prefill/decode) deployment, as transfer DAGs.

Per request i (group '<workload>/r<i>', one clock for all hosts):

    client ──prompt──► prefill ──KV cache──► decode ──token 0, 1, ..., m-1──► client
    step 0             step 1                steps 2 .. m+1 (STEP_TOKEN0 + j)

  prompt   prompt_tokens * prompt_bytes_per_token, sent at t0 + start_s + arrival;
  KV cache prompt_tokens * kv_bytes_per_token (ModelProfile: 2 * layers * kv_heads * head_dim
           * dtype_bytes, docs/metrics.md), leaves the prefill host once the prompt has arrived
           there plus the prefill compute (prefill_s_per_token * prompt_tokens);
  token j  token_message_bytes decode -> client, once the KV cache has arrived at the decode
           host plus (j+1) decode steps (decode_s_per_token each), one Transfer (one TCP
           connection) per token.

Plan dependencies must be local to the sender, and token j-1 arrives at the client, not at the
decode host: so every token depends on the KV receipt with a growing gap instead of on the
previous token. That is the server's view too: decoding runs at its own pace and streams each
token as it is produced, whatever the network does with the previous one. Clients, prefill and
decode hosts are separate host lists, assigned round-robin by request index. Arrivals are
Poisson or Gamma (bursty: coefficient of variation cv > 1) at `rate_per_s`, or come from a trace
(traffic.trace); token counts are lognormal around a median (e.g. the Splitwise medians:
coding 1500 prompt / 13 output, conversation 1020 / 129) and capped, or taken from the trace.
Every request produces at least one output token. All draws come from one seeded generator.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

from topologies.errors import SpecError
from traffic.scaling import IDENTITY, Convert

from traffic.plan import Transfer

STEP_PROMPT, STEP_KV, STEP_TOKEN0 = 0, 1, 2
ARRIVALS = ('poisson', 'gamma')
MAX_TRANSFERS = 100_000


@dataclass(frozen=True)
class ModelProfile:
    """A model's KV-cache geometry."""

    name: str
    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int

    @property
    def kv_bytes_per_token(self) -> int:
        """2 (K and V) * layers * kv_heads * head_dim * bytes per element."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


PROFILES: dict[str, ModelProfile] = {p.name: p for p in (
    ModelProfile('8b', 32, 8, 128, 2),      # Llama-3-8B class, fp16: 131,072 B/token
    ModelProfile('70b', 80, 8, 128, 2),     # Llama-2/3-70B class, fp16: 327,680 B/token
    ModelProfile('405b', 126, 8, 128, 2),   # Llama-3.1-405B class, fp16: 516,096 B/token
)}


@dataclass(frozen=True)
class Request:
    """One inference request: arrival (input units, from the first request) and token counts."""

    index: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int


def profile(name: str) -> ModelProfile:
    """A shipped model profile by name; SpecError('model') otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise SpecError('model', f'{name!r} is not a model profile '
                                 f'({", ".join(PROFILES)})') from None


def arrival_times(n: int, rate_per_s: float, rng: random.Random, process: str = 'poisson',
                  cv: float = 1.0) -> list[float]:
    """n arrival times, the first at 0, with Poisson or Gamma(cv) inter-arrivals of mean
    1/rate (Gamma shape 1/cv^2, scale cv^2/rate; cv = 1 is Poisson)."""
    if process not in ARRIVALS:
        raise SpecError('arrivals', f'{process!r} is not one of {", ".join(ARRIVALS)}')
    if not (math.isfinite(rate_per_s) and rate_per_s > 0):
        raise SpecError('rate_per_s', f'must be > 0, got {rate_per_s!r}')
    if not (math.isfinite(cv) and cv > 0):
        raise SpecError('cv', f'must be > 0, got {cv!r}')
    times, t = [], 0.0
    for _ in range(n):
        times.append(t)
        if process == 'poisson':
            t += rng.expovariate(rate_per_s)
        else:
            shape = 1.0 / (cv * cv)
            t += rng.gammavariate(shape, 1.0 / (rate_per_s * shape))
    return times


def token_count(rng: random.Random, median: int, sigma: float, cap: int) -> int:
    """A lognormal token count around `median` (sigma of the log; 0 = always the median),
    rounded and kept within [1, cap]."""
    return min(cap, max(1, round(median * math.exp(rng.gauss(0.0, sigma)))))


def synthetic_requests(n: int, rate_per_s: float, seed: int | str, process: str = 'poisson',
                       cv: float = 1.0, prompt_median: int = 1020, prompt_sigma: float = 0.5,
                       output_median: int = 129, output_sigma: float = 0.5,
                       max_prompt: int = 8192, max_output: int = 512) -> list[Request]:
    """n requests with drawn arrivals and token counts (deterministic per seed)."""
    _check_counts(n=n, prompt_median=prompt_median, output_median=output_median,
                  max_prompt=max_prompt, max_output=max_output)
    for key, v in (('prompt_sigma', prompt_sigma), ('output_sigma', output_sigma)):
        if not (math.isfinite(v) and v >= 0):
            raise SpecError(key, f'must be >= 0, got {v!r}')
    rng = random.Random(seed)
    times = arrival_times(n, rate_per_s, rng, process, cv)
    return [Request(i, t, token_count(rng, prompt_median, prompt_sigma, max_prompt),
                    token_count(rng, output_median, output_sigma, max_output))
            for i, t in enumerate(times)]


def trace_requests(arrivals: Sequence[tuple[float, int, int]], max_prompt: int = 8192,
                   max_output: int = 512) -> list[Request]:
    """Requests from traffic.trace.replay() rows, token counts capped to [1, max]."""
    _check_counts(max_prompt=max_prompt, max_output=max_output)
    return [Request(i, t, min(max_prompt, max(1, p)), min(max_output, max(1, o)))
            for i, (t, p, o) in enumerate(arrivals)]


def request_transfers(requests: Sequence[Request], clients: Sequence[str],
                      prefill: Sequence[str], decode: Sequence[str], model: ModelProfile,
                      prompt_bytes_per_token: int = 4, token_message_bytes: int = 64,
                      prefill_s_per_token: float = 0.0, decode_s_per_token: float = 0.02,
                      convert: Convert = IDENTITY, start_s: float = 0.0,
                      workload: str = 'inference', first_id: int = 0) -> list[Transfer]:
    """The transfers of `requests` (see the module docstring); sizes and times go through
    `convert` (traffic.scaling: identity for emulated units)."""
    roles = {'clients': tuple(clients), 'prefill': tuple(prefill), 'decode': tuple(decode)}
    seen: dict[str, str] = {}
    for role, hosts in roles.items():
        if not hosts:
            raise SpecError(role, 'needs at least one host')
        for h in hosts:
            if h in seen:
                raise SpecError(role, f'host {h!r} is already in {seen[h]}: clients, prefill '
                                      'and decode hosts must be distinct')
            seen[h] = role
    for key, v in (('prefill_s_per_token', prefill_s_per_token),
                   ('decode_s_per_token', decode_s_per_token)):
        if not (math.isfinite(v) and v >= 0):
            raise SpecError(key, f'must be a number >= 0, got {v!r}')
    _check_counts(prompt_bytes_per_token=prompt_bytes_per_token,
                  token_message_bytes=token_message_bytes)
    count = sum(2 + r.output_tokens for r in requests)
    if count > MAX_TRANSFERS:
        raise SpecError('requests', f'{count} transfers (2 + output tokens per request), more '
                                    f'than {MAX_TRANSFERS}: fewer requests or output tokens')
    out: list[Transfer] = []
    for req in requests:
        i = req.index
        c, p, d = (roles[r][i % len(roles[r])] for r in ('clients', 'prefill', 'decode'))
        group = f'{workload}/r{i}'
        start = convert.seconds(start_s + req.arrival_s)
        prompt = Transfer(first_id + len(out), c, p,
                          convert.bytes(req.prompt_tokens * prompt_bytes_per_token),
                          start_s=start, workload=workload, group=group, step=STEP_PROMPT)
        kv = Transfer(prompt.id + 1, p, d, convert.bytes(req.prompt_tokens
                                                         * model.kv_bytes_per_token),
                      after=(prompt.id,),
                      gap_s=convert.seconds(prefill_s_per_token * req.prompt_tokens),
                      start_s=start, workload=workload, group=group, step=STEP_KV)
        out += [prompt, kv]
        for j in range(req.output_tokens):
            out.append(Transfer(first_id + len(out), d, c, convert.bytes(token_message_bytes),
                                after=(kv.id,),
                                gap_s=convert.seconds((j + 1) * decode_s_per_token),
                                start_s=start, workload=workload, group=group,
                                step=STEP_TOKEN0 + j))
    return out


def _check_counts(**values: int) -> None:
    for key, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SpecError(key, f'must be a whole number >= 1, got {v!r}')
