package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit/pusherclient"
)

// testServer runs a Herald node on a free loopback port for one test.
type testServer struct {
	*Server
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// testTransport is the transport startServer uses when the config names
// none; TestGoroutineTransport switches it to run tests on the other one.
var testTransport = ""

func startServer(t *testing.T, cfg config.Config) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil)
}

// startServerWith is startServer that lets setup adjust the node before it
// serves.
func startServerWith(t *testing.T, cfg config.Config, setup func(*Server)) *testServer {
	t.Helper()
	return startServerOpts(t, cfg, options{}, setup)
}

// startServerOpts is startServerWith with substitute parts.
func startServerOpts(t *testing.T, cfg config.Config, opt options, setup func(*Server)) *testServer {
	t.Helper()
	return startServerLog(t, cfg, opt, setup, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startServerLog is startServerOpts logging to log.
func startServerLog(t *testing.T, cfg config.Config, opt options, setup func(*Server), log *slog.Logger) *testServer {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Transport == "" {
		cfg.Transport = testTransport
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 3 * time.Second
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "error"
	}
	for i := range cfg.Apps {
		cfg.Apps[i].Normalize()
	}
	srv, err := newServer(cfg, log, opt)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t *testing.T) error {
	ts.cancel()
	select {
	case err := <-ts.done:
		ts.done <- err // later calls see the same result
		return err
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Errorf("server did not stop within 10s; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		return errors.New("timeout")
	}
}

func testApp(id string) apps.App {
	return apps.App{ID: id, Key: "key-" + id, Secret: "secret-" + id, ClientEvents: true}
}

// wsClient is the raw Pusher test client (testkit/pusherclient).
type (
	wsClient = pusherclient.Client
	frameMsg = pusherclient.Message
)

func dial(t *testing.T, ts *testServer, path string) *wsClient {
	t.Helper()
	return pusherclient.Dial(t, ts.addr, path)
}

// dialWith is dial through d.
func dialWith(t *testing.T, d ws.Dialer, ts *testServer, path string) *wsClient {
	t.Helper()
	return pusherclient.DialWith(t, d, ts.addr, path)
}

// connect dials the app and reads connection_established, returning the socket id.
func connect(t *testing.T, ts *testServer, key string) (*wsClient, string) {
	t.Helper()
	return pusherclient.Connect(t, ts.addr, key)
}

var (
	errorData    = pusherclient.ErrorData
	channelToken = pusherclient.ChannelToken
)

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
