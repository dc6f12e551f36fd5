"""A Flask app monitored by Flask-MonitoringDashboard 1.13, for MyMonit's pull-source tests.

Usage: python fmd_app.py PORT DATABASE_FILE SECURITY_TOKEN [SEED_ROWS [EXPORT_DELAY_MS]]
Run with TZ=UTC (the dashboard keeps naive times). SEED_ROWS recorded requests are written
into the dashboard's database first, spread over the last 30 hours, some of them twice (two
equal requests are two readings). EXPORT_DELAY_MS slows every export answer down, so that a
test can stop MyMonit while a fetch is in flight.
"""
import collections
import collections.abc

# plotly 2.7, which this dashboard imports, still looks for these in `collections`.
for _name in ("MutableSequence", "Mapping", "MutableMapping", "Sequence", "Iterable", "Callable"):
    setattr(collections, _name, getattr(collections.abc, _name))

import datetime
import random
import sqlite3
import sys
import time

import flask_monitoringdashboard as dashboard
from flask import Flask, request

port, database, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
export_delay = int(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0

app = Flask(__name__)


@app.before_request
def slow_export():
    if export_delay and "/get_json_data/" in request.path:
        time.sleep(export_delay)


@app.route("/hello/<name>")
def hello(name):
    return "hi " + name


@app.route("/world")
def world():
    return "world"


dashboard.config.security_token = token
dashboard.config.database_name = "sqlite:///" + database
dashboard.config.version = "1.0"
dashboard.bind(app)

if seed:
    rng = random.Random(7)
    now = datetime.datetime.utcnow()
    rows = []
    for n in range(seed):
        at = now - datetime.timedelta(seconds=rng.uniform(60, 30 * 3600))
        if n % 9 == 0:
            at = at.replace(microsecond=0)  # written without its fraction
        row = (
            rng.choice(["hello", "world", "slow"]),
            round(rng.lognormvariate(1.5, 0.8), 3),
            at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            rng.choice(["1.0", "1.1"]),
            rng.choice(["None", "None", "user-1"]),
            "127.0.0.%d" % rng.randint(1, 6),
        )
        rows.append(row)
        if n % 200 == 0:
            rows.append(row)
    connection = sqlite3.connect(database)
    connection.executemany(
        "insert into functionCalls (endpoint, execution_time, time, version, group_by, ip) "
        "values (?, ?, ?, ?, ?, ?)",
        rows,
    )
    connection.commit()
    connection.close()

app.run(host="127.0.0.1", port=port)
