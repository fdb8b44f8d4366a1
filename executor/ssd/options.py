"""SSD's command-line options for ``python -m executor.run`` and the checks made before loading.

Flags as in ``ssdsim.simulate``: ``--policy FILE`` (as written by ``python -m ssdsim.optimize``)
or ``--k``, ``--fan-out``, ``--fan-out-miss``, ``--fallback``, ``--auto-threshold``,
``--rescale``; plus ``--devices`` (auto, cpu, cuda or TARGET,DRAFT) and ``--draft-timeout``.
``check_policy_fits`` rejects a policy the pair cannot run (k too large for the models'
context, more fork candidates than the vocabulary holds) before any weights load. Errors are
``SchemaError``/``ValueError`` naming the flag or file. Imports the ssdsim contracts only.
"""

from __future__ import annotations

import argparse
from typing import Any

from ssdsim._schema import SchemaError
from ssdsim.policy import FALLBACKS, Policy, parse_int_list

SSD_ONLY = ("fan_out", "fan_out_miss", "fallback", "auto_threshold", "rescale")
DEFAULT_K = 4
DEFAULT_FAN_OUT = 3


def add_ssd_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("ssd: --policy FILE, or the policy's knobs as flags")
    g.add_argument("--policy", default=None, help="policy JSON (python -m ssdsim.optimize)")
    g.add_argument("--fan-out", default=None, help="k+1 integers after a hit (default 3 each)")
    g.add_argument("--fan-out-miss", default=None, help="k+1 integers after a miss, same sum")
    g.add_argument("--fallback", choices=FALLBACKS, default=None, help="on a miss (default jit)")
    g.add_argument("--auto-threshold", type=int, default=None, help="auto: fast from this B")
    g.add_argument("--rescale", type=float, default=None, help="Saguaro sampling C in (0, 1]")
    g.add_argument(
        "--devices", default="auto", help="auto, cpu, cuda, or TARGET,DRAFT (cpu:N, cuda:N)"
    )
    g.add_argument(
        "--draft-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the draft before finishing without it",
    )


def policy_from_args(args: argparse.Namespace) -> Policy:
    """The run's Policy from --policy or from --mode and its flags; errors name the flag."""
    given = [f"--{n.replace('_', '-')}" for n in SSD_ONLY if getattr(args, n) is not None]
    if args.policy is not None:
        if given or args.k is not None:
            extra = ", ".join(given + (["--k"] if args.k is not None else []))
            raise SchemaError(
                f"--policy: give either --policy FILE or the knobs ({extra}), not both"
            )
        try:
            policy = Policy.load(args.policy)
        except SchemaError as exc:
            raise SchemaError(f"--policy: {exc}") from exc
        if args.mode is not None and args.mode != policy.mode:
            raise SchemaError(f"--mode {args.mode}: the policy file says mode {policy.mode!r}")
        return policy
    if args.mode is None:
        raise SchemaError("--mode: give --mode ar|sd|ssd or --policy FILE")
    k = DEFAULT_K if args.k is None else args.k
    if args.mode != "ssd":
        if given:
            raise SchemaError(f"{given[0]}: only for --mode ssd")
        return Policy(
            mode=args.mode,
            k=k if args.mode == "sd" else 0,
            draft_temperature=args.draft_temperature,
        )
    kw: dict[str, Any] = {"mode": "ssd", "k": k, "draft_temperature": args.draft_temperature}
    kw["fan_out"] = (
        parse_int_list(args.fan_out, "fan-out") if args.fan_out else (DEFAULT_FAN_OUT,) * (k + 1)
    )
    if args.fan_out_miss:
        kw["fan_out_miss"] = parse_int_list(args.fan_out_miss, "fan-out-miss")
    for name in ("fallback", "rescale", "auto_threshold"):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    return Policy(**kw)


def check_policy_fits(
    policy: Policy, *, vocab_size: int, max_positions: int, longest_prompt: int, max_new_tokens: int
) -> None:
    """Reject what the pair cannot run: k beyond the context, fork lists beyond the vocabulary."""
    if policy.mode == "ar":
        return
    need = longest_prompt + max_new_tokens + 2 * policy.k + 2
    if need > max_positions:
        raise SchemaError(
            f"--k {policy.k}: the longest prompt ({longest_prompt}) + --max-new-tokens "
            f"({max_new_tokens}) + 2k + 2 = {need} positions exceed the models' context of "
            f"{max_positions} (max_position_embeddings)"
        )
    for name in ("fan_out", "fan_out_miss"):
        fan = getattr(policy, name)
        k = policy.k
        too_many = [f for j, f in enumerate(fan) if f > (vocab_size - 1 if j < k else vocab_size)]
        if too_many:
            raise SchemaError(
                f"Policy.{name}: {list(fan)} asks for {max(too_many)} candidates at one position, "
                f"more than the vocabulary of {vocab_size} holds"
            )
