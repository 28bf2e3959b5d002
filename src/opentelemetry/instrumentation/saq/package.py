# What opentelemetry-bootstrap and BaseInstrumentor read, as in opentelemetry-python-contrib.

# The saq releases whose internals (Queue._before_enqueue, Worker._before_process and
# _after_process, Job.meta) we hook; the tox matrix tests the lowest and the newest.
_instruments = ("saq >= 0.20.0, < 1",)

# instrument(meter_provider=...) records the messaging metrics (docs/reference/metrics.md).
_supports_metrics = True
