package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit"
)

// bothTransports runs a test on the epoll transport, whose demux accepts
// sockets itself (rawAcceptLoop), and on the goroutine transport, whose
// demux accepts through the runtime (acceptLoop).
func bothTransports(t *testing.T, test func(t *testing.T)) {
	t.Helper()
	for _, tr := range []string{"epoll", "goroutine"} {
		t.Run(tr, func(t *testing.T) {
			prev := testTransport
			testTransport = tr
			defer func() { testTransport = prev }()
			test(t)
		})
	}
}

// signedTarget is path with a signed query for a request with body.
var signedTarget = testkit.SignedTarget

// rawConn is a client connection that writes exact bytes and reads
// responses.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) write(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// response reads one response and its body, within d.
func (rc *rawConn) response(d time.Duration) (*http.Response, string) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("no response within %v: %v", d, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("response body: %v", err)
	}
	return resp, strings.TrimSpace(string(b))
}

// closedWithin reports whether the server closes the connection within d,
// with nothing more sent.
func (rc *rawConn) closedWithin(d time.Duration) bool {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(d))
	b, err := rc.br.ReadByte()
	switch {
	case err == nil:
		rc.t.Fatalf("server sent %q more", b)
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return true
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		rc.t.Fatalf("read: %v", err)
	}
	return false
}

// head is a request head with the given extra header lines.
func head(method, target string, lines ...string) string {
	return method + " " + target + " HTTP/1.1\r\nHost: herald\r\n" + strings.Join(append(lines, ""), "\r\n") + "\r\n"
}

// TestRESTBodyTimeout: a signed request whose body stalls is answered 408
// after http_body_timeout and its connection closed, while a body that
// arrives in time is served, and a keep-alive connection's next request
// gets the whole timeout again.
func TestRESTBodyTimeout(t *testing.T) { bothTransports(t, testRESTBodyTimeout) }

func testRESTBodyTimeout(t *testing.T) {
	a := testApp("1")
	cfg := oneApp(a)
	cfg.HTTPBodyTimeout = 300 * time.Millisecond
	// As long as the body timeout: the answer's time counts from when the
	// body was due, so a late body still gets its 408.
	cfg.HTTPWriteTimeout = 300 * time.Millisecond
	ts := startServer(t, cfg)
	body := `{"name":"e","data":"d","channel":"news"}`
	post := head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), fmt.Sprintf("Content-Length: %d", len(body)))

	// In time, in two pieces, twice on one connection with a pause longer
	// than the timeout between the requests.
	rc := dialRaw(t, ts.addr)
	for i := 0; i < 2; i++ {
		rc.write(post + body[:10])
		time.Sleep(100 * time.Millisecond)
		rc.write(body[10:])
		if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d: %d %s (close %v), want 200 on a kept connection", i, resp.StatusCode, got, resp.Close)
		}
		time.Sleep(400 * time.Millisecond)
	}

	// Stalled.
	rc = dialRaw(t, ts.addr)
	start := time.Now()
	rc.write(post + body[:10])
	resp, got := rc.response(3 * time.Second)
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(got, "did not arrive in time") || !resp.Close {
		t.Fatalf("stalled body: %d %s (close %v), want 408 and close", resp.StatusCode, got, resp.Close)
	}
	if elapsed < 250*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("stalled body answered after %v, want about 300ms", elapsed)
	}
	if !rc.closedWithin(time.Second) {
		t.Error("connection left open after the body timeout")
	}
}

// TestRESTHeadAndIdleTimeouts: a head that does not arrive within
// http_header_timeout, REST or WebSocket, is disconnected, and a REST
// keep-alive connection idle for http_idle_timeout is closed.
func TestRESTHeadAndIdleTimeouts(t *testing.T) { bothTransports(t, testRESTHeadAndIdleTimeouts) }

