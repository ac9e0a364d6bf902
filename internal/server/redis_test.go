package server

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit"
	"github.com/heraldhq/herald/internal/testkit/redistest"
)

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A node in cluster mode is ready while Redis answers: /readyz turns 503
// when Redis stops, with REST publishes answering 503 and the clients
// staying connected, and 200 again once it is back, publishes delivered;
// herald_redis_connected and herald_redis_reconnects_total follow.
// The start is logged with the node id and Redis's address, its password
// never.
func TestRedisReadiness(t *testing.T) {
	rs := redistest.Start(t)
	a := testApp("1")
	var logs syncBuffer
	cfg := config.Config{Apps: []apps.App{a}}
	cfg.Redis = config.Redis{URL: rs.URL(), NodeID: "node-a", NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
	ts := startServerLog(t, cfg, options{}, nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))

	waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
	if l := logs.String(); !strings.Contains(l, "node_id=node-a") || !strings.Contains(l, rs.Addr()) {
		t.Fatalf("start not logged with the node id and Redis address:\n%s", l)
	}
	waitForWithin(t, 5*time.Second, func() bool { return metricValue(t, ts, "herald_redis_connected") == "1" })
	if v := metricValue(t, ts, "herald_redis_reconnects_total"); v != "0" {
		t.Fatalf("herald_redis_reconnects_total %q before any outage", v)
	}
	c, _ := connect(t, ts, a.Key)
	c.Subscribe("news", "", "")
	c.Expect("pusher_internal:subscription_succeeded")
	publish := func() (int, string) {
		return testkit.REST(t, ts.addr, a, "POST", "/apps/1/events", nil, `{"name":"tick","channel":"news","data":"x"}`)
	}
	if code, body := publish(); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	c.Expect("tick")

	rs.Stop(t)
	waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 503 })
	if code, body := publish(); code != 503 {
		t.Fatalf("publish while Redis is down: %d %s, want 503", code, body)
	}
	c.Alive()
	waitForWithin(t, 5*time.Second, func() bool { return metricValue(t, ts, "herald_redis_connected") == "0" })

	rs.Start(t)
	waitForWithin(t, 20*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
	c.Alive()
	var up, reconnects string
	defer func() {
		if t.Failed() {
			t.Logf("herald_redis_connected %q, herald_redis_reconnects_total %q", up, reconnects)
		}
	}()
	waitForWithin(t, 10*time.Second, func() bool {
		// At least one reconnect: a loaded machine may see Redis come
		// and go more than once while it starts.
		up, reconnects = metricValue(t, ts, "herald_redis_connected"), metricValue(t, ts, "herald_redis_reconnects_total")
		n, err := strconv.Atoi(reconnects)
		return up == "1" && err == nil && n >= 1
	})
	waitForWithin(t, 20*time.Second, func() bool {
		if code, _ := publish(); code != 200 {
			return false
		}
		m, err := c.Next(500 * time.Millisecond)
		return err == nil && m.Event == "tick"
	})
}

// A node whose Redis is unreachable starts all the same, not ready, and
// logs its trouble without the URL's password.
func TestRedisDownAtStartLogsNoPassword(t *testing.T) {
	rs := redistest.Start(t)
	addr := rs.Addr()
	rs.Stop(t)
	var logs syncBuffer
	cfg := config.Config{Apps: []apps.App{testApp("1")}}
	cfg.Redis = config.Redis{URL: "redis://herald:hunter2@" + addr + "/0", NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
	ts := startServerLog(t, cfg, options{}, nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for range 10 {
		if code, _ := probe(t, ts, "/readyz"); code != 503 {
			t.Fatalf("/readyz with Redis down: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	l := logs.String()
	if !strings.Contains(l, "redis=redis://herald:xxxxx@"+addr) {
		t.Errorf("start not logged with the redacted address:\n%s", l)
	}
	if strings.Contains(l, "hunter2") {
		t.Fatalf("the Redis password was logged:\n%s", l)
	}
}

// metricValue is the value of an unlabelled series on the node's /metrics,
// "" when absent.
func metricValue(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	_, body := probe(t, ts, "/metrics")
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// waitForWithin is waitFor with its own bound.
func waitForWithin(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
