# The runtime image: onnxruntime inference, no torch. Mount a configuration and a state volume:
#   docker run -v /etc/edge-agent:/config:ro -v edge-agent-state:/var/lib/edge-agent \
#     -e CAM_PASSWORD -e MQTT_PASSWORD edge-agent -c /config/agent.yaml
# Without arguments it runs the built-in demo on the bundled sample clip.
# The HEALTHCHECK asks /healthz on the metrics port: give the configuration `metrics: {port: 9108}`
# (bind 127.0.0.1 is enough: the check runs inside the container); with metrics off, run the container
# with -e EDGE_AGENT_METRICS_PORT= (empty) and the check always passes.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/edge-agent
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY agent ./agent
COPY detectors ./detectors
COPY streams ./streams
COPY uploader ./uploader
COPY cityplatform ./cityplatform
COPY protocol ./protocol
COPY webauth ./webauth
COPY models ./models
COPY samples ./samples
COPY configs ./configs
RUN pip install -c constraints.txt '.[web]' && rm -rf /opt/edge-agent \
    && useradd --system --home-dir /var/lib/edge-agent edge \
    && mkdir -p /var/lib/edge-agent && chown edge /var/lib/edge-agent

USER edge
ENV EDGE_AGENT_METRICS_PORT=9108
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD python -c "import os, sys, urllib.request as u; \
    port = os.environ.get('EDGE_AGENT_METRICS_PORT'); \
    sys.exit(0 if not port else u.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"
WORKDIR /var/lib/edge-agent
VOLUME /var/lib/edge-agent
ENTRYPOINT ["edge-agent", "run"]
