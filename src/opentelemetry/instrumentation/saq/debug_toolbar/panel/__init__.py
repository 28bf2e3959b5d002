"""The "Background Tasks" panel: what a request enqueued and what became of each job.

Collecting (``jobs``: a request's jobs as plain dicts, refreshed from spans or queues;
``refresher``: following them after the response; ``enqueues``: duplicate and repeated
enqueues; ``job_logs``: each attempt's log lines) apart from presenting (``panel``: the
toolbar's panel class; ``panel_view`` and ``renderer``: its HTML in the toolbar).
"""
