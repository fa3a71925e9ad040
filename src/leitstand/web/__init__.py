"""The web UI: server-rendered page shells whose scripts read the JSON API and the live stream."""
