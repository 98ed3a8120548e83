#!/usr/bin/env python3
"""Screenshots of Hindsight's pages as a signed-in user, at desktop and phone widths.

Usage: scripts/screenshots.py BASE_URL EMAIL PASSWORD OUTDIR [PATH ...]

Drives Debian's chromium through chromedriver (WebDriver over HTTP, stdlib only), signs in
through the login form, then saves OUTDIR/<name>-<width>.png for each path at 1280 and 390 px.
With PDF=1 it also prints each path as the browser would on A4 (OUTDIR/<name>.pdf), to check
page breaks of print views.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

DEFAULT_PATHS = ["/incidents", "/incidents/new", "/incidents/INC-1", "/incidents/INC-1/edit",
                 "/admin/users", "/admin/tokens", "/admin/services", "/admin/categories"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}").get("value")


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    base_url, email, password, outdir = sys.argv[1:5]
    paths = sys.argv[5:] or DEFAULT_PATHS
    os.makedirs(outdir, exist_ok=True)
    port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wd = f"http://127.0.0.1:{port}"
    try:
        for _ in range(50):
            try:
                call(wd, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-dev-shm-usage", "--hide-scrollbars"]}}}}
        session = call(wd, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        call(wd, "POST", s + "/url", {"url": base_url + "/login"})
        for field, value in (("email", email), ("password", password)):
            el = call(wd, "POST", s + "/element", {"using": "css selector", "value": f"#{field}"})
            call(wd, "POST", f"{s}/element/{list(el.values())[0]}/value", {"text": value})
        button = call(wd, "POST", s + "/element", {"using": "css selector", "value": "button[type=submit]"})
        call(wd, "POST", f"{s}/element/{list(button.values())[0]}/click", {})
        time.sleep(0.5)
        for path in paths:
            name = path.strip("/").replace("/", "_").replace("?", "_") or "home"
            for width in (1280, 390):
                call(wd, "POST", s + "/window/rect", {"width": width, "height": 1400})
                call(wd, "POST", s + "/url", {"url": base_url + path})
                png = base64.b64decode(call(wd, "GET", s + "/screenshot"))
                out = os.path.join(outdir, f"{name}-{width}.png")
                with open(out, "wb") as f:
                    f.write(png)
                print(out)
            if os.environ.get("PDF") == "1":
                pdf = base64.b64decode(call(wd, "POST", s + "/print", {
                    "page": {"width": 21.0, "height": 29.7}, "background": True}))
                out = os.path.join(outdir, f"{name}.pdf")
                with open(out, "wb") as f:
                    f.write(pdf)
                print(out)
        call(wd, "DELETE", s)
    finally:
        driver.terminate()


if __name__ == "__main__":
    main()