func testRESTHeadAndIdleTimeouts(t *testing.T) {
	a := testApp("1")
	cfg := oneApp(a)
	cfg.HTTPHeaderTimeout = 300 * time.Millisecond
	cfg.HTTPIdleTimeout = 300 * time.Millisecond
	ts := startServer(t, cfg)
	for _, partial := range []string{
		"GET /apps/1/channels HTTP/1.1\r\nHost: herald\r\n",
		"GET /app/key-1?protocol=7 HTTP/1.1\r\nHost: herald\r\n",
	} {
		rc := dialRaw(t, ts.addr)
		start := time.Now()
		rc.write(partial)
		// The server may answer the slow REST head 408; it must close.
		rc.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		io.Copy(io.Discard, rc.br)
		if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
			t.Errorf("%q: disconnected after %v, want about 300ms", partial, d)
		}
	}

	rc := dialRaw(t, ts.addr)
	rc.write(head("GET", signedTarget(a, "GET", "/apps/1/channels", nil, "")))
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("signed GET: %d %s", resp.StatusCode, got)
	}
	start := time.Now()
	if !rc.closedWithin(2 * time.Second) {
		t.Fatal("idle keep-alive connection not closed")
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("idle connection closed after %v, want about 300ms", d)
	}
}

// TestRESTContentLengthWithTransferEncoding: a request that declares both
// is answered 400 and its connection closed, first on its connection or
// after others, pipelined or not, in any letter case and order; nothing it
// carries is served. A request that is only chunked is served, and its
// connection closed after it.
func TestRESTContentLengthWithTransferEncoding(t *testing.T) {
	bothTransports(t, testRESTContentLengthWithTransferEncoding)
}

func testRESTContentLengthWithTransferEncoding(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	sub, _ := connect(t, ts, a.Key)
	sub.Subscribe("news", "", "")
	sub.Expect("pusher_internal:subscription_succeeded")

	good := `{"name":"good","data":"d","channel":"news"}`
	goodPost := head("POST", signedTarget(a, "POST", "/apps/1/events", nil, good), fmt.Sprintf("Content-Length: %d", len(good))) + good
	// What a proxy framing by Content-Length passes as one request's body
	// is, framed by Transfer-Encoding, an empty body and then a second,
	// smuggled request.
	smuggled := `{"name":"smuggled","data":"d","channel":"news"}`
	inner := head("POST", signedTarget(a, "POST", "/apps/1/events", nil, smuggled), fmt.Sprintf("Content-Length: %d", len(smuggled))) + smuggled
	chunkedBody := "0\r\n\r\n" + inner
	both := func(cl, te string, clFirst bool) string {
		lines := []string{fmt.Sprintf("%s: %d", cl, len(chunkedBody)), te + ": chunked"}
		if !clFirst {
			lines[0], lines[1] = lines[1], lines[0]
		}
		return head("POST", signedTarget(a, "POST", "/apps/1/events", nil, ""), lines...) + chunkedBody
	}

	for _, tc := range []struct {
		name   string
		before []string // requests answered 200 first
		bad    string
		split  bool // the bad head's last bytes come in a write of their own
	}{
		{"first request", nil, both("Content-Length", "Transfer-Encoding", true), false},
		{"transfer-encoding first", nil, both("Content-Length", "Transfer-Encoding", false), false},
		{"letter case", nil, both("content-LENGTH", "TRANSFER-encoding", true), false},
		{"after a request", []string{goodPost}, both("Content-Length", "Transfer-Encoding", true), false},
		{"head in two writes", []string{goodPost}, both("Content-Length", "Transfer-Encoding", true), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			for i, req := range tc.before {
				rc.write(req)
				if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 {
					t.Fatalf("request %d before: %d %s", i, resp.StatusCode, got)
				}
				sub.Expect("good")
			}
			if tc.split {
				cut := strings.Index(tc.bad, "\r\n\r\n") + 1
				rc.write(tc.bad[:cut])
				time.Sleep(50 * time.Millisecond)
				rc.write(tc.bad[cut:])
			} else {
				rc.write(tc.bad)
			}
			resp, got := rc.response(2 * time.Second)
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Fatalf("answered %d %q (close %v), want 400 and close", resp.StatusCode, got, resp.Close)
			}
			if !rc.closedWithin(time.Second) {
				t.Fatal("connection left open")
			}
		})
	}
	// Both pipelined behind a good request on one write.
	rc := dialRaw(t, ts.addr)
	rc.write(goodPost + both("Content-Length", "Transfer-Encoding", true))
	if resp, _ := rc.response(2 * time.Second); resp.StatusCode != 200 {
		t.Fatalf("pipelined good request: %d", resp.StatusCode)
	}
	sub.Expect("good")
	if resp, _ := rc.response(2 * time.Second); resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Fatalf("pipelined bad request: %d, want 400 and close", resp.StatusCode)
	}
	// An upgrade head declaring both goes the same way.
	rc = dialRaw(t, ts.addr)
	rc.write(head("GET", "/app/"+a.Key+"?protocol=7", append(handshakeLines()[1:], "Content-Length: 5", "Transfer-Encoding: chunked")...) + "0\r\n\r\n")
	if resp, _ := rc.response(2 * time.Second); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("upgrade with both: %d, want 400", resp.StatusCode)
	}
	sub.ExpectSilence(200 * time.Millisecond)

	// Chunked alone: served, then closed.
	rc = dialRaw(t, ts.addr)
	rc.write(head("POST", signedTarget(a, "POST", "/apps/1/events", nil, good), "Transfer-Encoding: chunked") +
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(good), good))
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("chunked request: %d %s (close %v), want 200 and close", resp.StatusCode, got, resp.Close)
	}
	sub.Expect("good")
	if !rc.closedWithin(time.Second) {
		t.Fatal("connection left open after a chunked request")
	}
}

