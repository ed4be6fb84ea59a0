# syntax=docker/dockerfile:1
#
# sidekick as a distroless container sidecar.
#
#   docker build -t sidekick .
#   docker build --build-arg VERSION=v1.2.3 --platform linux/arm64 -t sidekick .
#   docker run --rm -p 8080:8080 sidekick --health-path=/minio/health/ready http://minio{1...4}:9000
#
# The build stage runs on the build machine's own platform and cross-compiles for the image's
# platform (deno compile --target), so a multi-arch build needs no emulation. tools/compile.ts
# holds the targets and the permissions baked into the binary.

# hadolint ignore=DL3029  (--platform=$BUILDPLATFORM is the cross-compiling pattern, hadolint#861)
FROM --platform=$BUILDPLATFORM denoland/deno:2.9.6 AS build
# Set by BuildKit from --platform: amd64 or arm64.
ARG TARGETARCH
# A release tag (v1.2.3) becomes deno.json's version, which --version prints.
ARG VERSION=""
WORKDIR /src
COPY . .
RUN if [ -n "$VERSION" ]; then \
      deno run --allow-read=deno.json --allow-write=deno.json tools/set_version.ts "$VERSION"; \
    fi \
 && deno task compile --target "linux-${TARGETARCH}" --output /src/dist/sidekick

# Compiled Deno binaries link glibc and libgcc_s dynamically: distroless "cc" has both, "static"
# and "base" do not. sidekick also opens glibc's libc.so.6 itself, for setsockopt(TCP_NODELAY) on
# its HTTPS listeners. Deno embeds the Mozilla CA roots, and the image also has ca-certificates.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="sidekick" \
      org.opencontainers.image.description="High-performance sidecar load balancer (Deno)" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
COPY --from=build /src/dist/sidekick /sidekick
# Size the V8 heap from the container's cgroup memory limit rather than the host's memory.
ENV DENO_USE_CGROUPS=1
EXPOSE 8080
# The distroless "nonroot" user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 65532:65532
ENTRYPOINT ["/sidekick"]
