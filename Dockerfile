# haul's container image: built with the Rust toolchain, run on a small Debian with the CA
# certificates, as a user without privileges, with `haul` as the entrypoint.
#
#   docker build -t haul .                 # or: podman build -t haul .
#   docker run --rm haul --version
#   docker run --rm -v "$PWD:/work" -w /work -e AWS_PROFILE -v ~/.aws:/home/haul/.aws:ro \
#       haul apply nightly.yaml
#
# Both images it starts from can be replaced with --build-arg (a mirror, a pinned digest, or
# bases made without a registry: scripts/image does that, and checks the result).
# HAUL_COMMIT names the commit in `haul --version` when .git is not in the build context.
ARG RUST_IMAGE=docker.io/library/rust:1-slim-bookworm
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
ARG HAUL_COMMIT=
ENV HAUL_COMMIT=${HAUL_COMMIT}
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin haul \
    && install -D -m 0755 target/release/haul /out/usr/local/bin/haul \
    && install -D -m 0644 /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt \
    && install -d -m 0755 /out/home/haul /out/work

# No RUN here: the runtime stage only takes files, so it builds the same on any base.
FROM ${BASE_IMAGE}
COPY --from=build /out/usr/local/bin/haul /usr/local/bin/haul
COPY --from=build /out/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=10001:10001 /out/home/haul /home/haul
COPY --from=build --chown=10001:10001 /out/work /work
ENV HOME=/home/haul SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["haul"]
CMD ["--help"]