// TestRESTDuplicateAuthParams: ?auth_signature=valid&auth_signature=bogus,
// and a repeat of any other auth parameter, is refused 401.
func TestRESTDuplicateAuthParams(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	body := `{"name":"e","data":"d","channel":"news"}`
	for _, p := range []string{"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"} {
		target := signedTarget(a, "POST", "/apps/1/events", nil, body) + "&" + p + "=bogus"
		resp, err := http.Post("http://"+ts.addr+target, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "Duplicate parameter: "+p+" is given more than once") {
			t.Errorf("%s twice: %d %s, want 401 naming it", p, resp.StatusCode, b)
		}
	}
	if status := restPost(t, ts, a, "/apps/1/events", body); status != 200 {
		t.Fatalf("signed once: %d", status)
	}
}

// TestRESTRefusedBeforeBody: an unknown app, a declared body over
// max_body_bytes, and a missing or wrong signature are answered as soon as
// the head has arrived, the body never sent, and the connection closed.
func TestRESTRefusedBeforeBody(t *testing.T) { bothTransports(t, testRESTRefusedBeforeBody) }

func testRESTRefusedBeforeBody(t *testing.T) {
	a := testApp("1")
	a.MaxBodyBytes = 1000
	a.MaxEventBytes = 512 // must fit in the body
	ts := startServer(t, oneApp(a))
	body := `{"name":"e","data":"d","channel":"news"}`
	other := a
	other.Secret = "not-the-secret"
	// Each refused connection lingers half a second for a body that never
	// comes: the cases run side by side.
	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			target string
			length int
			status int
		}{
			{"unknown app", signedTarget(a, "POST", "/apps/2/events", nil, body), len(body), 404},
			{"declared body over the limit", signedTarget(a, "POST", "/apps/1/events", nil, body), 1001, 413},
			{"unsigned", "/apps/1/events", len(body), 401},
			{"wrong secret", signedTarget(other, "POST", "/apps/1/events", nil, body), len(body), 401},
			{"chunked and unsigned", "/apps/1/events", -1, 401},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				rc := dialRaw(t, ts.addr)
				length := fmt.Sprintf("Content-Length: %d", tc.length)
				if tc.length < 0 {
					length = "Transfer-Encoding: chunked"
				}
				start := time.Now()
				rc.write(head("POST", tc.target, length))
				resp, got := rc.response(2 * time.Second)
				if d := time.Since(start); d > time.Second {
					t.Errorf("answered after %v", d)
				}
				if resp.StatusCode != tc.status || !resp.Close {
					t.Fatalf("answered %d %s (close %v), want %d and close", resp.StatusCode, got, resp.Close, tc.status)
				}
				if !rc.closedWithin(2 * time.Second) {
					t.Fatal("connection left open")
				}
			})
		}
	})
	waitPending(t, ts, 0)
}

