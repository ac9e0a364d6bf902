package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// demuxServer runs a demux whose take answers "taken <head> <rest>" and
// closes, in front of an http.Server that echoes the method and path.
// With raw, the demux accepts sockets itself (rawAcceptLoop) and its takeFD
// answers the same way.
type demuxServer struct {
	addr    string
	d       *demux
	http    *http.Server
	taken   atomic.Int32 // by take
	takenFD atomic.Int32 // by takeFD
	done    chan error
}

// bothAcceptLoops runs a demux test with acceptLoop and with rawAcceptLoop.
func bothAcceptLoops(t *testing.T, test func(t *testing.T, raw bool)) {
	t.Run("runtime", func(t *testing.T) { test(t, false) })
	t.Run("raw", func(t *testing.T) {
		if fdTake(nil) == nil {
			t.Skip("raw accepting needs Linux")
		}
		test(t, true)
	})
}

// takeAnswer is what the test demux's take writes.
func takeAnswer(head, rest []byte) string { return fmt.Sprintf("taken %d %q", len(head), rest) }

func wantsTake(head []byte) bool { return strings.Contains(string(head), "Upgrade: websocket") }

func startDemux(t *testing.T, timeout time.Duration, raw bool) *demuxServer {
	t.Helper()
	// As Server.Listen does: accept once the client has sent something.
	lc := net.ListenConfig{Control: deferAccept}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ds := &demuxServer{addr: ln.Addr().String(), done: make(chan error, 1)}
	var takeFD func(int, []byte, []byte) bool
	if raw {
		takeFD = fdTake(ds)
	}
	ds.d = newDemux(ln, "GET /app/", timeout, func(nc net.Conn, head, rest []byte) bool {
		if !wantsTake(head) {
			return false
		}
		ds.taken.Add(1)
		io.WriteString(nc, takeAnswer(head, rest))
		nc.Close()
		return true
	}, takeFD)
	ds.http = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "http %s %s %d", r.Method, r.URL.Path, len(r.Header.Get("Cookie")))
		}),
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	go func() { ds.done <- ds.http.Serve(ds.d.httpListener()) }()
	t.Cleanup(func() {
		ds.http.Close()
		<-ds.done
		ds.d.wait()
	})
	return ds
}

// rawExchange writes req and returns everything read until the server
// closes or 2s pass.
func rawExchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestDemuxRoutesUpgradesAndHTTP(t *testing.T) { bothAcceptLoops(t, testDemuxRoutes) }

func testDemuxRoutes(t *testing.T, raw bool) {
	ds := startDemux(t, 5*time.Second, raw)
	up := "GET /app/k?protocol=7 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"

	if got := rawExchange(t, ds.addr, up+"frame"); got != fmt.Sprintf("taken %d %q", len(up), "frame") {
		t.Errorf("upgrade: %q", got)
	}
	// Sent in pieces: the head is reassembled.
	c, err := net.Dial("tcp", ds.addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"GE", "T /app", "/k?protocol=7 HTTP/1.1\r\nHost: h\r\n", "Upgrade: websocket\r\n\r", "\n"} {
		io.WriteString(c, part)
		time.Sleep(20 * time.Millisecond)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if b, _ := io.ReadAll(c); string(b) != fmt.Sprintf("taken %d %q", len(up), "") {
		t.Errorf("upgrade in pieces: %q", b)
	}
	c.Close()

	// Declined by take, not an upgrade, or not under /app/: net/http.
	for req, want := range map[string]string{
		"GET /app/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n":                       "http GET /app/k 0",
		"GET /apps/1/channels HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n":             "http GET /apps/1/channels 0",
		"POST /app/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 0\r\n\r\n": "http POST /app/k 0",
		"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n":                     "http GET /healthz 0",
	} {
		got := rawExchange(t, ds.addr, req)
		if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(got, want) {
			t.Errorf("%q: got %q, want a 200 with %q", req, got, want)
		}
	}

	// A head too long for the demux goes to net/http whole.
	cookie := strings.Repeat("c", 20<<10)
	got := rawExchange(t, ds.addr, "GET /app/k HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: close\r\nCookie: "+cookie+"\r\n\r\n")
	if !strings.HasSuffix(got, fmt.Sprintf("http GET /app/k %d", len(cookie))) {
		t.Errorf("long head: got %.200q", got)
	}
	// The raw loop takes a head that was there at accept itself; one sent in
	// pieces goes the runtime's way.
	wantTaken, wantFD := int32(2), int32(0)
	if raw {
		wantTaken, wantFD = 1, 1
	}
	if n, m := ds.taken.Load(), ds.takenFD.Load(); n != wantTaken || m != wantFD {
		t.Errorf("take served %d connections and takeFD %d, want %d and %d", n, m, wantTaken, wantFD)
	}
}

func TestDemuxKeepAlive(t *testing.T) { bothAcceptLoops(t, testDemuxKeepAlive) }

func testDemuxKeepAlive(t *testing.T, raw bool) {
	ds := startDemux(t, 5*time.Second, raw)
	var reused atomic.Int32
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused.Add(1)
			}
		},
	})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i, path := range []string{"/healthz", "/apps/1/channels", "/app/x", "/healthz"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ds.addr+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "http GET " + path + " 0"; string(b) != want {
			t.Fatalf("request %d: %q, want %q", i, b, want)
		}
	}
	if n := reused.Load(); n != 3 {
		t.Fatalf("%d requests reused the connection, want 3", n)
	}
}

