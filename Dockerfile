# The vana-load image: the `vana-load` binary, the shipped targets and
# profiles, and nothing else, for sharded runs against a network (Moksha or
# a target file) — see README, "Running on Kubernetes". It has no anvil and no
# npm tools, so `vana-load twin up` and `--target local` do not work in it.
#
#   docker build -t vana-load .
#   docker run --rm vana-load k8s render --profile smoke --shards 3 --image vana-load

# ---- build: the release binary --------------------------------------------
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
# aws-lc-sys (rustls' crypto) builds C with cmake; rusqlite builds SQLite with cc.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vana-load --bin vana-load \
 && install -D target/release/vana-load /out/vana-load

# ---- runtime: glibc, libgcc, CA certificates, tzdata; runs as uid 65532 ----
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/vana-load /usr/local/bin/vana-load
# `--target moksha` and `--profile <file>` look in ./targets and ./profiles.
WORKDIR /app
COPY targets/ /app/targets/
COPY profiles/ /app/profiles/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/vana-load"]
CMD ["--help"]