// waitPending waits for the node to count n pending connections.
func waitPending(t *testing.T, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ts.pendingConnections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d pending connections, want %d", ts.pendingConnections(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebSocketOutlivesHTTPTimeouts: a WebSocket connection, upgraded by
// net/http (a head too long for the demux) or by the demux, is not subject
// to the HTTP timeouts: it reads and is written to long after all of them.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	bothTransports(t, testWebSocketOutlivesHTTPTimeouts)
}

func testWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	a := testApp("1")
	cfg := oneApp(a)
	cfg.HTTPHeaderTimeout = 150 * time.Millisecond
	cfg.HTTPBodyTimeout = 150 * time.Millisecond
	cfg.HTTPIdleTimeout = 150 * time.Millisecond
	cfg.HTTPWriteTimeout = 150 * time.Millisecond
	ts := startServer(t, cfg)
	path := "/app/" + a.Key + "?protocol=7"
	viaHTTP := rawUpgrade(t, ts, path, handshakeLines("Cookie: "+strings.Repeat("k=v; ", 4000)), nil)
	viaDemux := rawUpgrade(t, ts, path, handshakeLines(), nil)
	for _, c := range []*wsClient{viaHTTP, viaDemux} {
		c.Expect("pusher:connection_established")
		c.Subscribe("news", "", "")
		c.Expect("pusher_internal:subscription_succeeded")
	}
	waitPending(t, ts, 0)
	time.Sleep(600 * time.Millisecond) // four times every timeout
	for i, c := range []*wsClient{viaHTTP, viaDemux} {
		publish(t, ts, a.ID, "news", fmt.Sprintf("e%d", i), "d")
		c.Expect(fmt.Sprintf("e%d", i))
		c.Alive()
	}
	time.Sleep(600 * time.Millisecond)
	for _, c := range []*wsClient{viaHTTP, viaDemux} {
		c.Alive()
	}
}

// TestHTTPSettingsReachTheListener: the configured timeouts are the
// listener's, and zero means the documented defaults.
func TestHTTPSettingsReachTheListener(t *testing.T) {
	cfg := oneApp(testApp("1"))
	cfg.HTTPHeaderTimeout, cfg.HTTPIdleTimeout, cfg.HTTPWriteTimeout = time.Second, 2*time.Second, 3*time.Second
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if h := s.http; h.ReadHeaderTimeout != time.Second || h.IdleTimeout != 2*time.Second || h.WriteTimeout != 3*time.Second || h.ReadTimeout != 0 {
		t.Errorf("listener timeouts: header %v idle %v write %v read %v", h.ReadHeaderTimeout, h.IdleTimeout, h.WriteTimeout, h.ReadTimeout)
	}
	if s.cfg.HTTPBodyTimeout != config.DefaultHTTPBodyTimeout || s.cfg.MaxPendingConnections != config.DefaultMaxPendingConnections {
		t.Errorf("defaults: body %v pending %d", s.cfg.HTTPBodyTimeout, s.cfg.MaxPendingConnections)
	}
}
