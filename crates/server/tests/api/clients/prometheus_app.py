"""A service exposing Prometheus metrics with prometheus_client (PyPI), for MyMonit's
pull-source tests. Usage: python prometheus_app.py PORT
"""
import sys
import time

from prometheus_client import Counter, Gauge, Histogram, Summary, start_http_server

requests = Counter("app_requests", "Requests served", ["method", "code"])
temperature = Gauge("app_temperature_celsius", "Temperature of the rack")
latency = Histogram("app_latency_seconds", "Request latency", buckets=(0.05, 0.1, 0.5))
sizes = Summary("app_response_bytes", "Response sizes")

start_http_server(int(sys.argv[1]), addr="127.0.0.1")
while True:
    requests.labels("get", "200").inc()
    requests.labels("post", "500").inc(2)
    temperature.set(21.5)
    for value in (0.01, 0.07, 0.2, 0.9):
        latency.observe(value)
    sizes.observe(512)
    time.sleep(0.2)
