"""Reading the node plugin's Prometheus endpoint: one scrape as {series: value}."""

import re
import urllib.request

SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


def scrape(url):
    """GET `url` (http://host:port/metrics) and parse the text format: every sample line."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SERIES.match(line)
        assert match, f"not a sample line of the text format: {line!r}"
        samples[match.group(1)] = float(match.group(2))
    return samples


def metrics_url_from_log(log):
    """The endpoint the driver logged at start (url=http://.../metrics, "serving metrics")."""
    match = re.search(r"url=(http://\S+/metrics)", log)
    return match.group(1) if match else None
