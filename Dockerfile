# Herald in a container: a static binary on a distroless base, running as a
# non-root user.
#
#   docker build --build-arg VERSION=0.9.0 --build-arg COMMIT=$(git rev-parse --short HEAD) -t herald .
#   docker run --rm -p 6001:6001 --ulimit nofile=1048576:1048576 herald
#
# The image has no shell, so it declares no HEALTHCHECK: probe GET /healthz on
# port 6001 from outside (a load balancer, an orchestrator's HTTP probe).

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a change to the code reuses the downloaded modules.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git stays out of the build context (.dockerignore), so Go records no
# commit: COMMIT supplies it for "herald --version".
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
	-o /out/herald ./cmd/herald

# static-debian12 holds CA certificates, tzdata and a "nonroot" user (65532),
# and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/herald /usr/local/bin/herald
USER nonroot:nonroot
# WebSocket (/app/{key}) and REST (/apps/{id}/...) share the one port.
EXPOSE 6001
# SIGTERM (docker stop) closes every client with 4200 and exits within
# shutdown_timeout (5s), inside docker stop's default 10s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/herald"]
