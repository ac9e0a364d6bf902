module github.com/heraldhq/herald/bench

go 1.26.0

require (
	github.com/gobwas/ws v1.4.0
	golang.org/x/image v0.33.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
)
