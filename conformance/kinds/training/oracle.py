"""Training-step semantics around clipping, in float64 numpy (one pure function per semantic).

A training step, as torch's documented idiom writes it (the source semantics; the knobs say how
a target framework's idiom differs):

    for each micro-batch i of n:   (scale * loss_i / n).backward()     # accumulate into .grad
    g = g / scale                                                       # unscale_
    found_inf = any(|scale * g| overflows the dtype)                    # finiteness check
    g[clip_params] = clip_grad_norm_(g[clip_params], max_norm)          # clip
    if not found_inf: p = p - lr_group * (g + wd_group * p)             # SGD, coupled L2
    scale = update_scale(scale, found_inf)                              # dynamic scaler

Network gradients come from ``oracle.network`` (itself checked against finite differences),
clipping from ``oracle.clipping``. Knobs (keyword-only, declared in the registry as differences):

| knob | values | meaning |
|---|---|---|
| `scaler` | `dynamic`, `static`, `disabled`, `none` | scale updated by the growth/backoff rule, fixed, a scaler that neither scales nor checks (Paddle's GradScaler off-GPU), or no scaler at all |
| `backoff` | `factor`, `divide_growth` | on overflow ``scale *= backoff_factor`` (torch, Paddle) or ``scale /= growth_factor`` (MindSpore) |
| `min_scale` | float | floor of the scale after a backoff (MindSpore: 1) |
| `backoff_every` | int | back off only after this many consecutive overflows (Paddle's `decr_every_n_nan_or_inf`) |
| `group_lr` | `absolute`, `multiply` | a group's lr replaces the base lr (torch, MindSpore) or multiplies it (Paddle) |
| `clip_eps` | float | the epsilon of the clip inside the step (torch 1e-6; MindSpore's clip_by_global_norm 0) |
| `micro_loss` | `mean`, `sum` | micro-batch losses divided by n before backward, or not |
| `clip_scope` | `all`, `per_group` | one global norm over every clipped parameter, or one per optimizer parameter group (a clip applied by the optimizer group by group: Paddle's ``grad_clip=``) |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ... import tensors
from ...oracle import network
from ..clipping import oracle as clipping

_SCALERS = ("dynamic", "static", "disabled", "none")


@dataclass
class TrainResult:
    """``outputs``: ``param:<name>`` (after the last step), ``grad:<name>`` (the gradients the last
    step's optimizer saw: unscaled, accumulated, clipped; absent when the last step was skipped), ``skipped`` (per step, 1.0 = skipped),
    ``scale`` (per step, the scale after that step's update; scaler cases only)."""

    outputs: dict
    raises: Optional[str] = None


def split_batches(inputs: np.ndarray, targets, n: int) -> list:
    """Micro-batches: ``inputs`` (and ``targets``) cut into ``n`` equal slices along axis 0."""
    if n < 1 or inputs.shape[0] % n:
        raise ValueError(f"a batch of {inputs.shape[0]} cannot be split into {n} equal micro-batches")
    xs = np.split(inputs, n)
    ts = [None] * n if targets is None else np.split(targets, n)
    return list(zip(xs, ts))


def accumulate(micro_grads: list, *, micro_loss: str = "mean") -> dict:
    """Sum over micro-batches of ``g_i / n`` (``mean``: each micro-batch loss divided by ``n``
    before its backward, torch's and Paddle's idiom of accumulating into ``.grad``, MindSpore's
    explicit sum) or of ``g_i`` (``sum``)."""
    n = len(micro_grads)
    if micro_loss not in ("mean", "sum"):
        raise ValueError(f"micro_loss must be mean or sum, got {micro_loss!r}")
    div = n if micro_loss == "mean" else 1
    return {k: sum(g[k] for g in micro_grads) / div for k in micro_grads[0]}


def overflows(grads: dict, scale: float, dtype: str) -> bool:
    """True when a scaled gradient ``scale * g`` is not finite in ``dtype``:
    ``|scale * g| > finfo(dtype).max`` or NaN (what ``_amp_foreach_non_finite_check_and_unscale_``
    and ``mindspore.amp.all_finite`` see after a backward in that dtype). The loss is multiplied
    by the scale *in the loss's dtype*, so a scale that dtype cannot hold (65536 > 65504 in
    float16) rounds to inf and makes every gradient non-finite (measured: torch and MindSpore
    float16 ``loss * 65536.0`` give inf/NaN gradients; ``loss * 32768.0`` does not)."""
    if not math.isfinite(float(tensors.round_to(scale, dtype))):
        return True
    big = float(np.finfo(np.float32 if dtype == "bfloat16" else dtype).max)
    for g in grads.values():
        s = np.abs(np.asarray(g, dtype=np.float64) * scale)
        if np.isnan(s).any() or (s > big).any():
            return True
    return False


def update_scale(scale: float, good: int, bad: int, found_inf: bool, *, growth_factor: float,
                 backoff_factor: float, growth_interval: int, backoff: str = "factor",
                 min_scale: float = 0.0, backoff_every: int = 1) -> tuple:
    """One dynamic-scaler update; returns ``(scale, good, bad)`` (consecutive good/bad steps).

    Overflow: ``bad += 1; good = 0``; when ``bad == backoff_every``: ``bad = 0`` and
    ``scale = max(min_scale, scale * backoff_factor)`` (``backoff="factor"``) or
    ``max(min_scale, scale / growth_factor)`` (``"divide_growth"``).
    No overflow: ``good += 1; bad = 0``; when ``good == growth_interval``:
    ``scale *= growth_factor; good = 0``.
    """
    if found_inf:
        good, bad = 0, bad + 1
        if bad >= backoff_every:
            bad = 0
            new = scale * backoff_factor if backoff == "factor" else scale / growth_factor
            scale = max(min_scale, new)
        return scale, good, bad
    good, bad = good + 1, 0
    if good >= growth_interval:
        scale, good = scale * growth_factor, 0
    return scale, good, bad


def sgd_update(params: dict, grads: dict, groups: list, *, lr: float, weight_decay: float,
               group_lr: str = "absolute") -> dict:
    """``p - lr_g * (g + wd_g * p)`` per parameter group (coupled L2, torch.optim.SGD without
    momentum). A group's ``lr`` replaces ``lr`` (``group_lr="absolute"``) or multiplies it
    (``"multiply"``); its ``weight_decay`` replaces ``weight_decay``. Parameters without a
    gradient are left alone."""
    out = dict(params)
    for grp in groups:
        glr = grp.get("lr")
        eff = lr if glr is None else (glr if group_lr == "absolute" else lr * glr)
        wd = grp.get("weight_decay")
        wd = weight_decay if wd is None else wd
        for name in grp["params"]:
            g = grads.get(name)
            if g is not None:
                out[name] = params[name] - eff * (g + wd * params[name])
    return out


def _clip_sets(clip_names: list, groups: list, clip_scope: str) -> list:
    if clip_scope == "all":
        return [list(clip_names)]
    if clip_scope != "per_group":
        raise ValueError(f"clip_scope must be all or per_group, got {clip_scope!r}")
    return [[n for n in g["params"] if n in clip_names] for g in groups]


def clip_subsets(grads: dict, subsets: list, max_norm: float, norm_type: float = 2.0, *,
                 eps: float = 1e-6) -> dict:
    """Each subset of parameters clipped by its own total norm (``clip_grad_norm`` with
    ``eps``); parameters in no subset are left unclipped."""
    out = dict(grads)
    for names in subsets:
        if names:
            res = clipping.clip_grad_norm([grads[n] for n in names], max_norm, norm_type, eps=eps)
            out.update(zip(names, res.grads))
    return out


def _set_params(layers: list, params: dict) -> list:
    out = []
    for layer in layers:
        d = dict(layer)
        for part in ("weight", "bias"):
            key = f"{d['name']}.{part}"
            if key in params:
                d[part] = params[key]
        out.append(d)
    return out


def _params_of(layers: list) -> dict:
    return {f"{l['name']}.{part}": np.asarray(l[part], dtype=np.float64)
            for l in layers for part in ("weight", "bias") if l.get(part) is not None}


def train_steps(layers: list, loss: dict, inputs: np.ndarray, targets, *, dtype: str = "float32",
                steps: int = 1, micro_batches: int = 1, input_scales: Optional[list] = None,
                max_norm: Optional[float] = None, norm_type: float = 2.0,
                clip_params: Optional[list] = None, groups: Optional[list] = None,
                lr: float = 0.1, weight_decay: float = 0.0,
                init_scale: float = 1.0, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                growth_interval: int = 2000,
                scaler: str = "none", backoff: str = "factor", min_scale: float = 0.0,
                backoff_every: int = 1, group_lr: str = "absolute", clip_eps: float = 1e-6,
                micro_loss: str = "mean", clip_scope: str = "all") -> TrainResult:
    """``steps`` training steps of the model (module docstring's loop). Step ``k`` multiplies the
    inputs by ``input_scales[k]`` (huge values make its scaled gradients overflow). Parameters
    are float64 throughout: the oracle states the exact semantics, the comparison's tolerance
    absorbs the framework's rounding."""
    if scaler not in _SCALERS:
        raise ValueError(f"scaler must be one of {_SCALERS}, got {scaler!r}")
    params = _params_of(layers)
    names = list(params)
    groups = groups or [{"params": names}]
    clip_names = names if clip_params is None else list(clip_params)
    scales = list(input_scales or [1.0] * steps)
    scale = init_scale if scaler in ("dynamic", "static") else 1.0
    good = bad = 0
    skipped, scale_hist, last = [], [], {}
    for k in range(steps):
        cur = _set_params(layers, params)
        x = inputs * scales[k]
        micro = [network.forward_backward(cur, loss, xb, tb).grads
                 for xb, tb in split_batches(x, targets, micro_batches)]
        grads = accumulate(micro, micro_loss=micro_loss)
        found_inf = scaler in ("dynamic", "static") and overflows(grads, scale, dtype)
        if not found_inf and max_norm is not None:
            grads = clip_subsets(grads, _clip_sets(clip_names, groups, clip_scope), max_norm,
                                 norm_type, eps=clip_eps)
        if not found_inf:
            params = sgd_update(params, grads, groups, lr=lr, weight_decay=weight_decay,
                                group_lr=group_lr)
        if scaler == "dynamic":
            scale, good, bad = update_scale(scale, good, bad, found_inf, growth_factor=growth_factor,
                                            backoff_factor=backoff_factor,
                                            growth_interval=growth_interval, backoff=backoff,
                                            min_scale=min_scale, backoff_every=backoff_every)
        skipped.append(1.0 if found_inf else 0.0)
        scale_hist.append(scale)
        last = grads
    out = {f"param:{n}": params[n] for n in names}
    if not skipped[-1]:  # a skipped step's gradients are inf/NaN in framework-specific ways
        out.update({f"grad:{n}": last[n] for n in names})
    out["skipped"] = np.array(skipped)
    if scaler != "none":
        out["scale"] = np.array(scale_hist, dtype=np.float64)
    return TrainResult(out)

