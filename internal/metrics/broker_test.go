package metrics_test

import (
	"context"
	"testing"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
	"github.com/heraldhq/herald/internal/metrics"
)

// TestInstrumentedBrokerConformance runs the broker contract suite against
// the instrumented memory broker: the wrapper changes no answer.
func TestInstrumentedBrokerConformance(t *testing.T) {
	m := metrics.New(metrics.Options{})
	brokertest.Run(t, func(t *testing.T) broker.Broker { return m.InstrumentBroker(broker.NewMemory(0)) })

	fams, _ := scrape(t, m)
	for _, op := range []string{"publish", "last_event", "join", "leave", "members"} {
		if n, _ := histogram(t, fams, "herald_broker_operation_seconds", "op="+op); n == 0 {
			t.Errorf("the suite ran no %s, or it was not timed", op)
		}
		// The suite's member-limit case is an answer, not an error; its one
		// publish after Close is a failure.
		want := 0.0
		if op == "publish" {
			want = 1
		}
		if v := value(t, fams, "herald_broker_errors_total", "op="+op); v != want {
			t.Errorf("%v %s errors counted, want %v", v, op, want)
		}
	}
}

func TestInstrumentedBrokerUnwraps(t *testing.T) {
	mem := broker.NewMemory(0)
	b := metrics.New(metrics.Options{}).InstrumentBroker(mem)
	u, ok := b.(interface{ Unwrap() broker.Broker })
	if !ok || u.Unwrap() != broker.Broker(mem) {
		t.Fatalf("Unwrap of %T does not give the memory broker", b)
	}
}

// batchMemory is the memory broker taking batches.
type batchMemory struct{ *broker.Memory }

func (b batchMemory) PublishBatch(ctx context.Context, ms []broker.Message) (int, error) {
	return broker.PublishEach(ctx, b.Memory, ms)
}

// The instrumented broker takes batches exactly when the broker it times
// does, and times a batch once, as publish_batch.
func TestInstrumentedBrokerBatches(t *testing.T) {
	m := metrics.New(metrics.Options{})
	if _, ok := m.InstrumentBroker(broker.NewMemory(0)).(broker.BatchPublisher); ok {
		t.Fatal("the instrumented memory broker claims to take batches")
	}
	mem := broker.NewMemory(0)
	mem.SetHandler(func(broker.Message) {})
	b, ok := m.InstrumentBroker(batchMemory{mem}).(broker.BatchPublisher)
	if !ok {
		t.Fatal("the instrumented batch broker takes no batches")
	}
	if n, err := b.PublishBatch(context.Background(), make([]broker.Message, 3)); n != 3 || err != nil {
		t.Fatalf("PublishBatch = %d, %v", n, err)
	}
	fams, _ := scrape(t, m)
	if n, _ := histogram(t, fams, "herald_broker_operation_seconds", "op=publish_batch"); n != 1 {
		t.Errorf("%d batches timed, want 1", n)
	}
	if n, _ := histogram(t, fams, "herald_broker_operation_seconds", "op=publish"); n != 0 {
		t.Errorf("%d publishes timed, want none", n)
	}
}
