"""InfluxDB's own Python client libraries, as labs use them, against MyMonit.

Usage: influx_clients.py URL DATABASE INGEST_TOKEN USERNAME PERSONAL_TOKEN
Writes with `influxdb` (1.x) and `influxdb-client` (2.x), reads back with `influxdb`, and
prints what it saw as one JSON object for the test to check.
"""
import json
import sys
from urllib.parse import urlparse

from influxdb import InfluxDBClient
from influxdb_client import InfluxDBClient as InfluxDB2Client, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

url, database, ingest_token, username, personal_token = sys.argv[1:6]
address = urlparse(url)
seen = {}

# 1.x: the ingest token as the password (Basic), seconds, a boolean and an integer field.
writer = InfluxDBClient(host=address.hostname, port=address.port, username="lab-script",
                        password=ingest_token, database=database)
seen["version"] = writer.ping()
writer.write_points([
    {"measurement": "hertz", "tags": {"host": "py1"}, "time": 1700000000 + i,
     "fields": {"value": 1.5 + i}}
    for i in range(10)
], time_precision="s")
writer.write_points([
    {"measurement": "pump", "tags": {"site": "north"}, "time": 1700000000,
     "fields": {"running": True, "rpm": 1200}},
], time_precision="s")
try:
    writer.write_points([{"measurement": "pump", "time": 1700000001, "fields": {"note": "text"}}],
                        time_precision="s")
    seen["string_field"] = "accepted"
except Exception as err:  # the client raises on 400
    seen["string_field"] = str(err)

# 1.x reads with the personal access token.
reader = InfluxDBClient(host=address.hostname, port=address.port, username=username,
                        password=personal_token, database=database)
seen["databases"] = [d["name"] for d in reader.get_list_database()]
result = reader.query(
    'SELECT mean("value"), count("value") FROM "hertz" WHERE "host" = \'py1\' '
    "AND time >= 1700000000s AND time < 1700000010s GROUP BY time(5s)", epoch="s")
seen["mean"] = list(result.get_points())
result = reader.query('SELECT "running", "rpm" FROM "pump"', epoch="s")
seen["pump"] = list(result.get_points())
try:
    InfluxDBClient(host=address.hostname, port=address.port, username=username,
                   password="mmp_wrong", database=database).query("SHOW DATABASES")
    seen["wrong_token"] = "accepted"
except Exception as err:
    seen["wrong_token"] = str(err)

# 2.x: Token auth, a bucket, gzip.
with InfluxDB2Client(url=url, token=ingest_token, org="-", enable_gzip=True) as client:
    seen["ping2"] = client.ping()
    write_api = client.write_api(write_options=SYNCHRONOUS)
    write_api.write(bucket=database, record=[
        Point("hertz").tag("host", "py2").field("value", 2.5 + i).time(1700000100 + i, WritePrecision.S)
        for i in range(5)
    ])
    write_api.write(bucket=database, record="hertz,host=py2 value=9.75 1700000200000000000")

print(json.dumps(seen))
