package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
	"github.com/heraldhq/herald/internal/hub"
)

// newFaultyFixture is newFixture with the hub's broker wrapped in a Faulty.
func newFaultyFixture(t *testing.T) (*fixture, *brokertest.Faulty) {
	f := newFixture(t)
	faulty := brokertest.NewFaulty(broker.NewMemory(0))
	f.hub = hub.New(hub.Config{Broker: faulty})
	f.api = New(Config{Apps: f.api.cfg.Apps, Hub: f.hub, Now: f.api.cfg.Now})
	return f, faulty
}

// A publish the broker could not take is answered 503, never 200: the
// backend learns that nobody got the event and may retry. So is a
// terminate_connections.
func TestBrokerFailureIs503(t *testing.T) {
	f, faulty := newFaultyFixture(t)
	s := f.subscribe("news", "1.1")
	down := errors.New("dial tcp 10.0.0.9:6379: connect: connection refused")
	faulty.FailOp("publish", down)

	for _, tc := range []struct{ name, path, body, want string }{
		{"events", "/apps/42/events", `{"name":"e","data":"d","channel":"news"}`, `\"e\" to \"news\" (nothing was published)`},
		{"events on two channels", "/apps/42/events", `{"name":"e","data":"d","channels":["news","other"]}`, `(nothing was published)`},
		{"batch", "/apps/42/batch_events", `{"batch":[{"name":"a","data":"d","channel":"news"},{"name":"b","data":"d","channel":"news"}]}`, `\"a\" to \"news\"`},
		{"terminate", "/apps/42/users/u1/terminate_connections", `{}`, "terminating"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do("POST", tc.path, nil, tc.body)
			if status != 503 {
				t.Fatalf("status %d (%s), want 503", status, body)
			}
			if !strings.Contains(body, "broker is unreachable") || !strings.Contains(body, tc.want) {
				t.Fatalf("body %s does not explain the failure (want %s)", body, tc.want)
			}
			if strings.Contains(body, "10.0.0.9") {
				t.Fatalf("body %s shows the broker's address", body)
			}
		})
	}
	if got := s.Messages(); len(got) != 0 {
		t.Fatalf("delivered %+v while the broker failed", got)
	}

	// Retry-After tells the backend when to come back.
	q := auth.SignRequest(f.app.Key, f.app.Secret, "POST", "/apps/42/events", nil, []byte(`{"name":"e","data":"d","channel":"news"}`), f.now)
	req := httptest.NewRequest("POST", "/apps/42/events?"+q.Encode(), strings.NewReader(`{"name":"e","data":"d","channel":"news"}`))
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}

	// Refusals stay what they were: a bad request is still a 400.
	f.expect("POST", "/apps/42/events", nil, `{"name":"e","channel":"news"}`, 400, "")

	// Back up: published and delivered.
	faulty.FailOp("publish", nil)
	f.expect("POST", "/apps/42/events", nil, `{"name":"e","data":"d","channel":"news"}`, 200, `{}`)
	if got := s.Messages(); len(got) != 1 {
		t.Fatalf("after recovery delivered %+v", got)
	}
}

// A batch that fails half way says how much of it went out.
func TestBatchPartlyPublished(t *testing.T) {
	f := newFixture(t)
	f.hub = hub.New(hub.Config{Broker: &failAfter{Broker: broker.NewMemory(0), ok: 1}})
	f.api = New(Config{Apps: f.api.cfg.Apps, Hub: f.hub, Now: f.api.cfg.Now})
	s := f.subscribe("news", "1.1")
	status, body := f.do("POST", "/apps/42/batch_events", nil, `{"batch":[{"name":"a","data":"d","channel":"news"},{"name":"b","data":"d","channel":"news"}]}`)
	if status != 503 || !strings.Contains(body, `\"b\" to \"news\" (1 earlier message(s) of this request were published)`) {
		t.Fatalf("status %d body %s", status, body)
	}
	if got := s.Messages(); len(got) != 1 || got[0].Event != "a" {
		t.Fatalf("delivered %+v", got)
	}
}

// failAfter is a broker whose Publish fails after ok successes.
type failAfter struct {
	broker.Broker
	ok int
}

func (b *failAfter) Publish(ctx context.Context, m broker.Message) error {
	if b.ok == 0 {
		return errors.New("connection reset")
	}
	b.ok--
	return b.Broker.Publish(ctx, m)
}

