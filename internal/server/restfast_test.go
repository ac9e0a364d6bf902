package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRESTFastPath: publishes on a keep-alive connection, pipelined or
// not, are answered by the fast path as net/http answers them; from the
// first request that is not a publish on, net/http serves the connection,
// and a head the fast path declines goes to net/http whole.
func TestRESTFastPath(t *testing.T) { bothTransports(t, testRESTFastPath) }

func testRESTFastPath(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	sub, _ := connect(t, ts, a.Key)
	sub.Subscribe("news", "", "")
	sub.Expect("pusher_internal:subscription_succeeded")
	body := `{"name":"e","data":"d","channel":"news"}`
	post := func() string {
		return head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), fmt.Sprintf("Content-Length: %d", len(body))) + body
	}
	answered := func() uint64 { return ts.rest.answered.Load() }

	rc := dialRaw(t, ts.addr)
	// Two at once, the second after the CRLF old clients end a POST with.
	rc.write(post() + "\r\n" + post())
	for i := range 2 {
		resp, got := rc.response(2 * time.Second)
		if resp.StatusCode != 200 || got != "{}" || resp.Close {
			t.Fatalf("publish %d: %d %q (close %v)", i, resp.StatusCode, got, resp.Close)
		}
		if ct, date := resp.Header.Get("Content-Type"), resp.Header.Get("Date"); ct != "application/json" || date == "" || resp.ContentLength != 3 {
			t.Errorf("publish %d: Content-Type %q, Date %q, Content-Length %d", i, ct, date, resp.ContentLength)
		}
		sub.Expect("e")
	}
	if n := answered(); n != 2 {
		t.Fatalf("fast path answered %d publishes, want 2", n)
	}
	// Not a publish: net/http's, and so is the connection from then on.
	rc.write(head("GET", signedTarget(a, "GET", "/apps/1/channels", nil, "")))
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 || !strings.Contains(got, `"news"`) {
		t.Fatalf("GET channels: %d %s", resp.StatusCode, got)
	}
	rc.write(post())
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 || got != "{}" {
		t.Fatalf("publish after the hand-off: %d %s", resp.StatusCode, got)
	}
	sub.Expect("e")
	if n := answered(); n != 2 {
		t.Fatalf("fast path answered %d, want 2: the connection is net/http's", n)
	}

	// Declined at once: a chunked publish, served by net/http, which
	// closes the connection after it (see framing).
	rc = dialRaw(t, ts.addr)
	rc.write(head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), "Transfer-Encoding: chunked") +
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body))
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("chunked publish: %d %s (close %v)", resp.StatusCode, got, resp.Close)
	}
	sub.Expect("e")
	if n := answered(); n != 2 {
		t.Fatalf("fast path answered %d, want 2", n)
	}

	// A publish after a declined head on the same connection: the
	// declined one answered by net/http, then the publish.
	rc = dialRaw(t, ts.addr)
	rc.write(post())
	rc.response(2 * time.Second)
	sub.Expect("e")
	rc.write(head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), fmt.Sprintf("Content-Length: %d", len(body)), "Expect: 100-continue"))
	if resp, _ := rc.response(2 * time.Second); resp.StatusCode != http.StatusContinue {
		t.Fatalf("Expect: 100-continue answered %d, want net/http's 100", resp.StatusCode)
	}
	rc.write(body)
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 {
		t.Fatalf("publish after 100-continue: %d %s", resp.StatusCode, got)
	}
	sub.Expect("e")
	if n := answered(); n != 3 {
		t.Fatalf("fast path answered %d, want 3", n)
	}
}

// TestRESTFastPathPending: a connection on the fast path is pending until
// it sends a signed request, and one that answers a request while still
// pending is closed, as net/http's connections are.
func TestRESTFastPathPending(t *testing.T) { bothTransports(t, testRESTFastPathPending) }

