"""Calibration: fit a Profile to executor traces and measured latencies.

``python -m ssdsim.calibrate TRACE... [--latency FILE] -o profile.json`` (``cli``);
``calibrate(paths, latency, base)`` (``core``) returns the Profile and the fits behind it.
Modules: ``tally`` (counts from traces), ``chance_fit`` (acceptance, coverage tables, power
laws), ``latency_fit`` (forward formulas, host work per step), ``trace_costs`` (host work from
traces), ``report`` (the residual printout). Never imports torch, executor or kernels.
"""

from ssdsim.calibrate.core import Calibration, calibrate

__all__ = ["Calibration", "calibrate"]
