"""Speed measurements against torch.func, JAX and hand-written numpy (not tests).

Run everything pinned to one core: ``make bench``; one file: ``python -m benchmarks.bench_grad``.
"""
