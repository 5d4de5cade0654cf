# CPU image of bitsage-host. Multi-stage: build with the pinned toolchain,
# ship only the binary. (No Docker engine runs on our dev machines, so this
# file is not built in CI; see README.)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN rustup toolchain install 1.95.0 --profile minimal \
 && cargo build --release -p bitsage-host

FROM debian:bookworm-slim
COPY --from=build /src/target/release/bitsage-host /usr/local/bin/bitsage-host
COPY examples /examples
ENTRYPOINT ["bitsage-host"]
