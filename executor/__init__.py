"""executor: real models, KV caches and the decoding engines (AR, SD; SSD builds on them).

Map of the runtime (issue 4):

* ``executor.model.decoder.Decoder``: our Llama / Qwen3 decoder. ``Decoder.from_dir(dir)``,
  ``forward(tokens [B, n], start [B], cache, rows=, logits_at=)`` at per-row positions,
  ``forward_branches(tokens [B*M], trunk, trunk_len [B*M], scratch, depth)`` for tree decode,
  ``new_cache(B, capacity)``, ``new_scratch(B*M, depth)``.
* ``executor.kvcache``: ``KVCache`` (trunk, per-row ``lengths``; rollback = set lengths) and
  ``BranchScratch`` (branch chains).
* ``executor.engines``: ``common.generate(engine, prompts, ...)`` with ``ar.AREngine`` or
  ``sd.SDEngine``; ``common.Sampling``; results in the ``ssdsim.trace`` schema.
* ``executor.run``: the ``python -m executor.run`` CLI.

executor imports only the ssdsim contract modules and kernels; nothing in ssdsim imports it.
"""
