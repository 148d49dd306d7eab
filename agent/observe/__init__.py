"""What the running agent tells about itself: Prometheus metrics and health checks over local HTTP
(`metrics`, `health`, `http`), per-source status and a heartbeat over MQTT (`status`), and systemd's
readiness and watchdog datagrams (`sdnotify`). All of them read the counters the pipeline, the
streams and the outbox keep already (`view`); none keeps a second count."""
