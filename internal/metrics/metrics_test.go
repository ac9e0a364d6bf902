package metrics_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/metrics"
)

// Names a client chose. None of them may reach a label.
const (
	clientChannel = "private-secret-channel"
	clientSocket  = "123.456"
	clientUser    = "user-mallory"
	clientEvent   = "client-typing"
)

// feed runs a scripted sequence of hub events, REST requests, broker
// operations and observer drops into m; TestScrape knows its every count.
func feed(t *testing.T, m *metrics.Metrics) {
	ev := func(typ hub.EventType, app string, set ...func(*hub.Event)) {
		e := hub.Event{Type: typ, AppID: app, Channel: clientChannel, SocketID: clientSocket, UserID: clientUser, Name: clientEvent}
		for _, s := range set {
			s(&e)
		}
		m.Observe(e)
	}
	reason := func(r hub.CloseReason) func(*hub.Event) { return func(e *hub.Event) { e.Reason = r } }
	refusal := func(r hub.Refusal) func(*hub.Event) { return func(e *hub.Event) { e.Refusal = r } }
	source := func(s hub.Source) func(*hub.Event) { return func(e *hub.Event) { e.Source = s } }
	count := func(n, d int) func(*hub.Event) { return func(e *hub.Event) { e.Count, e.Delta = n, d } }

	// App a: three connections, two of which end.
	for range 3 {
		ev(hub.EventConnectionOpened, "a")
	}
	ev(hub.EventConnectionClosed, "a", reason(hub.ReasonSlowConsumer))
	ev(hub.EventConnectionClosed, "a", reason(hub.ReasonClientClosed))
	// App b: one connection.
	ev(hub.EventConnectionOpened, "b")
	// Refused at admission: no app id, even when the event has one.
	ev(hub.EventConnectionRefused, "", reason(hub.ReasonOverCapacity))
	ev(hub.EventConnectionRefused, "", reason(hub.ReasonOverCapacity))
	ev(hub.EventConnectionRefused, "a", reason(hub.ReasonOverQuota))

	// Channels and subscriptions of a.
	for range 3 {
		ev(hub.EventChannelOccupied, "a")
		ev(hub.EventSubscriptionCount, "a", count(1, +1))
	}
	ev(hub.EventSubscriptionCount, "a", count(2, +1))
	ev(hub.EventSubscriptionCount, "a", count(1, -1))
	ev(hub.EventSubscriptionCount, "a", count(0, -1))
	ev(hub.EventChannelVacated, "a")
	ev(hub.EventSubscriptionRefused, "a", refusal(hub.RefusedAuth))
	ev(hub.EventSubscriptionRefused, "a", refusal(hub.RefusedAuth))
	ev(hub.EventSubscriptionRefused, "a", refusal(hub.RefusedLimit))

	// Publications of a.
	for range 4 {
		ev(hub.EventPublished, "a", source(hub.SourceREST))
	}
	ev(hub.EventPublished, "a", source(hub.SourceClient))
	ev(hub.EventDelivered, "a", count(10, 0))
	ev(hub.EventDelivered, "a", count(5, 0))
	ev(hub.EventDelivered, "b", count(0, 0))

	// Events that count nothing create nothing, not even app c's series.
	ev(hub.EventMemberAdded, "c")
	ev(hub.EventMemberRemoved, "c")
	ev(hub.EventClientEvent, "c")
	ev(hub.EventCacheMiss, "c")

	// REST requests.
	m.ObserveREST("a", "events", 200, 2*time.Millisecond)
	m.ObserveREST("a", "events", 200, 2*time.Millisecond)
	m.ObserveREST("a", "batch_events", 400, time.Millisecond)
	m.ObserveREST("", "events", 404, 100*time.Microsecond)
	m.ObserveREST("a", "not-an-endpoint", 999, time.Millisecond)

	// Broker operations.
	b := m.InstrumentBroker(&failing{Broker: broker.NewMemory(0)})
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	b.Publish(ctx, broker.Message{AppID: "a", Channel: "ok"})
	b.Publish(ctx, broker.Message{AppID: "a", Channel: "ok"})
	b.Publish(ctx, broker.Message{AppID: "a", Channel: "fail"})
	b.LastEvent(ctx, "a", "ok")
	b.Join(ctx, "a", "full", "c1", broker.Member{UserID: "u"}, 1) // the limit is an answer
	b.Leave(canceled, "a", "ok", "c1", "u")                       // the caller gave up: not the broker's failure
	b.Leave(ctx, "a", "fail", "c1", "u")
	b.Members(ctx, "a", "fail")

	// Observer drops: a hub.Buffered that has been closed drops everything.
	buf := hub.NewBuffered("webhook", 1, hub.ObserverFunc(func(hub.Event) {}), nil)
	buf.Close(nil)
	for range 3 {
		buf.Observe(hub.Event{})
	}
	if err := m.ObserverDrops(buf.Name(), buf.Drops); err != nil {
		t.Fatal(err)
	}
	if err := m.ObserverDrops("console", func() uint64 { return 7 }); err != nil {
		t.Fatal(err)
	}
	if err := m.ObserverDrops("console", func() uint64 { return 0 }); err == nil {
		t.Error("a second observer named console was accepted")
	}
}

