package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit/redistest"
)

// hookRecorder collects "name channel user" of every webhook event.
type hookRecorder struct {
	mu     sync.Mutex
	events []string
	srv    *httptest.Server
}

func newHookRecorder(t *testing.T) *hookRecorder {
	r := &hookRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var body struct {
			Events []struct {
				Name, Channel string
				UserID        string `json:"user_id"`
			} `json:"events"`
		}
		json.Unmarshal(b, &body)
		r.mu.Lock()
		for _, e := range body.Events {
			r.events = append(r.events, strings.TrimSpace(e.Name+" "+e.Channel+" "+e.UserID))
		}
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// seen is what the recorder has received so far.
func (r *hookRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *hookRecorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// slowProxy forwards to addr, holding every chunk Redis sends back for
// delay: a Redis a round trip of delay away.
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						time.Sleep(delay)
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A node stopped gracefully sends the channel_vacated of a channel its
// last client left, also when Redis is a few milliseconds away: the count
// the leaving client set to 0 reaches Redis, and the vacancy it decides is
// reported, before the observers close and the broker removes what is
// left of the node (which reports nothing).
func TestClusterShutdownSendsVacancyOverSlowRedis(t *testing.T) {
	rs := redistest.Start(t)
	hooks := newHookRecorder(t)
	a := testApp("1")
	a.Webhooks = []apps.Webhook{{URL: hooks.srv.URL, EventTypes: []string{"channel_occupied", "channel_vacated"}}}
	cfg := config.Config{Apps: []apps.App{a}}
	cfg.Webhook = config.Webhook{Delay: 50 * time.Millisecond, BatchWindow: 10 * time.Millisecond}
	cfg.Redis = config.Redis{URL: "redis://" + slowProxy(t, rs.Addr(), 30*time.Millisecond) + "/0", NodeID: "node-a", NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
	cfg.ShutdownTimeout = 8 * time.Second
	ts := startServer(t, cfg)
	waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
	c, _ := connect(t, ts, a.Key)
	c.Subscribe("news", "", "")
	c.Expect("pusher_internal:subscription_succeeded")
	waitForWithin(t, 10*time.Second, func() bool { return hooks.count("channel_occupied") == 1 })
	if err := ts.stop(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if n := hooks.count("channel_vacated"); n != 1 {
		t.Fatalf("%d channel_vacated sent before the node exited, want 1", n)
	}
}
