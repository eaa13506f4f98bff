# second-opinion: one image for `serve`, `worker` and the one-off `init` (docs/operations.md).
# Two stages: the first builds a virtual environment, the second copies only that environment onto
# a clean python slim base, so no compiler, pip cache or source tree is left in the image.
ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY workflow ./workflow
COPY storage ./storage
COPY jobs ./jobs
COPY second_opinion ./second_opinion
RUN python -m venv /opt/second-opinion \
 && /opt/second-opinion/bin/pip install . \
 && /opt/second-opinion/bin/pip uninstall --yes pip setuptools wheel

FROM python:${PYTHON}-slim
LABEL org.opencontainers.image.title="second-opinion" \
      org.opencontainers.image.source="https://github.com/second-opinion/second-opinion"
RUN useradd --system --uid 10001 --home-dir /var/lib/second-opinion --create-home --shell /usr/sbin/nologin \
    second-opinion
COPY --from=build /opt/second-opinion /opt/second-opinion
ENV PATH=/opt/second-opinion/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/second-opinion
EXPOSE 8080
# /ready also checks the database (docs/api.md); a worker container turns this off (compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/ready', timeout=4).status != 200)"]
ENTRYPOINT ["second-opinion"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
