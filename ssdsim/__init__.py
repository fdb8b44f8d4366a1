"""ssdsim: simulate, tune and check speculative speculative decoding (SSD / Saguaro).

Public contract objects (shared with the executor): Policy, Workload, Profile, trace records.
This package never imports torch, ``executor`` or ``kernels``.
"""

from ssdsim._schema import SchemaError
from ssdsim.policy import Policy, paper_default, uniform_ssd
from ssdsim.profile import (
    Chance,
    ChancePoint,
    Coverage,
    ForwardLatency,
    LinkLatency,
    Profile,
    TemperatureModel,
    list_presets,
    load_profile,
)
from ssdsim.trace import (
    RunSummary,
    SeqOutcome,
    StepRecord,
    Trace,
    TraceHeader,
    TraceWriter,
    read_trace,
)
from ssdsim.workload import Workload

__all__ = [
    "Chance",
    "ChancePoint",
    "Coverage",
    "ForwardLatency",
    "LinkLatency",
    "Policy",
    "Profile",
    "RunSummary",
    "SchemaError",
    "SeqOutcome",
    "StepRecord",
    "TemperatureModel",
    "Trace",
    "TraceHeader",
    "TraceWriter",
    "Workload",
    "list_presets",
    "load_profile",
    "paper_default",
    "read_trace",
    "uniform_ssd",
]
