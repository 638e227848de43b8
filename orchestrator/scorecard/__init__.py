"""The pipeline's health, kept by the engine: success, retries, queue delay, handoffs.

The scripts that make transitions also count them, into one small hash per
workflow version and minute (``K.score_minute``); minutes are rolled into
hours (``K.score_hour``) by every worker's upkeep, exactly once. This package
is the pure side: the queue-delay histogram (``histogram``), the figures and
their definitions (``figures``) and the public model (``model``). Reading the
buckets from Redis is ``store.scores``.
"""