// TestDemuxDropsSlowHead: a client that does not finish its head in time
// is disconnected.
func TestDemuxDropsSlowHead(t *testing.T) { bothAcceptLoops(t, testDemuxDropsSlowHead) }

func testDemuxDropsSlowHead(t *testing.T, raw bool) {
	ds := startDemux(t, 200*time.Millisecond, raw)
	c, err := net.Dial("tcp", ds.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	io.WriteString(c, "GET /app/k HTTP/1.1\r\nHost: h\r\n")
	go func() {
		for i := 0; i < 20; i++ {
			time.Sleep(50 * time.Millisecond)
			if _, err := io.WriteString(c, "X: y\r\n"); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	if errors.Is(err, syscall.ECONNRESET) {
		// Closed with a header line just arrived and unread: the kernel
		// resets instead of sending FIN. Disconnected all the same.
		err = nil
	}
	if elapsed := time.Since(start); err != nil || len(b) != 0 || elapsed > 900*time.Millisecond {
		t.Fatalf("read %q, %v after %v; want EOF after about 200ms", b, err, elapsed)
	}
}

// TestDemuxCloseStopsHeadReaders: closing the listener, as
// http.Server.Shutdown does, ends Serve and every connection still sending
// its head, at once.
func TestDemuxCloseStopsHeadReaders(t *testing.T) { bothAcceptLoops(t, testDemuxCloseStopsHeadReaders) }

func testDemuxCloseStopsHeadReaders(t *testing.T, raw bool) {
	ds := startDemux(t, time.Minute, raw)
	c, err := net.Dial("tcp", ds.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /app/k HTTP/1.1\r\n")
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ds.http.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-ds.done; err != http.ErrServerClosed {
		t.Fatalf("Serve returned %v", err)
	}
	ds.done <- nil
	ds.d.wait()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("half-sent connection: read %q, %v; want EOF", b, err)
	}
	if _, err := net.DialTimeout("tcp", ds.addr, time.Second); err == nil {
		t.Fatal("still accepting")
	}
}

// rawUpgrade sends a handshake of the given header lines followed by
// extra, and returns the client once the server answered 101.
func rawUpgrade(t *testing.T, ts *testServer, path string, lines []string, extra []byte) *wsClient {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := "GET " + path + " HTTP/1.1\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n"
	if _, err := c.Write(append([]byte(head), extra...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake answered %s %v", resp.Status, resp.Header)
	}
	return &wsClient{T: t, Conn: c, BR: br}
}

func handshakeLines(extra ...string) []string {
	return append([]string{
		"host: example.com",
		"upgrade: WebSocket",
		"connection: keep-alive, Upgrade",
		"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
		"sec-websocket-version: 13",
	}, extra...)
}

func clientText(t *testing.T, s string) []byte {
	var b strings.Builder
	f := ws.NewTextFrame([]byte(s))
	f = ws.MaskFrameInPlace(f)
	if err := ws.WriteFrame(&b, f); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// TestUpgradesBypassNetHTTP: WebSocket upgrades, pipelined frames and
// browser-sized heads included, are served without net/http ever seeing the
// connection, while REST requests and malformed upgrades on the same port
// still reach it and get its usual answers.
func TestUpgradesBypassNetHTTP(t *testing.T) {
	a := testApp("1")
	var mu sync.Mutex
	seen := map[net.Conn]bool{}
	ts := startServerWith(t, oneApp(a), func(s *Server) {
		s.http.ConnState = func(c net.Conn, _ http.ConnState) {
			mu.Lock()
			seen[c] = true
			mu.Unlock()
		}
	})
	httpConns := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}

	path := "/app/" + a.Key + "?protocol=7&client=js&version=8.4.0"
	sub := clientText(t, `{"event":"pusher:subscribe","data":{"channel":"news"}}`)
	c := rawUpgrade(t, ts, path, handshakeLines("Cookie: "+strings.Repeat("k=v; ", 1500)), sub)
	if m := c.Read(); m.Event != "pusher:connection_established" {
		t.Fatalf("first message %+v", m)
	}
	c.Expect("pusher_internal:subscription_succeeded")
	c2, _ := connect(t, ts, a.Key)
	c2.Alive()
	if n := httpConns(); n != 0 {
		t.Fatalf("net/http saw %d connections for WebSocket upgrades", n)
	}

	for _, tc := range []struct {
		req    string
		status int
	}{
		{"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 200},
		{"GET /apps/1/channels HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 401},
		// Not an upgrade, and an upgrade of a version Herald does not
		// speak: answered by net/http and the WebSocket library as before.
		{"GET " + path + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 400},
		{"GET " + path + " HTTP/1.1\r\n" +
			"Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", 426},
		{"GET /nowhere HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 404},
	} {
		got := rawExchange(t, ts.addr, tc.req)
		if want := fmt.Sprintf("HTTP/1.1 %d ", tc.status); !strings.HasPrefix(got, want) {
			t.Errorf("%q: answered %.60q, want %s", tc.req, got, want)
		}
	}
	if n := httpConns(); n != 5 {
		t.Errorf("net/http saw %d connections, want 5", n)
	}

	// A head too long for the fast path is upgraded by net/http, and keeps
	// its pipelined frame too.
	c3 := rawUpgrade(t, ts, path, handshakeLines("Cookie: "+strings.Repeat("k=v; ", 4000)), sub)
	if m := c3.Read(); m.Event != "pusher:connection_established" {
		t.Fatalf("first message %+v", m)
	}
	c3.Expect("pusher_internal:subscription_succeeded")
	if n := httpConns(); n != 6 {
		t.Errorf("net/http saw %d connections, want 6", n)
	}
}
