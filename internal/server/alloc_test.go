package server

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// TestBroadcastAllocatesNothingPerSubscriber publishes over real sockets
// (epoll transport, clients draining in the same process without
// allocating) and checks that heap allocations per event do not grow with
// the number of subscribers: the frame is encoded once and queued by
// reference, and the flush reuses each connection's slices.
func TestBroadcastAllocatesNothingPerSubscriber(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	perEvent := func(subs int) float64 {
		a := testApp("1")
		ts := startServer(t, oneApp(a))
		for i := 0; i < subs; i++ {
			c, _ := connect(t, ts, a.Key)
			c.Subscribe("alloc", "", "")
			c.Expect("pusher_internal:subscription_succeeded")
			c.Conn.SetReadDeadline(time.Time{})
			go io.Copy(io.Discard, c.BR)
		}
		m := broker.Message{AppID: a.ID, Channel: "alloc", Event: "tick", Data: "0123456789012345678901234567890123456789"}
		publishAndSettle := func(n int) {
			for i := 0; i < n; i++ {
				ts.hub.Publish(context.Background(), m, hub.SourceREST)
			}
			// Let the pollers flush everything.
			time.Sleep(50 * time.Millisecond)
		}
		publishAndSettle(200) // warm up queues and slices
		const n = 500
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		publishAndSettle(n)
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / n
	}
	one := perEvent(1)
	many := perEvent(200)
	perSub := (many - one) / 199
	t.Logf("allocations per event: %.1f with 1 subscriber, %.1f with 200 (%.3f per extra subscriber)", one, many, perSub)
	if perSub > 0.05 {
		t.Fatalf("broadcast allocates %.3f times per subscriber per event; want none", perSub)
	}
}
