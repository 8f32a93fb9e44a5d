# autoswitch in an empty image: one static binary (musl, BearSSL, libyaml
# and the CA bundle compiled in) and the example config.
#
#   docker build -t autoswitch .
#   docker compose up -d            (docker-compose.yml: port 20261, ./runtime, the config)
#
# The build stage runs exactly the commands of `make test`'s static build
# (tests/integration/static_root.t runs these RUN lines; dockerfile.t
# checks that there is nothing else), so what is tested is what ships.

FROM debian:bookworm-slim AS build
WORKDIR /src
# The toolchain in its own layer: it changes only with scripts/deps.sh.
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh static
COPY . .
# build-static/autoswitch: static, stripped, CA bundle of the build stage compiled in.
RUN make static

FROM scratch
# WORKDIR /app: the default config path conf/openai_proxy.yaml is
# /app/conf/openai_proxy.yaml, and runtime/ (log_file) is /app/runtime,
# as in the reference's image.
WORKDIR /app
COPY --from=build /src/build-static/autoswitch /app/autoswitch
# Owned by the runtime user so that the admin UI can save the config.
COPY --chown=65534:65534 conf/ /app/conf/
# nobody:nogroup by number (there is no /etc/passwd).  A mounted
# /app/runtime must be writable by this id for log_file.
USER 65534:65534
ENV PORT=3000
EXPOSE 3000
# The image has no shell and no curl: the binary checks itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 CMD ["/app/autoswitch", "--probe"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/autoswitch"]
CMD ["-c", "conf/openai_proxy.yaml"]
