"""The OTLP/HTTP receivers through which workers in other processes reach the toolbar.

``receiver`` reads and bounds an export whatever its signal (size limits, gzip, status
codes); ``otlp`` decodes traces and ``otlp_logs`` logs from the OTLP wire format;
``otlp_limits`` bounds what they keep with the SDK's own span limits.
"""
