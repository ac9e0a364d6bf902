package broker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
)

func TestMemoryConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker { return broker.NewMemory(0) })
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func TestMemoryCacheTTL(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{"default", 0, broker.DefaultCacheTTL},
		{"negative means default", -time.Second, broker.DefaultCacheTTL},
		{"one minute", time.Minute, time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{now: t0}
			b := broker.NewMemory(tt.ttl)
			b.SetClock(c.Now)
			ctx := t.Context()
			m := broker.Message{AppID: "1", Channel: "cache-x", Event: "e", Data: "d", Cache: true}
			if err := b.Publish(ctx, m); err != nil {
				t.Fatal(err)
			}
			if got := cacheTTL(t, b, "1", "cache-x"); got != tt.want {
				t.Fatalf("CacheTTL right after publishing = %v, want %v", got, tt.want)
			}

			c.Set(t0.Add(tt.want - time.Second))
			if got := cacheTTL(t, b, "1", "cache-x"); got != time.Second {
				t.Errorf("CacheTTL a second before expiry = %v, want 1s", got)
			}
			if got, ok, err := b.LastEvent(ctx, "1", "cache-x"); err != nil || !ok || !got.Message.Equal(&m) {
				t.Fatalf("LastEvent a second before expiry = %+v, %v, %v", got, ok, err)
			}

			// At the expiry instant the event is gone, and both views agree.
			c.Set(t0.Add(tt.want))
			if got := cacheTTL(t, b, "1", "cache-x"); got != 0 {
				t.Errorf("CacheTTL at expiry = %v, want 0", got)
			}
			if got, ok, err := b.LastEvent(ctx, "1", "cache-x"); err != nil || ok {
				t.Fatalf("LastEvent at expiry = %+v, %v, %v; want none", got, ok, err)
			}
			if got := cacheTTL(t, b, "1", "cache-x"); got != 0 {
				t.Errorf("CacheTTL after LastEvent dropped the event = %v, want 0", got)
			}
		})
	}
}

// TestMemoryCacheTTLNeverNegative reads an expired entry that no LastEvent
// has dropped yet: the REST API reports this value as the cache's ttl.
func TestMemoryCacheTTLNeverNegative(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	c := &clock{now: t0}
	b := broker.NewMemory(time.Minute)
	b.SetClock(c.Now)
	if err := b.Publish(t.Context(), broker.Message{AppID: "1", Channel: "cache-x", Event: "e", Cache: true}); err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(time.Hour))
	if got := cacheTTL(t, b, "1", "cache-x"); got != 0 {
		t.Errorf("CacheTTL of an expired event = %v, want 0", got)
	}
	if got := cacheTTL(t, b, "1", "cache-none"); got != 0 {
		t.Errorf("CacheTTL of a channel without cache = %v, want 0", got)
	}
}

// TestMemoryCacheRefresh checks that a new cached event restarts the TTL.
func TestMemoryCacheRefresh(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	c := &clock{now: t0}
	b := broker.NewMemory(time.Minute)
	b.SetClock(c.Now)
	ctx := t.Context()
	publish := func(data string) broker.Message {
		m := broker.Message{AppID: "1", Channel: "cache-x", Event: "e", Data: data, Cache: true}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	publish("old")
	c.Set(t0.Add(50 * time.Second))
	fresh := publish("new")
	c.Set(t0.Add(100 * time.Second))
	if got, ok, _ := b.LastEvent(ctx, "1", "cache-x"); !ok || !got.Message.Equal(&fresh) {
		t.Fatalf("LastEvent 50s after the second event = %+v, %v; want it", got, ok)
	}
	if got := cacheTTL(t, b, "1", "cache-x"); got != 10*time.Second {
		t.Errorf("CacheTTL = %v, want 10s", got)
	}
	// Uncached events do not touch the cache or its TTL.
	if err := b.Publish(ctx, broker.Message{AppID: "1", Channel: "cache-x", Event: "e", Data: "uncached"}); err != nil {
		t.Fatal(err)
	}
	if got := cacheTTL(t, b, "1", "cache-x"); got != 10*time.Second {
		t.Errorf("CacheTTL after an uncached event = %v, want 10s", got)
	}
}

// cacheTTL is the time LastEvent says the channel's cached event has left,
// or 0 when it has none.
func cacheTTL(t *testing.T, b *broker.Memory, appID, channel string) time.Duration {
	t.Helper()
	c, ok, err := b.LastEvent(t.Context(), appID, channel)
	if err != nil {
		t.Fatalf("LastEvent: %v", err)
	}
	if !ok {
		return 0
	}
	return c.TTL
}

// fixedCounts is a LocalCounts with one channel of three subscribers.
type fixedCounts struct{}

func (fixedCounts) SubscriptionCount(app, ch string) int {
	if app == "app" && ch == "ch" {
		return 3
	}
	return 0
}
func (fixedCounts) Channels(app, prefix string) []broker.ChannelCount {
	return []broker.ChannelCount{{Name: "ch", Subscriptions: 3}}
}

// With the hub's counts to read, the memory broker answers from them and
// keeps a copy only for the apps whose transitions it reports.
func TestMemoryUsesLocalCounts(t *testing.T) {
	b := broker.NewMemory(0)
	var got []broker.Transition
	b.SetTransitionHandler(func(tr broker.Transition) { got = append(got, tr) }, func(app string) bool { return app == "hooked" })
	b.UseLocalCounts(fixedCounts{})
	b.SetLocalCount("app", "ch", 3)
	if n := b.CountsKept(); n != 0 {
		t.Errorf("%d counts kept for an app without transitions", n)
	}
	if n, err := b.SubscriptionCount(t.Context(), "app", "ch"); err != nil || n != 3 {
		t.Errorf("SubscriptionCount = %d, %v; want the hub's 3", n, err)
	}
	if cs, err := b.Channels(t.Context(), "app", ""); err != nil || len(cs) != 1 || cs[0].Subscriptions != 3 {
		t.Errorf("Channels = %+v, %v; want the hub's", cs, err)
	}
	b.SetLocalCount("hooked", "ch", 1)
	b.SetLocalCount("hooked", "ch", 2)
	if n := b.CountsKept(); n != 1 {
		t.Errorf("%d counts kept, want the one of the app with transitions", n)
	}
	if len(got) != 3 || got[0].Kind != broker.TransitionOccupied || got[2].Count != 2 {
		t.Errorf("transitions %+v", got)
	}
}
