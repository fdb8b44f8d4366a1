"""Validation: predicted against measured throughput and hit rate on a grid of policies.

``python -m ssdsim.validate`` (``cli``) runs the executor through subprocesses at each point of
the grid (``grid``), caching what it measured (``runner``), simulates each point with the
profile on the same workload and reports the errors (``compare``). Never imports torch,
executor or kernels.
"""
