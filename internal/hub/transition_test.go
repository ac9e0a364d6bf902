package hub

import (
	"context"
	"sync"
	"testing"

	"github.com/heraldhq/herald/internal/broker"
)

// TestTransitionsOnlyWhenAsked: the broker's transitions become
// EventTransition, in order, only for a hub configured to want them, and
// Settle claims a pending one through the broker.
func TestTransitionsOnlyWhenAsked(t *testing.T) {
	for _, want := range []bool{false, true} {
		var mu sync.Mutex
		var got []Event
		obs := ObserverFunc(func(e Event) {
			if e.Type == EventTransition {
				mu.Lock()
				got = append(got, e)
				mu.Unlock()
			}
		})
		cfg := Config{Broker: broker.NewMemory(0), Observers: []Observer{obs}}
		if want {
			cfg.TransitionsFor = func(app string) bool { return app == "a" }
		}
		h := New(cfg)
		s := &nopSub{id: "1.1"}
		h.Subscribe("a", "ch", s)
		h.Unsubscribe("a", "ch", s)
		h.Subscribe("other-app", "ch", s) // not asked for
		h.Unsubscribe("other-app", "ch", s)
		if !want {
			if len(got) != 0 {
				t.Fatalf("transitions without Config.TransitionsFor: %+v", got)
			}
			continue
		}
		kinds := []broker.TransitionKind{broker.TransitionOccupied, broker.TransitionCount, broker.TransitionCount, broker.TransitionVacated}
		if len(got) != len(kinds) {
			t.Fatalf("got %+v", got)
		}
		for i, k := range kinds {
			if got[i].Transition != k || got[i].AppID != "a" || got[i].Channel != "ch" {
				t.Fatalf("event %d: %+v, want %v", i, got[i], k)
			}
		}
		if got[1].Count != 1 || got[2].Count != 0 || got[3].Epoch == 0 {
			t.Fatalf("counts or epoch: %+v", got)
		}
		for i, want := range []bool{true, false} {
			ok, err := h.Settle(context.Background(), got[3])
			if err != nil || ok != want {
				t.Fatalf("Settle #%d = %v, %v; want %v", i+1, ok, err, want)
			}
		}
	}
}
