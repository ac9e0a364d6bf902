package pusher

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// churnInterest is a broker whose node receives a channel's messages only
// while its interest is in effect, as with a shared backend: a count going
// from 0 to more declares a new interest, in effect only after
// AwaitInterest, and a count going to 0 withdraws it. Messages published
// meanwhile are lost, as they would be for a node not subscribed. onCheck,
// when set, runs once while the first InterestReady answers, after the
// answer was computed: another loop acting at that moment.
type churnInterest struct {
	*broker.Memory
	mu      sync.Mutex
	counts  map[string]int
	ready   map[string]bool
	onCheck func()
}

func (b *churnInterest) SetLocalCount(appID, ch string, n int) {
	b.mu.Lock()
	old := b.counts[ch]
	b.counts[ch] = n
	switch {
	case old == 0 && n > 0:
		b.ready[ch] = false
	case n == 0:
		delete(b.ready, ch)
	}
	b.mu.Unlock()
	b.Memory.SetLocalCount(appID, ch, n)
}

func (b *churnInterest) InterestReady(appID, ch string) bool {
	b.mu.Lock()
	ready := b.ready[ch]
	f := b.onCheck
	b.onCheck = nil
	b.mu.Unlock()
	if f != nil {
		f()
	}
	return ready
}

func (b *churnInterest) AwaitInterest(ctx context.Context, appID, ch string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.ready[ch]; ok {
		b.ready[ch] = true
	}
	return nil
}

func (b *churnInterest) Publish(ctx context.Context, m broker.Message) error {
	b.mu.Lock()
	ready := b.ready[m.Channel]
	b.mu.Unlock()
	if !ready {
		return nil // published, but this node does not receive it
	}
	return b.Memory.Publish(ctx, m)
}

type quietSub struct{}

func (quietSub) SocketID() string         { return "0.0" }
func (quietSub) Deliver(*hub.Publication) {}

// A subscription confirmed at once because the channel's interest looked
// in effect must not be one whose interest was withdrawn and declared
// anew at that moment (the channel's last local subscriber leaving on
// another loop): the events published after its confirmation reach it.
func TestConfirmedAtOnceOnlyWithInterest(t *testing.T) {
	b := &churnInterest{Memory: broker.NewMemory(0), counts: map[string]int{}, ready: map[string]bool{}}
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "key", Secret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: b})
	n := &testNode{fe: New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler)}), hub: h, app: reg.ByID("1")}
	var other quietSub
	h.Subscribe("1", "news", other)
	if err := b.AwaitInterest(t.Context(), "1", "news"); err != nil {
		t.Fatal(err)
	}
	left := make(chan struct{})
	b.onCheck = func() {
		// The other subscriber leaves on its own loop; it may have to
		// wait for the hub's locks.
		go func() {
			h.Unsubscribe("1", "news", other)
			close(left)
		}()
		select {
		case <-left:
		case <-time.After(200 * time.Millisecond):
		}
	}
	c := n.connect(t)
	c.subscribe("news", "")
	<-left
	c.expect("pusher_internal:subscription_succeeded")
	if err := h.Publish(t.Context(), broker.Message{AppID: "1", Channel: "news", Event: "e", Data: "d"}, hub.SourceREST); err != nil {
		t.Fatal(err)
	}
	c.expect("e")
}
