package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
)

// floorMain runs the floor server (floor_linux.go) until ctx is done:
// herald-bench floor [--addr 127.0.0.1:7005] [--loops N].
func floorMain(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald-bench floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7005", "IPv4 address and port to listen on")
	loops := fs.Int("loops", runtime.GOMAXPROCS(0), "epoll loops")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: herald-bench floor [--addr 127.0.0.1:7005] [--loops N]

A minimal Pusher WebSocket server (Linux): accept4, one read of the upgrade
request, one write of the 101 and pusher:connection_established, one
epoll_ctl, and pusher:ping and pusher:subscribe answered, nothing else. Its
server CPU and memory per connection, measured with the connect and idle
scenarios, are the floor a real server's figures stand on. Runs until
interrupted.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitError
	}
	if fs.NArg() > 0 || *loops < 1 {
		fs.Usage()
		return ExitError
	}
	s, err := startFloor(ctx, *addr, *loops)
	if err != nil {
		fmt.Fprintln(stderr, "herald-bench floor:", err)
		return ExitError
	}
	fmt.Fprintf(stderr, "herald-bench floor: listening on %s with %d loops\n", s.Addr(), *loops)
	s.Wait()
	return ExitOK
}