// failing is a broker whose operations on channel "fail" fail, and whose
// Join on channel "full" answers ErrMemberLimit.
type failing struct{ broker.Broker }

var errDown = errors.New("broker down")

func (f *failing) Publish(ctx context.Context, m broker.Message) error {
	if m.Channel == "fail" {
		return errDown
	}
	return f.Broker.Publish(ctx, m)
}

func (f *failing) Join(ctx context.Context, app, channel, conn string, m broker.Member, max int) (bool, error) {
	if channel == "full" {
		return false, broker.ErrMemberLimit
	}
	return f.Broker.Join(ctx, app, channel, conn, m, max)
}

func (f *failing) Leave(ctx context.Context, app, channel, conn, user string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if channel == "fail" {
		return false, errDown
	}
	return f.Broker.Leave(ctx, app, channel, conn, user)
}

func (f *failing) Members(ctx context.Context, app, channel string) ([]broker.Member, error) {
	if channel == "fail" {
		return nil, errDown
	}
	return f.Broker.Members(ctx, app, channel)
}

func newMetrics() *metrics.Metrics {
	return metrics.New(metrics.Options{Version: "1.2.3", Commit: "abc1234", BytesWritten: func() uint64 { return 12345 }})
}

func TestScrape(t *testing.T) {
	m := newMetrics()
	feed(t, m)
	fams, body := scrape(t, m)

	want := expect{
		key("herald_connections", "app_id", "a"):       1,
		key("herald_connections", "app_id", "b"):       1,
		key("herald_connections_total", "app_id", "a"): 3,
		key("herald_connections_total", "app_id", "b"): 1,
		key("herald_channels", "app_id", "a"):          2,
		key("herald_channels", "app_id", "b"):          0,
		key("herald_subscriptions", "app_id", "a"):     2,
		key("herald_subscriptions", "app_id", "b"):     0,

		key("herald_messages_published_total", "app_id", "a", "source", "rest"):   4,
		key("herald_messages_published_total", "app_id", "a", "source", "client"): 1,
		key("herald_messages_published_total", "app_id", "b", "source", "rest"):   0,
		key("herald_messages_published_total", "app_id", "b", "source", "client"): 0,
		key("herald_messages_delivered_total", "app_id", "a"):                     15,
		key("herald_messages_delivered_total", "app_id", "b"):                     0,
		key("herald_bytes_written_total"):                                         12345,

		key("herald_rest_requests_total", "app_id", "a", "endpoint", "events", "status", "200"):       2,
		key("herald_rest_requests_total", "app_id", "a", "endpoint", "batch_events", "status", "400"): 1,
		key("herald_rest_requests_total", "app_id", "", "endpoint", "events", "status", "404"):        1,
		key("herald_rest_requests_total", "app_id", "a", "endpoint", "other", "status", "0"):          1,

		key("herald_broker_errors_total", "op", "publish"):            1,
		key("herald_broker_errors_total", "op", "last_event"):         0,
		key("herald_broker_errors_total", "op", "join"):               0,
		key("herald_broker_errors_total", "op", "leave"):              1,
		key("herald_broker_errors_total", "op", "members"):            1,
		key("herald_broker_errors_total", "op", "member_count"):       0,
		key("herald_broker_errors_total", "op", "subscription_count"): 0,
		key("herald_broker_errors_total", "op", "channels"):           0,
		key("herald_broker_errors_total", "op", "online_users"):       0,
		key("herald_broker_errors_total", "op", "await_interest"):     0,
		key("herald_broker_errors_total", "op", "publish_batch"):      0,
		key("herald_broker_errors_total", "op", "settle"):             0,

		key("herald_observer_drops_total", "observer", "webhook"): 3,
		key("herald_observer_drops_total", "observer", "console"): 7,

		key("herald_build_info", "version", "1.2.3", "commit", "abc1234"): 1,
	}
	// Every close reason is there for each app, and at admission.
	for _, r := range hub.CloseReasons() {
		want[key("herald_disconnections_total", "app_id", "a", "reason", r.String())] = 0
		want[key("herald_disconnections_total", "app_id", "b", "reason", r.String())] = 0
		want[key("herald_connections_refused_total", "reason", r.String())] = 0
	}
	want[key("herald_disconnections_total", "app_id", "a", "reason", "slow_consumer")] = 1
	want[key("herald_disconnections_total", "app_id", "a", "reason", "client_closed")] = 1
	want[key("herald_connections_refused_total", "reason", "over_capacity")] = 2
	want[key("herald_connections_refused_total", "reason", "over_quota")] = 1
	// And every refusal.
	for _, r := range []string{"invalid", "auth", "limit", "unavailable"} {
		want[key("herald_subscriptions_refused_total", "app_id", "a", "reason", r)] = 0
		want[key("herald_subscriptions_refused_total", "app_id", "b", "reason", r)] = 0
	}
	want[key("herald_subscriptions_refused_total", "app_id", "a", "reason", "auth")] = 2
	want[key("herald_subscriptions_refused_total", "app_id", "a", "reason", "limit")] = 1
	want.check(t, fams)

	// Nothing but the above: no series for app c, none for an unknown
	// source or refusal, none for the REST id of an unknown app.
	counts := map[string]int{}
	for k := range want {
		name, _, _ := strings.Cut(k, "{")
		counts[name]++
	}
	for name, n := range counts {
		if got := series(fams, name); got != n {
			t.Errorf("%s has %d series, want %d", name, got, n)
		}
	}

	// Histograms: counts by label, sums to the microsecond.
	for _, h := range []struct {
		name, labels string
		count        uint64
		sum          float64 // < 0: not checked (measured times)
	}{
		{"herald_rest_request_duration_seconds", "endpoint=events", 3, 0.0041},
		{"herald_rest_request_duration_seconds", "endpoint=batch_events", 1, 0.001},
		{"herald_rest_request_duration_seconds", "endpoint=other", 1, 0.001},
		{"herald_rest_request_duration_seconds", "endpoint=channels", 0, 0},
		{"herald_rest_request_duration_seconds", "endpoint=channel", 0, 0},
		{"herald_rest_request_duration_seconds", "endpoint=users", 0, 0},
		{"herald_rest_request_duration_seconds", "endpoint=terminate", 0, 0},
		{"herald_broker_operation_seconds", "op=publish", 3, -1},
		{"herald_broker_operation_seconds", "op=last_event", 1, -1},
		{"herald_broker_operation_seconds", "op=join", 1, -1},
		{"herald_broker_operation_seconds", "op=leave", 2, -1},
		{"herald_broker_operation_seconds", "op=members", 1, -1},
	} {
		count, sum := histogram(t, fams, h.name, h.labels)
		if count != h.count || (h.sum >= 0 && math.Abs(sum-h.sum) > 1e-9) {
			t.Errorf("%s{%s}: count %d sum %v, want %d %v", h.name, h.labels, count, sum, h.count, h.sum)
		}
	}
	if n := series(fams, "herald_rest_request_duration_seconds"); n != 7 {
		t.Errorf("herald_rest_request_duration_seconds has %d series, want the 7 endpoints", n)
	}
	if n := series(fams, "herald_broker_operation_seconds"); n != 12 {
		t.Errorf("herald_broker_operation_seconds has %d series, want the 12 operations", n)
	}

	// The Go runtime and process collectors are registered.
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_info", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s", name)
		}
	}

	// No name a client chose appears anywhere, nor the unknown app's id.
	for _, s := range []string{clientChannel, clientSocket, clientUser, clientEvent, `app_id="c"`} {
		if strings.Contains(body, s) {
			t.Errorf("the scrape contains %q", s)
		}
	}
}

