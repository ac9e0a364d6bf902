package server

import (
	"bufio"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
	"github.com/heraldhq/herald/internal/config"
)

// A publish stuck on the broker when shutdown begins: Serve returns once
// ShutdownTimeout has passed, on the fast path as on net/http's, because
// closing the connections cancels their requests' contexts. The fast path
// once waited for the broker.
func TestShutdownEndsAStuckPublish(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			a := testApp("1")
			slow := brokertest.NewFaulty(broker.NewMemory(0))
			cfg := config.Config{Apps: []apps.App{a}, ShutdownTimeout: time.Second}
			ts := startServerOpts(t, cfg, options{broker: slow}, nil)
			body := `{"name":"e","data":"d","channel":"news"}`
			extra := []string{fmt.Sprintf("Content-Length: %d", len(body))}
			if !fast {
				extra = append(extra, "X-Obs: \x80") // declined by http1.Parse: net/http serves it
			}
			rc := dialRaw(t, ts.addr)
			slow.SetLatency(20 * time.Second)
			rc.write(head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), extra...) + body)
			time.Sleep(200 * time.Millisecond) // the publish waits on the broker
			if fast && ts.rest.answered.Load() != 0 {
				t.Fatal("answered already")
			}
			start := time.Now()
			ts.cancel()
			select {
			case err := <-ts.done:
				ts.done <- err // for the cleanup's stop
			case <-time.After(6 * time.Second):
				t.Fatalf("Serve had not returned %v after shutdown began (ShutdownTimeout 1s)", time.Since(start))
			}
			t.Logf("Serve returned after %v", time.Since(start))
		})
	}
}

// A keep-alive connection that has begun its next head and stalls when
// shutdown begins is closed at once, as net/http closes a connection that
// has not sent a whole head. The fast path once counted it busy and waited
// for it until ShutdownTimeout.
func TestShutdownClosesAStalledHead(t *testing.T) {
	for _, fast := range []bool{false, true} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			a := testApp("1")
			cfg := oneApp(a)
			cfg.ShutdownTimeout = 2 * time.Second
			cfg.HTTPHeaderTimeout = 10 * time.Second
			ts := startServer(t, cfg)
			body := `{"name":"e","data":"d","channel":"news"}`
			extra := []string{fmt.Sprintf("Content-Length: %d", len(body))}
			if !fast {
				extra = append(extra, "X-Obs: \x80") // declined by http1.Parse: net/http serves it
			}
			rc := dialRaw(t, ts.addr)
			rc.write(head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), extra...) + body)
			if resp, got := rc.response(2 * time.Second); resp.StatusCode != 200 {
				t.Fatalf("publish: %d %s", resp.StatusCode, got)
			}
			rc.write("POST /apps/1/events HTTP/1.1\r\nHost: h") // and nothing more
			time.Sleep(200 * time.Millisecond)
			start := time.Now()
			ts.cancel()
			if !rc.closedWithin(5 * time.Second) {
				t.Fatal("not closed")
			}
			err := ts.stop(t)
			if d := time.Since(start); d > time.Second || err != nil {
				t.Fatalf("shutdown took %v (ShutdownTimeout %v), err %v", d, cfg.ShutdownTimeout, err)
			}
		})
	}
}

// The first head of a connection, a plain publish, trickled: "POST /app"
// at once, "s/" just before http_header_timeout, the rest just before
// twice that. The head's deadline runs from when the demux took the
// connection, and the fast path must not start it again when it takes
// over (it once did, and answered such a head).
func TestFirstHeadHasOneHeaderTimeout(t *testing.T) {
	bothTransports(t, func(t *testing.T) {
		a := testApp("1")
		cfg := oneApp(a)
		cfg.HTTPHeaderTimeout = 500 * time.Millisecond
		ts := startServer(t, cfg)
		body := `{"name":"e","data":"d","channel":"news"}`
		req := head("POST", signedTarget(a, "POST", "/apps/1/events", nil, body), fmt.Sprintf("Content-Length: %d", len(body))) + body
		rc := dialRaw(t, ts.addr)
		start := time.Now()
		rc.write(req[:9]) // "POST /app"
		time.Sleep(450 * time.Millisecond)
		rc.write(req[9:11]) // "s/": the fast path's now
		time.Sleep(450 * time.Millisecond)
		if _, err := rc.c.Write([]byte(req[11:])); err != nil {
			return // closed in time
		}
		rc.c.SetReadDeadline(time.Now().Add(time.Second))
		if resp, err := httpReadResponse(rc.br); err == nil {
			t.Fatalf("head completed %v after it began (http_header_timeout %v) answered %d", time.Since(start), cfg.HTTPHeaderTimeout, resp.StatusCode)
		}
	})
}

func httpReadResponse(br *bufio.Reader) (*http.Response, error) { return http.ReadResponse(br, nil) }
