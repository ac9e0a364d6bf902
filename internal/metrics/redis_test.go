package metrics_test

import (
	"strings"
	"sync/atomic"
	"testing"
)

func TestWatchRedis(t *testing.T) {
	m := newMetrics()
	if _, body := scrape(t, m); strings.Contains(body, "herald_redis_") {
		t.Fatal("a node without Redis has Redis series")
	}
	var up atomic.Bool
	var n atomic.Uint64
	if err := m.WatchRedis(func() (bool, uint64) { return up.Load(), n.Load() }); err != nil {
		t.Fatal(err)
	}
	fams, _ := scrape(t, m)
	expect{key("herald_redis_connected"): 0, key("herald_redis_reconnects_total"): 0}.check(t, fams)
	up.Store(true)
	n.Store(3)
	fams, _ = scrape(t, m)
	expect{key("herald_redis_connected"): 1, key("herald_redis_reconnects_total"): 3}.check(t, fams)
	if err := m.WatchRedis(func() (bool, uint64) { return false, 0 }); err == nil {
		t.Error("a second WatchRedis was accepted")
	}
}