func testRESTFastPathPending(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	body := `{"name":"e","data":"d","channel":"news"}`
	rc := dialRaw(t, ts.addr)
	post := head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), fmt.Sprintf("Content-Length: %d", len(body)))
	rc.write(post[:20])
	waitPending(t, ts, 1) // on the fast path, not signed yet
	rc.write(post[20:])
	waitPending(t, ts, 0) // signed: the body may take its time
	rc.write(body)
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("publish: %d %s (close %v)", resp.StatusCode, got, resp.Close)
	}
	waitPending(t, ts, 0)
	if rc.closedWithin(200 * time.Millisecond) {
		t.Fatal("signed connection closed")
	}

	// Signed, but for an unknown channel name: refused after the
	// signature, so the connection stays.
	bad := `{"name":"e","data":"d","channel":"bad channel"}`
	rc.write(head("POST", signedTarget(a, "POST", "/apps/1/events", nil, bad), fmt.Sprintf("Content-Length: %d", len(bad))) + bad)
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 400 || resp.Close {
		t.Fatalf("bad channel: %d %s (close %v), want 400 on a kept connection", resp.StatusCode, got, resp.Close)
	}

	// Never signed: refused and closed, its slot given back.
	rc = dialRaw(t, ts.addr)
	rc.write(head("POST", "/apps/1/events", fmt.Sprintf("Content-Length: %d", len(body))) + body)
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("unsigned: %d %s (close %v), want 401 and close", resp.StatusCode, got, resp.Close)
	}
	if !rc.closedWithin(2 * time.Second) {
		t.Fatal("unsigned connection left open")
	}
	waitPending(t, ts, 0)
}

// TestRESTFastPathShutdown: shutting down closes an idle fast-path
// connection at once and lets one in the middle of a request finish it.
func TestRESTFastPathShutdown(t *testing.T) {
	a := testApp("1")
	cfg := oneApp(a)
	cfg.ShutdownTimeout = 5 * time.Second
	ts := startServer(t, cfg)
	body := `{"name":"e","data":"d","channel":"news"}`
	post := head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), fmt.Sprintf("Content-Length: %d", len(body)))
	idle := dialRaw(t, ts.addr)
	idle.write(post + body)
	idle.response(2 * time.Second)
	busy := dialRaw(t, ts.addr)
	busy.write(post + body)
	busy.response(2 * time.Second)
	busy.write(post + body[:5]) // a request under way
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	ts.cancel()
	if !idle.closedWithin(2 * time.Second) {
		t.Fatal("idle connection not closed on shutdown")
	}
	time.Sleep(100 * time.Millisecond)
	busy.write(body[5:])
	if resp, got := busy.response(2 * time.Second); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("request under way at shutdown: %d %s (close %v), want 200 and close", resp.StatusCode, got, resp.Close)
	}
	if !busy.closedWithin(2 * time.Second) {
		t.Fatal("connection kept after its request during shutdown")
	}
	if err := ts.stop(t); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
}

// A publish whose target ends in a '?' with nothing after it, or in "?&",
// has an empty or meaningless query: it is refused as unsigned, as net/http
// refuses it, and the node goes on serving.
func TestRESTFastPathEmptyQuery(t *testing.T) { bothTransports(t, testRESTFastPathEmptyQuery) }

func testRESTFastPathEmptyQuery(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	for _, target := range []string{"/apps/1/events?", "/apps/1/events?&", "/apps/1/batch_events?"} {
		rc := dialRaw(t, ts.addr)
		rc.write(head("POST", target, "Content-Length: 0"))
		if resp, got := rc.response(2 * time.Second); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST %s: %d %s, want 401", target, resp.StatusCode, got)
		}
	}
	body := `{"name":"e","data":"d","channel":"news"}`
	rc := dialRaw(t, ts.addr)
	rc.write(head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), fmt.Sprintf("Content-Length: %d", len(body))) + body)
	if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 || got != "{}" {
		t.Fatalf("publish afterwards: %d %s", resp.StatusCode, got)
	}
}