// A channel query the broker failed is a 503 too; a refusal stays one.
func TestBrokerFailureOnQueryIs503(t *testing.T) {
	f, faulty := newFaultyFixture(t)
	faulty.FailOp("members", errors.New("i/o timeout"))
	status, body := f.do("GET", "/apps/42/channels/presence-room/users", nil, "")
	if status != 503 || !strings.Contains(body, `listing the members of \"presence-room\"`) {
		t.Fatalf("users: %d %s", status, body)
	}
	f.expect("GET", "/apps/42/channels/news/users", nil, "", 400, "")
	faulty.Disconnect()
	for _, p := range []string{"/apps/42/channels", "/apps/42/channels/news"} {
		if status, body := f.do("GET", p, nil, ""); status != 503 || !strings.Contains(body, "broker is unreachable") {
			t.Fatalf("GET %s while disconnected: %d %s", p, status, body)
		}
	}
	f.expect("GET", "/apps/42/channels", url.Values{"info": {"user_count"}}, "", 400, "")
	faulty.Reconnect()
	f.expect("GET", "/apps/42/channels/news", nil, "", 200, `{"occupied":false}`)
}

// batchFailAfter is failAfter taking batches, as the Redis broker does:
// it records each batch's messages.
type batchFailAfter struct {
	failAfter
	batches [][]string // channel:event of each message
}

func (b *batchFailAfter) PublishBatch(ctx context.Context, ms []broker.Message) (int, error) {
	var got []string
	for _, m := range ms {
		got = append(got, m.Channel+":"+m.Event)
	}
	b.batches = append(b.batches, got)
	return broker.PublishEach(ctx, &b.failAfter, ms)
}

// Through a broker that takes batches, a request's messages go in one, in
// order; one that fails part way says how many went out before.
func TestPublishOneBatchPerRequest(t *testing.T) {
	f := newFixture(t)
	br := &batchFailAfter{failAfter: failAfter{Broker: broker.NewMemory(0), ok: 1 << 30}}
	f.hub = hub.New(hub.Config{Broker: br})
	f.api = New(Config{Apps: f.api.cfg.Apps, Hub: f.hub, Now: f.api.cfg.Now})
	s := f.subscribe("c2", "1.1")
	f.expect("POST", "/apps/42/events", nil, `{"name":"e","data":"d","channels":["c1","c2","c3"]}`, 200, `{}`)
	f.expect("POST", "/apps/42/batch_events", nil, `{"batch":[{"name":"a","data":"d","channel":"c2"},{"name":"b","data":"d","channel":"c1"},{"name":"c","data":"d","channel":"c2"}]}`, 200, `{}`)
	f.expect("POST", "/apps/42/events", nil, `{"name":"one","data":"d","channel":"c2"}`, 200, `{}`)
	want := "[[c1:e c2:e c3:e] [c2:a c1:b c2:c]]" // a single message needs no batch
	if got := fmt.Sprint(br.batches); got != want {
		t.Fatalf("batches %s, want %s", got, want)
	}
	var events []string
	for _, m := range s.Messages() {
		events = append(events, m.Event)
	}
	if strings.Join(events, " ") != "e a c one" {
		t.Fatalf("c2 received %v", events)
	}

	br.ok = 2
	status, body := f.do("POST", "/apps/42/events", nil, `{"name":"e","data":"d","channels":["c1","c2","c3"]}`)
	if status != 503 || !strings.Contains(body, `\"e\" to \"c3\" (2 earlier message(s) of this request were published)`) {
		t.Fatalf("status %d body %s", status, body)
	}
}

// countsFail is a broker that publishes but cannot read counts.
type countsFail struct{ broker.Broker }

func (countsFail) SubscriptionCount(context.Context, string, string) (int, error) {
	return 0, errors.New("i/o timeout")
}

func (countsFail) MemberCount(context.Context, string, string) (int, error) {
	return 0, errors.New("i/o timeout")
}

// A trigger whose event went out but whose info could not be read after
// is answered 200, with the counts it could not read left out: a failure
// status would have the backend publish the event again.
func TestTriggerInfoFailureAfterPublish(t *testing.T) {
	f := newFixture(t)
	f.hub = hub.New(hub.Config{Broker: countsFail{broker.NewMemory(0)}})
	f.api = New(Config{Apps: f.api.cfg.Apps, Hub: f.hub, Now: f.api.cfg.Now})
	s := f.subscribe("news", "1.1")
	f.expect("POST", "/apps/42/events", nil, `{"name":"e","data":"d","channels":["news","other"],"info":"subscription_count"}`, 200, `{"channels":{}}`)
	f.expect("POST", "/apps/42/batch_events", nil, `{"batch":[{"name":"a","data":"d","channel":"news","info":"subscription_count"},{"name":"b","data":"d","channel":"news"}]}`, 200, `{"batch":[{},{}]}`)
	var events []string
	for _, m := range s.Messages() {
		events = append(events, m.Event)
	}
	if strings.Join(events, " ") != "e a b" {
		t.Fatalf("news received %v, want e a b", events)
	}
	// A query that publishes nothing still says it failed.
	if status, body := f.do("GET", "/apps/42/channels/news", url.Values{"info": {"subscription_count"}}, ""); status != 503 {
		t.Fatalf("channel query: %d %s, want 503", status, body)
	}
}
