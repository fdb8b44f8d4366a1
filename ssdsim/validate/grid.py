"""The validation grid: which (policy, batch size, temperature) points to run and simulate.

Full grid (``full_grid``): AR; SD with k in {2, 4, 6, 8}; SSD with k in {2, 4, 6, 8}, uniform
fan-out (3 per position) and geometric fan-out (the paper's rule F_j ~ (P(A=j) beta_j)^(1/(1+r))
on the profile being validated, same budget), jit and fast fallbacks; each at B in {1, 4} and
T in {0, 1}. ``quick_grid`` is a small corner of it for tests. Every point has a stable ``key``
(used to cache its measured result). Never torch or the executor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ssdsim.analytic import proportional_fan_out
from ssdsim.chance import chance_at
from ssdsim.policy import Policy, uniform_ssd
from ssdsim.profile import Profile

UNIFORM_FAN = 3


@dataclass(frozen=True)
class Point:
    """One validation point: a policy run at a batch size and temperature."""

    policy: Policy
    batch_size: int
    temperature: float
    shape: str = ""  # ssd: "uniform" or "geometric"

    @property
    def key(self) -> str:
        p = self.policy
        name = p.mode if p.mode == "ar" else f"{p.mode}_k{p.k}"
        if p.mode == "ssd":
            fan = "-".join(map(str, p.fan_out))
            miss = "-".join(map(str, p.fan_out_miss))
            name += f"_{self.shape or 'custom'}_{fan}_{miss}_{p.fallback}"
            if p.rescale != 1.0:
                name += f"_C{p.rescale:g}"
        return f"{name}_b{self.batch_size}_t{self.temperature:g}"

    @property
    def label(self) -> str:
        p = self.policy
        if p.mode != "ssd":
            return f"{p.label()} B={self.batch_size} T={self.temperature:g}"
        return f"ssd k={p.k} {self.shape} {p.fallback} B={self.batch_size} T={self.temperature:g}"


def geometric(profile: Profile, k: int, temperature: float, fallback: str) -> Policy:
    """SSD with the paper's geometric fan-out on this profile, budget UNIFORM_FAN * (k+1)."""
    at = chance_at(profile.chance, temperature, 1.0)
    budget = UNIFORM_FAN * (k + 1)
    return Policy(
        mode="ssd",
        k=k,
        fan_out=proportional_fan_out(at, k, budget, "hit"),
        fan_out_miss=proportional_fan_out(at, k, budget, fallback),
        fallback=fallback,
    )


def grid(
    profile: Profile,
    ks: Iterable[int],
    batch_sizes: Iterable[int],
    temperatures: Iterable[float],
    shapes: Iterable[str] = ("uniform", "geometric"),
    fallbacks: Iterable[str] = ("jit", "fast"),
    modes: Iterable[str] = ("ar", "sd", "ssd"),
) -> list[Point]:
    """Every combination, in a fixed order (AR, SD, SSD; then k, shape, fallback, B, T)."""
    ks, shapes, fallbacks = list(ks), list(shapes), list(fallbacks)
    batch_sizes, temperatures, modes = list(batch_sizes), list(temperatures), list(modes)
    out: list[Point] = []
    for b in batch_sizes:
        for t in temperatures:
            if "ar" in modes:
                out.append(Point(Policy(mode="ar"), b, t))
            if "sd" in modes:
                out += [Point(Policy(mode="sd", k=k), b, t) for k in ks]
            if "ssd" not in modes:
                continue
            for k in ks:
                for shape in shapes:
                    for fb in fallbacks:
                        pol = (
                            uniform_ssd(k, UNIFORM_FAN, fb)
                            if shape == "uniform"
                            else geometric(profile, k, t, fb)
                        )
                        out.append(Point(pol, b, t, shape))
    return out


def full_grid(profile: Profile) -> list[Point]:
    return grid(profile, (2, 4, 6, 8), (1, 4), (0.0, 1.0))


def quick_grid(profile: Profile) -> list[Point]:
    """Four points: AR, SD k=2, SSD k=2 uniform jit and fast, at B=1, T=0."""
    return grid(profile, (2,), (1,), (0.0,), shapes=("uniform",))


def pass_order(points: list[Point], repeat: int, repeats: int) -> list[Point]:
    """The order pass ``repeat`` of ``repeats`` visits the points: the grid rotated by
    ``repeat / repeats`` of its length, so that a drift of the machine's speed within a pass (a
    quarter of an hour here) falls on different points in every pass instead of always slowing
    the same group (up to loop 10 every pass ran the grid in one order, each group of points in
    the same stretch of every pass)."""
    if not points:
        return []
    shift = repeat * len(points) // max(1, repeats) % len(points)
    return points[shift:] + points[:shift]
