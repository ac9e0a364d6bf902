package server

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// matching returns the records whose message contains s, as text.
func (l *logRecorder) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if !strings.Contains(r.Message, s) {
			continue
		}
		line := r.Message
		r.Attrs(func(a slog.Attr) bool {
			line += " " + a.String()
			return true
		})
		out = append(out, line)
	}
	return out
}

// TestPendingConnectionBound: connections that are neither a WebSocket nor
// authenticated are bounded; over the bound new connections are closed at
// once, which is logged once, while established WebSocket and signed REST
// connections are served as before. A connection stops counting once it
// is a WebSocket or has sent a signed request, and one that answered a
// request without authenticating is not kept alive.
func TestPendingConnectionBound(t *testing.T) { bothTransports(t, testPendingConnectionBound) }

func testPendingConnectionBound(t *testing.T) {
	a := testApp("1")
	cfg := oneApp(a)
	cfg.MaxPendingConnections = 3
	logs := &logRecorder{}
	ts := startServerWith(t, cfg, func(s *Server) { s.log = slog.New(logs) })
	signedGet := head("GET", signedTarget(a, "GET", "/apps/1/channels", nil, ""))

	// Established before: a WebSocket, and a REST client that signed.
	ws, _ := connect(t, ts, a.Key)
	rest := dialRaw(t, ts.addr)
	rest.write(signedGet)
	if resp, got := rest.response(2 * time.Second); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("signed request: %d %s", resp.StatusCode, got)
	}
	waitPending(t, ts, 0)

	// Three connections that stop half way through their head fill the
	// bound.
	var stalled []*rawConn
	for _, partial := range []string{
		"GET /apps/1/channels HTTP/1.1\r\nHost: herald\r\n",
		"POST /apps/1/events HTTP/1.1\r\nHost: herald\r\n",
		"GET /app/key-1?protocol=7 HTTP/1.1\r\nHost: herald\r\n",
	} {
		rc := dialRaw(t, ts.addr)
		rc.write(partial)
		stalled = append(stalled, rc)
	}
	waitPending(t, ts, 3)

	// Over it: closed at once, upgrade or REST, with nothing answered.
	upgrade := head("GET", "/app/"+a.Key+"?protocol=7", handshakeLines()[1:]...)
	for i := 0; i < 5; i++ {
		rc := dialRaw(t, ts.addr)
		rc.write([]string{upgrade, signedGet}[i%2])
		if !rc.closedWithin(time.Second) {
			t.Fatalf("connection %d over the bound not closed", i)
		}
	}
	if n := ts.pendingConnections(); n != 3 {
		t.Fatalf("%d pending after refusals, want 3", n)
	}
	// The established ones do not notice.
	ws.Alive()
	rest.write(signedGet)
	if resp, got := rest.response(2 * time.Second); resp.StatusCode != 200 {
		t.Fatalf("established REST client: %d %s", resp.StatusCode, got)
	}
	// One report for the five.
	if got := logs.matching("pending"); len(got) != 1 || !strings.Contains(got[0], "max_pending_connections=3") {
		t.Fatalf("reports: %q, want one", got)
	}

	// Room again once a stalled connection goes; a new WebSocket and a new
	// signed REST connection then stop counting as soon as they are
	// established.
	stalled[0].c.Close()
	waitPending(t, ts, 2)
	ws2, _ := connect(t, ts, a.Key)
	ws2.Alive()
	waitPending(t, ts, 2)
	rest2 := dialRaw(t, ts.addr)
	rest2.write(signedGet)
	if resp, got := rest2.response(2 * time.Second); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("new signed request: %d %s", resp.StatusCode, got)
	}
	waitPending(t, ts, 2)

	// A request that does not authenticate does not keep its connection.
	for _, req := range []string{head("GET", "/healthz"), head("GET", "/apps/1/channels")} {
		rc := dialRaw(t, ts.addr)
		rc.write(req)
		resp, _ := rc.response(2 * time.Second)
		if !resp.Close {
			t.Errorf("%q answered %d without Connection: close", req, resp.StatusCode)
		}
		if !rc.closedWithin(time.Second) {
			t.Errorf("%q: connection kept", req)
		}
	}
	waitPending(t, ts, 2)

	for _, rc := range stalled[1:] {
		rc.c.Close()
	}
	waitPending(t, ts, 0)
}
