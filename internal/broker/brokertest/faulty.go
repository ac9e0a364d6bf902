package brokertest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

// Faulty wraps a broker and injects latency and errors into its
// operations, to show what a slow or failing backend does to the rest of
// the node. The zero fault settings pass every call straight through;
// settings may change while the broker is in use.
type Faulty struct {
	broker.Broker

	mu      sync.Mutex
	latency time.Duration
	opErrs  map[string]error

	// down is set between Disconnect and Reconnect.
	down atomic.Bool
}

var _ broker.Broker = (*Faulty)(nil)

// NewFaulty wraps b.
func NewFaulty(b broker.Broker) *Faulty {
	return &Faulty{Broker: b, opErrs: map[string]error{}}
}

// SetLatency makes every later operation wait d first (or until its
// context ends).
func (f *Faulty) SetLatency(d time.Duration) {
	f.mu.Lock()
	f.latency = d
	f.mu.Unlock()
}

// FailOp makes every later call of op ("publish", "last_event", "join",
// "leave", "members", "ping") fail with err, after any latency; nil makes
// it succeed again.
func (f *Faulty) FailOp(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opErrs[op] = err
}

func (f *Faulty) fault(ctx context.Context, op string) error {
	f.mu.Lock()
	d, err := f.latency, f.opErrs[op]
	f.mu.Unlock()
	if f.down.Load() {
		return ErrDisconnected
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return err
}

// Publish implements broker.Broker.
func (f *Faulty) Publish(ctx context.Context, m broker.Message) error {
	if err := f.fault(ctx, "publish"); err != nil {
		return err
	}
	return f.Broker.Publish(ctx, m)
}

// LastEvent implements broker.Broker.
func (f *Faulty) LastEvent(ctx context.Context, appID, channel string) (broker.Cached, bool, error) {
	if err := f.fault(ctx, "last_event"); err != nil {
		return broker.Cached{}, false, err
	}
	return f.Broker.LastEvent(ctx, appID, channel)
}

// Join implements broker.PresenceManager.
func (f *Faulty) Join(ctx context.Context, appID, channel, connID string, m broker.Member, maxMembers int) (bool, error) {
	if err := f.fault(ctx, "join"); err != nil {
		return false, err
	}
	return f.Broker.Join(ctx, appID, channel, connID, m, maxMembers)
}

// Leave implements broker.PresenceManager.
func (f *Faulty) Leave(ctx context.Context, appID, channel, connID, userID string) (bool, error) {
	if err := f.fault(ctx, "leave"); err != nil {
		return false, err
	}
	return f.Broker.Leave(ctx, appID, channel, connID, userID)
}

// Members implements broker.PresenceManager.
func (f *Faulty) Members(ctx context.Context, appID, channel string) ([]broker.Member, error) {
	if err := f.fault(ctx, "members"); err != nil {
		return nil, err
	}
	return f.Broker.Members(ctx, appID, channel)
}

// Ping implements broker.Broker.
func (f *Faulty) Ping(ctx context.Context) error {
	if err := f.fault(ctx, "ping"); err != nil {
		return err
	}
	return f.Broker.Ping(ctx)
}
