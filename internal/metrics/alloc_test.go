package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/metrics"
)

// TestObserveAllocs holds Observe, ObserveREST and the broker wrapper to
// no allocation once an app's series exist: they run on the publish path.
func TestObserveAllocs(t *testing.T) {
	m := metrics.New(metrics.Options{})
	events := []hub.Event{
		{Type: hub.EventConnectionOpened, AppID: "a"},
		{Type: hub.EventConnectionClosed, AppID: "a", Reason: hub.ReasonSlowConsumer},
		{Type: hub.EventConnectionRefused, Reason: hub.ReasonOverCapacity},
		{Type: hub.EventChannelOccupied, AppID: "a"},
		{Type: hub.EventChannelVacated, AppID: "a"},
		{Type: hub.EventSubscriptionCount, AppID: "a", Count: 1, Delta: 1},
		{Type: hub.EventSubscriptionRefused, AppID: "a", Refusal: hub.RefusedAuth},
		{Type: hub.EventPublished, AppID: "a", Source: hub.SourceREST},
		{Type: hub.EventDelivered, AppID: "a", Count: 100},
		{Type: hub.EventClientEvent, AppID: "a", Channel: "private-x", Name: "client-x"},
	}
	m.Observe(events[0]) // the app's series are made once
	for _, e := range events {
		if n := testing.AllocsPerRun(100, func() { m.Observe(e) }); n != 0 {
			t.Errorf("Observe(type %d): %v allocations", e.Type, n)
		}
	}

	m.ObserveREST("a", "events", 200, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() { m.ObserveREST("a", "events", 200, time.Millisecond) }); n != 0 {
		t.Errorf("ObserveREST: %v allocations", n)
	}

	b := m.InstrumentBroker(nop{})
	ctx := context.Background()
	msg := broker.Message{AppID: "a", Channel: "c"}
	if n := testing.AllocsPerRun(100, func() { b.Publish(ctx, msg) }); n != 0 {
		t.Errorf("instrumented Publish: %v allocations", n)
	}
}

// nop is a broker whose Publish does nothing, so that only the wrapper is
// measured; nothing else of it is called.
type nop struct{ broker.Broker }

func (nop) Publish(context.Context, broker.Message) error { return nil }

// BenchmarkObserveDelivered is the cost Metrics adds to each publication's
// fan-out.
//
//	go test -run '^$' -bench Observe -benchmem ./internal/metrics/
func BenchmarkObserveDelivered(b *testing.B) {
	m := metrics.New(metrics.Options{})
	e := hub.Event{Type: hub.EventDelivered, AppID: "app-1", Channel: "news", Count: 100}
	m.Observe(e)
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(e)
	}
}

// BenchmarkObserveDeliveredParallel is the same from every core at once,
// apps spread over eight: the per-app lookup takes no lock.
func BenchmarkObserveDeliveredParallel(b *testing.B) {
	m := metrics.New(metrics.Options{})
	var events [8]hub.Event
	for i := range events {
		events[i] = hub.Event{Type: hub.EventDelivered, AppID: string(rune('a' + i)), Count: 100}
		m.Observe(events[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Observe(events[i&7])
			i++
		}
	})
}

func BenchmarkObservePublished(b *testing.B) {
	m := metrics.New(metrics.Options{})
	e := hub.Event{Type: hub.EventPublished, AppID: "app-1", Channel: "news", Source: hub.SourceREST}
	m.Observe(e)
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(e)
	}
}

func BenchmarkObserveREST(b *testing.B) {
	m := metrics.New(metrics.Options{})
	m.ObserveREST("app-1", "events", 200, time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveREST("app-1", "events", 200, time.Millisecond)
	}
}

func BenchmarkInstrumentedPublish(b *testing.B) {
	m := metrics.New(metrics.Options{})
	br := m.InstrumentBroker(nop{})
	ctx := context.Background()
	msg := broker.Message{AppID: "a", Channel: "c"}
	b.ReportAllocs()
	for b.Loop() {
		br.Publish(ctx, msg)
	}
}
