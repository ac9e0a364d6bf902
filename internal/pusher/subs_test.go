package pusher

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/heraldhq/herald/internal/channel"
)

// TestSubscriptionsMatchesMap drives the set with random adds and removes,
// across the size where it adds its index, and compares it with a map.
func TestSubscriptionsMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s subscriptions
	model := map[string]string{}
	for step := 0; step < 20000; step++ {
		name := fmt.Sprintf("ch-%d", r.IntN(40))
		if _, ok := model[name]; !ok && r.IntN(2) == 0 {
			user := fmt.Sprintf("u%d", step)
			s.add(subscription{ch: channel.Channel{Name: name}, grant: &subGrant{userID: user}})
			model[name] = user
		} else {
			got, ok := s.remove(name)
			want, wantOK := model[name]
			if ok != wantOK || (ok && (got.ch.Name != name || got.userID() != want)) {
				t.Fatalf("step %d: remove(%s) = %+v, %v; want user %q, %v", step, name, got, ok, want, wantOK)
			}
			delete(model, name)
		}
		if len(s.all()) != len(model) {
			t.Fatalf("step %d: %d subscriptions, want %d", step, len(s.all()), len(model))
		}
		probe := fmt.Sprintf("ch-%d", r.IntN(40))
		got, ok := s.get(probe)
		want, wantOK := model[probe]
		if ok != wantOK || (ok && got.userID() != want) {
			t.Fatalf("step %d: get(%s) = %+v, %v; want user %q, %v", step, probe, got, ok, want, wantOK)
		}
	}
}

// Every subscribed connection holds at least one subscription entry: a
// field added carelessly moves it to a larger size class.
func TestSubscriptionSize(t *testing.T) {
	if n := unsafe.Sizeof(subscription{}); n > 48 {
		t.Errorf("subscription is %d bytes, want at most 48", n)
	}
}
