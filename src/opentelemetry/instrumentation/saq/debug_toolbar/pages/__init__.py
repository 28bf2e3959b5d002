"""The trace pages: a request's trace as a waterfall, its JSON API and the status endpoint.

``views`` answers each route, framework-free (the adapters ``litestar`` and ``starlette``
serve it); ``trace_view`` turns a trace's spans into rows, ``trace_layout`` places them on
one time axis and ``trace_page`` renders them; ``live`` says when an open page or panel
must poll again; ``expected``, ``clock_skew``, ``as_in_panel`` and ``span_details`` add
what the spans alone do not say.
"""
