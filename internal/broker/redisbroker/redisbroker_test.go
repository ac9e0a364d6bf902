package redisbroker_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
	"github.com/heraldhq/herald/internal/broker/redisbroker"
	"github.com/heraldhq/herald/internal/testkit/redistest"
)

const testCacheTTL = time.Minute

// fakeClock is the nodes' shared clock, stepped by the tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newBroker starts a broker on srv, closed at cleanup. The refresh is long
// so that only the tests drive heartbeats and sweeps once it is running.
func newBroker(t *testing.T, srv *redistest.Server, clock func() time.Time, mod ...func(*redisbroker.Options)) *redisbroker.Broker {
	t.Helper()
	o := redisbroker.Options{
		URL:      srv.URL(),
		NodeTTL:  time.Hour,
		Refresh:  30 * time.Minute,
		CacheTTL: testCacheTTL,
		Log:      quietLog(),
		Clock:    clock,
	}
	for _, f := range mod {
		f(&o)
	}
	b, err := redisbroker.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return newBroker(t, srv, nil)
	}, brokertest.Config{InterestOnly: true, CacheTTL: testCacheTTL})
}

func TestClusterConformance(t *testing.T) {
	srv := redistest.Start(t)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	brokertest.RunCluster(t, func(t *testing.T, n int) []broker.Broker {
		out := make([]broker.Broker, n)
		for i := range out {
			out[i] = newBroker(t, srv, clock.Now)
		}
		return out
	}, brokertest.Cluster{
		Config:         brokertest.Config{InterestOnly: true, CacheTTL: testCacheTTL},
		Crash:          func(b broker.Broker) { b.(*redisbroker.Broker).Crash() },
		Expire:         func() { clock.Advance(2 * time.Hour) },
		RestartBackend: func(t *testing.T) { srv.Restart(t) },
	})
}
