package server

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker/redisbroker"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit/redistest"
	"github.com/redis/rueidis"
)

// claimKey is the key of node-a's claim under the default prefix.
const claimKey = "herald:claim:6:node-a"

func rawRedis(t *testing.T, rs *redistest.Server) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// serveResult waits for ts's Serve to return on its own.
func serveResult(t *testing.T, ts *testServer, within time.Duration) error {
	t.Helper()
	select {
	case err := <-ts.done:
		ts.done <- err // for the cleanup's stop
		return err
	case <-time.After(within):
		t.Fatalf("the node did not stop within %v", within)
		return nil
	}
}

// A node whose id another process takes over (its claim written over,
// as by a process started with the same id after this one's claim had
// lapsed) shuts down as on SIGTERM: its clients are told to reconnect
// (4200), and Serve returns the broker's ErrNodeIDTaken, logged as an
// error naming the node id.
func TestNodeIDTakenStopsNode(t *testing.T) {
	rs := redistest.Start(t)
	raw := rawRedis(t, rs)
	a := testApp("1")
	var logs syncBuffer
	cfg := config.Config{Apps: []apps.App{a}}
	cfg.Redis = config.Redis{URL: rs.URL(), NodeID: "node-a", NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
	ts := startServerLog(t, cfg, options{}, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
	c, _ := connect(t, ts, a.Key)
	c.Subscribe("news", "", "")
	c.Expect("pusher_internal:subscription_succeeded")

	if err := raw.Do(t.Context(), raw.B().Set().Key(claimKey).Value("another-process").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if code, _ := errorData(t, c.Expect("pusher:error")); code == nil || *code != 4200 {
		t.Fatalf("told %v, want 4200", code)
	}
	if code := c.ExpectClose(); code != 4200 {
		t.Fatalf("closed with %d, want 4200", code)
	}
	err := serveResult(t, ts, 10*time.Second)
	if !errors.Is(err, redisbroker.ErrNodeIDTaken) {
		t.Fatalf("Serve returned %v, want ErrNodeIDTaken", err)
	}
	l := logs.String()
	if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "node_id=node-a") || !strings.Contains(l, "another process") {
		t.Fatalf("no error logged naming the node id:\n%s", l)
	}
	if v, err := raw.Do(t.Context(), raw.B().Get().Key(claimKey).Build()).ToString(); err != nil || v != "another-process" {
		t.Fatalf("the claim after the shutdown = %q, %v; want the other process's", v, err)
	}
}

// A node started with an id whose claim another process holds is not
// ready while it waits, and says why; it becomes ready once the claim is
// free.
func TestNodeIDClaimWaitNotReady(t *testing.T) {
	rs := redistest.Start(t)
	raw := rawRedis(t, rs)
	if err := raw.Do(t.Context(), raw.B().Set().Key(claimKey).Value("another-process").Px(time.Minute).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	a := testApp("1")
	cfg := config.Config{Apps: []apps.App{a}}
	cfg.Redis = config.Redis{URL: rs.URL(), NodeID: "node-a", NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
	ts := startServer(t, cfg)
	waitForWithin(t, 5*time.Second, func() bool {
		code, body := probe(t, ts, "/readyz")
		return code == 503 && strings.Contains(body, "claim of this node id")
	})
	if err := raw.Do(t.Context(), raw.B().Del().Key(claimKey).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	waitForWithin(t, 5*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
}

// A node whose id's claim stays held by another process gives up after
// the node TTL and a refresh: Serve returns ErrNodeIDInUse.
func TestNodeIDInUseAtStart(t *testing.T) {
	rs := redistest.Start(t)
	raw := rawRedis(t, rs)
	if err := raw.Do(t.Context(), raw.B().Set().Key(claimKey).Value("another-process").Px(time.Minute).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	a := testApp("1")
	var logs syncBuffer
	cfg := config.Config{Apps: []apps.App{a}}
	cfg.Redis = config.Redis{URL: rs.URL(), NodeID: "node-a", NodeTTL: time.Second, RefreshInterval: 250 * time.Millisecond}
	ts := startServerLog(t, cfg, options{}, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	err := serveResult(t, ts, 10*time.Second)
	if !errors.Is(err, redisbroker.ErrNodeIDInUse) || !strings.Contains(err.Error(), `"node-a"`) {
		t.Fatalf("Serve returned %v, want ErrNodeIDInUse naming node-a", err)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "node_id=node-a") {
		t.Fatalf("no error logged naming the node id:\n%s", l)
	}
}
