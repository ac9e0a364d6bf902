module github.com/heraldhq/herald

go 1.26.0

require (
	github.com/gobwas/ws v1.4.0
	github.com/pusher/pusher-http-go/v5 v5.1.1
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/sys v0.49.0
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	golang.org/x/crypto v0.44.0 // indirect
)
