# The worker and starter image: static binaries on scratch, no shell, non-root.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t dpp:$(git describe --tags --always) .
#   docker run --rm dpp:<tag> -version                          # worker <version> (commit <sha>)
#   docker run --rm --entrypoint /usr/local/bin/starter dpp:<tag> -version
#
# The entrypoint is the worker; run the operator CLI with --entrypoint /usr/local/bin/starter
# (compose and the Helm chart do). The image sets no configuration: every setting comes from the
# environment the deployment gives it (`worker -help` lists them).

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# CGO off: static binaries that need no libc. timetzdata embeds the time-zone database (the
# schedules are in Europe/London and scratch has no /usr/share/zoneinfo).
RUN CGO_ENABLED=0 go build -trimpath -tags timetzdata \
	-ldflags "-s -w -X github.com/plusranger/dpp/internal/app.Version=${VERSION} -X github.com/plusranger/dpp/internal/app.Commit=${COMMIT}" \
	-o /out/ ./worker ./starter

FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="dpp" \
	org.opencontainers.image.description="Plusranger data protection policy as Temporal workflows: worker and starter" \
	org.opencontainers.image.source="https://github.com/plusranger/dpp" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${COMMIT}"
# CA certificates for TLS to AWS KMS, SP-API, Login with Amazon, Slack and Temporal Cloud.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/worker /out/starter /usr/local/bin/
# The distroless "nonroot" user: no account in the image needs to exist for a numeric uid.
USER 65532:65532
EXPOSE 8088 8089
# /healthz on DPP_HTTP_ADDR, asked by the worker binary itself (there is no shell or curl here).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
	CMD ["/usr/local/bin/worker", "-healthcheck"]
ENTRYPOINT ["/usr/local/bin/worker"]
