# dist_counter container image, built with the same scripts as CI.
#
#   docker build -t dist_counter .                 runtime image
#   docker build --target test .                   build with tests, run ctest
#   docker run -d -p 7777:7777 -e CHALLENGE_ID=1 -v counter1:/data dist_counter
#
# The node reads CHALLENGE_ID (its challenge id) and ACTORS (its peers, a JSON
# array like ["counter2:7777","counter3:7777"] or a comma-separated list) from
# the environment; extra flags can be appended: `docker run ... dist_counter
# --durable`. The health check assumes the default port 7777.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- deps: the build and test packages (its own layer, so source edits do
# not reinstall them).
FROM ${DEBIAN_IMAGE} AS deps
WORKDIR /src
COPY scripts/install_deps.sh scripts/install_deps.sh
RUN scripts/install_deps.sh && rm -rf /var/lib/apt/lists/*

# ---- build: the node binary only (no tests), exactly as scripts/build.sh
# builds it for a developer.
FROM deps AS build
COPY . .
RUN scripts/build.sh --no-tests --target dist_counter \
 && install -D -m 0755 build/dist_counter /out/dist_counter

# ---- test: `docker build --target test .` builds build/ with the tests and
# runs them (the sanitizer stage of scripts/test.sh is left to CI). BuildKit
# (Docker's default builder since 23.0) skips this stage when building the
# runtime image; the legacy builder (DOCKER_BUILDKIT=0) runs it too.
FROM deps AS test
COPY . .
RUN scripts/test.sh --no-asan

# ---- runtime: only the shared libraries the binary needs, ldb and curl.
FROM ${DEBIAN_IMAGE} AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends \
      librocksdb7.8 libpistache0 libgflags2.2 libgoogle-glog0v6 libcurl4 \
      rocksdb-tools curl \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /data \
      --no-create-home --shell /usr/sbin/nologin counter \
 && mkdir -p /data \
 && chown counter:counter /data
COPY --from=build /out/dist_counter /usr/local/bin/dist_counter
# Fail the image build, not the first start, if a runtime library is missing.
RUN if ldd /usr/local/bin/dist_counter | grep -F 'not found'; then exit 1; fi

USER counter
WORKDIR /data
# glog writes to stderr, so `docker logs` shows everything.
ENV GLOG_logtostderr=1
EXPOSE 7777
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -m 2 -o /dev/null http://127.0.0.1:7777/ping || exit 1
# Exec form: the node is PID 1 and gets docker stop's SIGTERM, flushes, exits 0.
ENTRYPOINT ["/usr/local/bin/dist_counter", "--data_dir=/data", "--port=7777"]
CMD []
