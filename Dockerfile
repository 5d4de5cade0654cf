# CPU image of bitsage-host (the node and the CLI) with the built workload
# components. Multi-stage: build with the pinned toolchain, ship the binary,
# the .wasm files and the example inputs. The binary also carries the CUDA
# backend, which loads the driver and NVRTC at run time: on a GPU host, base
# the final stage on an nvidia/cuda runtime image and run with --gpus all.
# No Docker engine runs on our dev machines, so this file is not built in CI
# (see README). The binary targets x86-64-v3 (AVX2, as .cargo/config.toml
# does); --build-arg TARGET_CPU=x86-64 builds one for any x86-64 CPU.
FROM rust:1.95-bookworm AS build
ARG TARGET_CPU=x86-64-v3
WORKDIR /src
COPY . .
RUN rustup toolchain install 1.95.0 --profile minimal \
 && rustup target add wasm32-wasip2 wasm32-unknown-unknown --toolchain 1.95.0 \
 && CARGO_TARGET_DIR=/src/target ./scripts/build-web.sh \
 && RUSTFLAGS="-C target-cpu=${TARGET_CPU}" cargo build --release --locked -p bitsage-host \
 && cargo build --release --locked --target wasm32-wasip2 --manifest-path workloads/Cargo.toml --target-dir target

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/bitsage-host /usr/local/bin/bitsage-host
COPY --from=build /src/target/wasm32-wasip2/release/*.wasm /workloads/
COPY examples /examples
ENV BITSAGE_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["bitsage-host"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
