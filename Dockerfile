# The msa node image: `msa node` as a non-root user on a small runtime base.
#
#   docker build -t msa .                      # build from source (default)
#   docker run --rm msa node --help
#
# Both images are build arguments, with ordinary public images as defaults:
#
#   RUST_IMAGE  the toolchain that builds msa   (default rust:1.89-slim-bookworm)
#   BASE_IMAGE  what the binary runs on         (default debian:bookworm-slim)
#   MSA_BUILD   `source` (cargo build --release in RUST_IMAGE, the default) or
#               `prebuilt` (take target/release/msa from the build context,
#               built on a host with the same C library as BASE_IMAGE; then
#               RUST_IMAGE needs only a shell, mkdir and cp)
#
# The project's container test (.ci/docker-cluster) runs on machines without
# an image registry: it builds the binary on the host, makes a base image from
# the shared libraries that binary links and a tools image (sh, mkdir, cp and
# their libraries), both with `docker import`, and builds THIS file with
# MSA_BUILD=prebuilt and those images. See docs/deploy.md.

ARG RUST_IMAGE=rust:1.89-slim-bookworm
ARG BASE_IMAGE=debian:bookworm-slim
ARG MSA_BUILD=source

# --- the binary -------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
ARG MSA_BUILD
WORKDIR /src
COPY . .
RUN if [ "$MSA_BUILD" = prebuilt ]; then \
        mkdir -p /out/tls && cp target/release/msa /out/msa; \
    else \
        cargo build --release --locked --bin msa && mkdir -p /out/tls && cp target/release/msa /out/msa; \
    fi

# --- the runtime image ------------------------------------------------------
FROM ${BASE_IMAGE}
COPY --from=build /out/msa /usr/local/bin/msa
# An empty directory owned by the non-root user, where certificates go: a new
# named volume mounted here takes this ownership, so `msa cert dev --out
# /etc/msa/tls` can write into it (deploy/docker-compose.yml's `certs`).
COPY --from=build --chown=65532:65532 /out/tls /etc/msa/tls
# A numeric non-root user: works on bases without /etc/passwd too.
USER 65532:65532
# 7000 remoting, 8080 gateway, 9000 operations endpoints (when configured).
EXPOSE 7000 8080 9000
ENTRYPOINT ["/usr/local/bin/msa"]
CMD ["node", "--config", "/etc/msa/node.toml"]
