package pusher

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
)

// presenceList decodes the member ids of a presence subscription_succeeded.
func presenceList(t *testing.T, m sent) []string {
	t.Helper()
	var inner string
	if err := json.Unmarshal(m.Data, &inner); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Presence struct {
			IDs []string `json:"ids"`
		} `json:"presence"`
	}
	if err := json.Unmarshal([]byte(inner), &d); err != nil {
		t.Fatal(err)
	}
	return d.Presence.IDs
}

// waitMembers waits until the broker's member list of ch has n entries.
func waitMembers(t *testing.T, b broker.Broker, ch string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if ms, err := b.Members(t.Context(), "1", ch); err == nil && len(ms) == n {
			return
		}
	}
	t.Fatalf("%s never had %d members", ch, n)
}

// A client that leaves a presence channel and joins it again before its
// first join was done (a page whose component mounts twice) hears its own
// first leave while the second join is held: it must not be told that it
// left, after a member list that has it in.
func TestRejoinDoesNotRemoveSelf(t *testing.T) {
	b := &gatedJoin{Memory: broker.NewMemory(0), release: make(chan struct{}, 3)}
	n := newTestNodeOn(t, apps.App{}, b)
	watcher, c := n.connect(t), n.connect(t)
	b.release <- struct{}{}
	watcher.subscribe("presence-room", `{"user_id":"w"}`)
	watcher.expect("pusher_internal:subscription_succeeded")

	c.subscribe("presence-room", `{"user_id":"u"}`)
	c.sendJSON(map[string]any{"event": "pusher:unsubscribe", "data": map[string]string{"channel": "presence-room"}})
	c.subscribe("presence-room", `{"user_id":"u"}`)
	b.release <- struct{}{}
	b.release <- struct{}{}
	got := c.expect("pusher_internal:subscription_succeeded")
	if ids := presenceList(t, got[0]); len(ids) != 2 {
		t.Fatalf("member list %v, want w and u", ids)
	}
	watcher.expect("pusher_internal:member_added", "pusher_internal:member_removed", "pusher_internal:member_added")
}

// A user's second connection joining while its first one leaves hears the
// first one's leave (the user's last connection then) while its own join
// is held: its member list, read after the join, has the user, and the
// stale removal must not take it out again.
func TestOtherConnectionsLeaveDoesNotRemoveSelf(t *testing.T) {
	b := &gatedJoin{Memory: broker.NewMemory(0), release: make(chan struct{}, 3)}
	n := newTestNodeOn(t, apps.App{}, b)
	first, second := n.connect(t), n.connect(t)
	b.release <- struct{}{}
	first.subscribe("presence-room", `{"user_id":"u"}`)
	first.expect("pusher_internal:subscription_succeeded")

	second.subscribe("presence-room", `{"user_id":"u"}`)
	first.sendJSON(map[string]any{"event": "pusher:unsubscribe", "data": map[string]string{"channel": "presence-room"}})
	waitMembers(t, b, "presence-room", 0)
	b.release <- struct{}{}
	got := second.expect("pusher_internal:subscription_succeeded")
	if ids := presenceList(t, got[0]); len(ids) != 1 || ids[0] != "u" {
		t.Fatalf("member list %v, want u", ids)
	}
}

// gatedAnnounce is a broker whose member_added announcements wait until
// the test releases them, like a publish slow to reach a shared broker.
type gatedAnnounce struct {
	*broker.Memory
	release chan struct{}
}

func (b *gatedAnnounce) Publish(ctx context.Context, m broker.Message) error {
	if m.Kind == broker.KindMemberAdded {
		<-b.release
	}
	return b.Memory.Publish(ctx, m)
}

// A user's second connection, confirmed while its first connection's join
// is still being announced, is not then told that its own user joined:
// its member list has the user already.
func TestOwnUserNotAnnouncedToSelf(t *testing.T) {
	b := &gatedAnnounce{Memory: broker.NewMemory(0), release: make(chan struct{})}
	n := newTestNodeOn(t, apps.App{}, b)
	first, second := n.connect(t), n.connect(t)
	first.subscribe("presence-room", `{"user_id":"u"}`)
	waitMembers(t, b, "presence-room", 1)
	second.subscribe("presence-room", `{"user_id":"u"}`)
	waitMembers(t, b, "presence-room", 1)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if len(second.c.Take()) > 0 {
			break // the confirmation, sent before first's announcement
		}
		if time.Now().After(deadline) {
			t.Fatal("second connection never confirmed")
		}
	}
	close(b.release)
	first.expect("pusher_internal:subscription_succeeded")
	second.expect()
}
