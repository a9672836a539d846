#!/usr/bin/python3
# A stand-in for gantry-serve in the coordinator's deployment tests: it takes
# gantry-serve's command line, serves GET /v2/health/ready (200),
# /v2/health/live, /v2/models/{m} and /v2/models/{m}/stats, writes the ready
# file atomically once listening, and exits 0 on SIGTERM. A model named
# "crash" makes it exit 3 at once (a server that cannot start); "slow" makes
# it never write its ready file. It records its argv beside the ready file.
import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--storage", required=True)
p.add_argument("--model", action="append", required=True)
p.add_argument("--port", type=int, default=0)
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--max-batch", type=int, default=64)
p.add_argument("--max-delay-ms", type=int, default=0)
p.add_argument("--int8", action="store_true")
p.add_argument("--monitor-ingest", default="")
p.add_argument("--sample-rate", type=float, default=0.1)
p.add_argument("--data-dir", default="")
p.add_argument("--name", default="serve")
p.add_argument("--ready-file", default="")
args = p.parse_args()

models = []
for m in args.model:
    name, _, ref = m.partition("@")
    version = ref[1:] if ref.startswith("v") and ref[1:].isdigit() else "1"
    models.append({"name": name, "version": version})
if any(m["name"] == "crash" for m in models):
    sys.exit(3)
count = {"n": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        count["n"] += 1
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["v2", "health"]:
            return self.reply(200, {"ready": True})
        if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
            m = next((m for m in models if m["name"] == parts[2]), None)
            if m is None:
                return self.reply(404, {"error": "unknown model " + parts[2]})
            if len(parts) == 4 and parts[3] == "stats":
                return self.reply(200, {"model_stats": [{"name": m["name"], "version": m["version"],
                                                         "inference_count": count["n"]}]})
            return self.reply(200, {"name": m["name"], "versions": [m["version"]], "platform": "gantry"})
        self.reply(404, {"error": "no route " + self.path})


server = ThreadingHTTPServer((args.host, args.port), Handler)
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
if args.ready_file:
    folder = os.path.dirname(args.ready_file)
    with open(os.path.join(folder, "argv.json"), "w") as f:
        json.dump(sys.argv[1:], f)
    with open(os.path.join(folder, "env.json"), "w") as f:
        json.dump({"GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES")}, f)
    if not any(m["name"] == "slow" for m in models):
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"name": args.name, "port": server.server_address[1], "pid": os.getpid(),
                       "models": models}, f)
        os.rename(tmp, args.ready_file)
server.serve_forever()
