package centrifugo

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/testkit"
)

// gatedBroker holds presence joins and client publications until gate is
// closed, as a slow cluster broker would.
type gatedBroker struct {
	broker.Broker
	gate chan struct{}
}

func (b *gatedBroker) Join(ctx context.Context, appID, ch, conn string, m broker.Member, max int) (bool, error) {
	<-b.gate
	return b.Broker.Join(ctx, appID, ch, conn, m, max)
}

func (b *gatedBroker) Publish(ctx context.Context, m broker.Message) error {
	if m.Event == PublicationEvent {
		<-b.gate
	}
	return b.Broker.Publish(ctx, m)
}

func newGatedNode(t *testing.T, a apps.App) (*testNode, chan struct{}) {
	t.Helper()
	a.ID, a.Key, a.Secret = "1", "key", secret
	reg, err := apps.NewRegistry([]apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	h := hub.New(hub.Config{Broker: &gatedBroker{Broker: broker.NewMemory(0), gate: gate}, OpTimeout: 10 * time.Second})
	clock := testkit.NewClock(start)
	fe := New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler), Clock: clock})
	return &testNode{fe: fe, hub: h, app: reg.ByID(a.ID), clock: clock}, gate
}

// A publication made while a presence subscription waits for its join is
// held and arrives after the subscribe reply and the joiner's own join.
func TestSubscribeReplyBeforePublications(t *testing.T) {
	n, gate := newGatedNode(t, apps.App{})
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u1", "channel": "presence-room"})})
	publish(t, n, broker.Message{Channel: "presence-room", Event: "early", Data: "1"})
	if got := tc.c.Take(); len(got) != 0 {
		t.Fatalf("sent before the join completed: %q", got)
	}
	close(gate)
	tc.expect(`{"id":2,"subscribe":{}}`,
		`{"push":{"channel":"presence-room","join":{"info":{"client":"u1","conn_info":{"name":"u1"},"user":"u1"}}}}`,
		`{"push":{"channel":"presence-room","pub":{"data":1,"tags":{"event":"early"}}}}`)
}

// Work a connection queues off the loop is bounded: past hub.MaxPendingOps
// a command is answered 111 at once, and the rest are answered later.
func TestPendingOpsBound(t *testing.T) {
	n, gate := newGatedNode(t, apps.App{ClientPublish: true})
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "news"})
	tc.expect(`{"id":2,"subscribe":{}}`)
	const sent = hub.MaxPendingOps + 10
	for i := range sent {
		tc.cmd(uint32(10+i), "publish", map[string]any{"channel": "news", "data": i})
	}
	refused := 0
	for _, p := range tc.c.Take() {
		if !strings.Contains(string(p), `"code":111`) {
			t.Fatalf("answered before the broker did: %s", p)
		}
		refused++
	}
	if refused < 8 {
		t.Fatalf("%d refused of %d, want at least 8", refused, sent)
	}
	close(gate)
	var published int
	for _, r := range tc.texts() {
		if strings.Contains(r, `"publish":{}`) {
			published++
		}
	}
	if published != sent-refused {
		t.Fatalf("%d publish replies, want %d", published, sent-refused)
	}
}
