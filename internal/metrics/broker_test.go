package metrics_test

import (
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
