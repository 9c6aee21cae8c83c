# Build stage: build the wheel, then install it with its dependencies into a venv.
# The build fetches GraphiQL's files from the npm registry (pinned, sha512-checked;
# build_hooks.py); `gateway graphiql-assets` then fails the image if they are missing.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in build_hooks.py ./
COPY gateway ./gateway
COPY schema ./schema
RUN python -m venv /opt/propgate \
 && /opt/propgate/bin/pip install --no-cache-dir . \
 && /opt/propgate/bin/gateway graphiql-assets

# Run stage: only the venv, as a non-root user.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 propgate
COPY --from=build /opt/propgate /opt/propgate
ENV PATH="/opt/propgate/bin:$PATH" PYTHONUNBUFFERED=1
USER propgate
# The vault's default path is relative: the user's home is where it can be written.
WORKDIR /home/propgate
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
# With no configuration this serves the sandbox; mount a TOML file and set
# PROPGATE_CONFIG (plus the secrets it names) to serve the real providers.
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
