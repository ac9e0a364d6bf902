package pusher

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// lateLookup is a broker whose OnlineUsers calls after, once, when the answer
// was read: a user's transition right after the lookup read it.
type lateLookup struct {
	*broker.Memory
	after func()
}

func (b *lateLookup) OnlineUsers(ctx context.Context, appID string, ids []string) ([]string, error) {
	out, err := b.Memory.OnlineUsers(ctx, appID, ids)
	if f := b.after; f != nil {
		b.after = nil
		f()
	}
	return out, err
}

type quietUser struct{}

func (quietUser) CloseWith(hub.CloseReason)    {}
func (quietUser) WatchlistChange(string, bool) {}

// A watched user who goes offline while the watcher's list is looked up
// ends offline for the watcher: the list, read before the change, does
// not follow the change's notification and undo it.
func TestWatchlistListNotStalerThanChange(t *testing.T) {
	b := &lateLookup{Memory: broker.NewMemory(0)}
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "key", Secret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: b})
	n := &testNode{fe: New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler)}), hub: h, app: reg.ByID("1")}
	var bob quietUser
	h.SignIn("1", "bob", bob, hub.Budget{})
	b.after = func() { h.SignOut("1", "bob", bob) }
	c := n.connect(t)
	c.signin(`{"id":"w","watchlist":["bob"]}`)
	got := c.expect("pusher:signin_success", "pusher_internal:watchlist_events")
	if d := string(got[1].Data); !strings.Contains(d, `"offline"`) || strings.Contains(d, `"online"`) {
		t.Fatalf("watcher ends with %s, want bob offline", d)
	}
}