// allowedLabels are the label names Herald's metrics may carry: app ids
// and small closed sets, plus the collectors' own (version on go_info,
// quantile on summaries, le on histograms).
var allowedLabels = map[string]bool{
	"app_id": true, "reason": true, "source": true, "endpoint": true, "status": true,
	"op": true, "observer": true, "version": true, "commit": true, "quantile": true, "le": true,
}

// TestLabelNames walks every scraped family: a label outside the allowed
// set (a channel, user, socket or event name above all) fails.
func TestLabelNames(t *testing.T) {
	m := newMetrics()
	feed(t, m)
	fams, _ := scrape(t, m)
	forbidden := []string{"channel", "channel_name", "user", "user_id", "socket", "socket_id", "event", "name"}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "herald_") && !strings.HasPrefix(f.GetName(), "go_") && !strings.HasPrefix(f.GetName(), "process_") {
			t.Errorf("family %s is neither Herald's nor a collector's", f.GetName())
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				for _, bad := range forbidden {
					if l.GetName() == bad {
						t.Errorf("%s has the label %s", f.GetName(), bad)
					}
				}
				if !allowedLabels[l.GetName()] {
					t.Errorf("%s has the label %s, outside the allowed set", f.GetName(), l.GetName())
				}
			}
		}
	}
}

// TestHandlerNegotiates checks that the handler speaks protobuf to a
// scraper that asks for it, and compresses for one that accepts gzip.
func TestHandlerNegotiates(t *testing.T) {
	m := newMetrics()
	for _, tc := range []struct{ accept, encoding, wantType, wantEncoding string }{
		{"", "", "text/plain", ""},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "", "application/vnd.google.protobuf", ""},
		{"", "gzip", "text/plain", "gzip"},
	} {
		req := httptestRequest(tc.accept, tc.encoding)
		rec := serve(m, req)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) || rec.Header().Get("Content-Encoding") != tc.wantEncoding {
			t.Errorf("Accept %q, Accept-Encoding %q: Content-Type %q, Content-Encoding %q", tc.accept, tc.encoding, ct, rec.Header().Get("Content-Encoding"))
		}
	}
}
