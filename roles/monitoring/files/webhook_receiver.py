"""Alertmanager's webhook receiver for slakit (roles/monitoring): each POST body, one JSON line.

Usage: webhook_receiver.py ADDRESS PORT LOG_FILE. Standard library only. Each notification
Alertmanager POSTs is appended to LOG_FILE as one line of compact JSON (a body that is not
JSON is kept as {"unparsed": "<text>"}); GET answers 200 with the number of lines kept.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

MAX_BODY = 4 * 1024 * 1024
LOCK = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    log_file = ""
    kept = 0

    def _answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self._answer(400, "need a body of 1 byte to 4 MiB\n")
            return
        raw = self.rfile.read(length).decode("utf-8", "replace")
        try:
            line = json.dumps(json.loads(raw), separators=(",", ":"), sort_keys=True)
        except ValueError:
            line = json.dumps({"unparsed": raw})
        with LOCK:
            with open(Receiver.log_file, "a", encoding="utf-8") as out:
                out.write(line + "\n")
            Receiver.kept += 1
        self._answer(200, "ok\n")

    def do_GET(self):
        self._answer(200, f"{Receiver.kept} notifications kept\n")

    def log_message(self, format, *args):
        pass  # the JSON lines are the log


def main():
    address, port, log_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    Receiver.log_file = log_file
    HTTPServer((address, port), Receiver).serve_forever()


if __name__ == "__main__":
    main()
