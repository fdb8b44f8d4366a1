"""kernels: the compute pieces of the executor's hot path, each with a plain PyTorch reference.

* ``verify``: accept a prefix of draft proposals and draw the bonus token (speculative sampling).
* ``fork``: the bonus-token candidates per glue position (SSD) and a token's rank among them.
* ``branch_attention``: B*M branch queries over a shared trunk plus private chains.
* ``sampling``: temperature, Saguaro's rescale (``draft_distribution``) and seeded sampling.

Imports torch only; only executor imports kernels.
"""
