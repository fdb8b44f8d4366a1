"""ssdsim.optimize: Optuna search over the simulator for the best Saguaro (SSD) policy.

Library use::

    from ssdsim import Workload, load_profile
    from ssdsim.optimize import Settings, optimize
    result = optimize(load_profile("embedded-cpu"), Workload(batch_size=1), Settings(n_trials=200))
    print(result.best.label, result.best.tokens_per_s)

Modules: ``space`` (trial -> Policy, cache memory), ``objective`` (simulated throughput with
common random numbers), ``seeds`` (baselines and analytic seed points), ``storage`` (persistent,
resumable, shared studies), ``search`` (one study end to end), ``sweep`` (one study per batch size
and temperature), ``report`` / ``plots`` (outputs), ``cli`` (``python -m ssdsim.optimize``).
Never imports torch, executor or kernels.
"""

from ssdsim.optimize.objective import Evaluation, Objective, evaluate
from ssdsim.optimize.search import optimize
from ssdsim.optimize.select import Result
from ssdsim.optimize.settings import Settings
from ssdsim.optimize.space import (
    SearchSpace,
    allocate,
    cache_memory_bytes,
    params_for_policy,
    policy_from_trial,
)
from ssdsim.optimize.sweep import sweep

__all__ = [
    "Evaluation",
    "Objective",
    "Result",
    "SearchSpace",
    "Settings",
    "allocate",
    "cache_memory_bytes",
    "evaluate",
    "optimize",
    "params_for_policy",
    "policy_from_trial",
    "sweep",
]
