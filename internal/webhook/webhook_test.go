package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/webhook"
)

// request is one POST as the receiver got it.
type request struct {
	header http.Header
	body   []byte
}

type body struct {
	TimeMS int64            `json:"time_ms"`
	Events []map[string]any `json:"events"`
}

func (r request) decode(t *testing.T) body {
	t.Helper()
	var b body
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return b
}

// receiver is an http.RoundTripper: every request goes to reqs, answered
// with the status answer returns (or its error).
type receiver struct {
	reqs   chan request
	mu     sync.Mutex
	answer func(n int) (int, error)
	n      int
}

func newReceiver() *receiver {
	return &receiver{reqs: make(chan request, 100), answer: func(int) (int, error) { return 200, nil }}
}

func (r *receiver) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.n++
	n := r.n
	answer := r.answer
	r.mu.Unlock()
	r.reqs <- request{header: req.Header.Clone(), body: b}
	code, err := answer(n)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: req}, nil
}

func (r *receiver) next(t *testing.T) request {
	t.Helper()
	select {
	case req := <-r.reqs:
		return req
	case <-time.After(5 * time.Second):
		t.Fatal("no webhook request")
		return request{}
	}
}

func (r *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case req := <-r.reqs:
		t.Fatalf("unexpected webhook request %s", req.body)
	default:
	}
}

// counts is a webhook.Recorder.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) add(k string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k] += n
}
func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}
func (c *counts) Dropped(app, reason string, n int) { c.add("dropped/"+reason, n) }
func (c *counts) Request(app, result string)        { c.add("request/"+result, 1) }
func (c *counts) Retry(app string)                  { c.add("retry", 1) }
func (c *counts) Sent(app string, n int)            { c.add("sent", n) }

type sub struct{ id string }

func (s *sub) SocketID() string           { return s.id }
func (s *sub) Deliver(p *hub.Publication) {}

// node is a hub on a memory broker with a dispatcher observing it.
type node struct {
	hub   *hub.Hub
	d     *webhook.Dispatcher
	clock *manualClock
	recv  *receiver
	rec   *counts
	app   *apps.App
}

const window = 50 * time.Millisecond

func newNode(t *testing.T, mod func(*webhook.Config), hooks ...apps.Webhook) *node {
	t.Helper()
	if len(hooks) == 0 {
		hooks = []apps.Webhook{{URL: "http://receiver.test/hook", Headers: map[string]string{"X-Extra": "1"}}}
	}
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "key", Secret: "secret", Webhooks: hooks}})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{clock: newClock(), recv: newReceiver(), rec: &counts{}, app: reg.ByID("1")}
	cfg := webhook.Config{
		Apps:        reg.All(),
		Settle:      func(ctx context.Context, e hub.Event) (bool, error) { return n.hub.Settle(ctx, e) },
		BatchWindow: window,
		Client:      &http.Client{Transport: n.recv},
		Clock:       n.clock,
		Rand:        func() float64 { return 0.5 },
		Recorder:    n.rec,
		Log:         quietLog(),
	}
	if mod != nil {
		mod(&cfg)
	}
	n.d = webhook.New(cfg)
	n.hub = hub.New(hub.Config{Broker: broker.NewMemory(0), Observers: []hub.Observer{n.d}, TransitionsFor: n.d.Wants})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n.d.Close(ctx)
	})
	return n
}

// flush lets the batching window pass and returns the request it made.
// An event queued while the previous request was still on its way goes
// without a window: then the request comes by itself.
func (n *node) flush(t *testing.T) body {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		select {
		case req := <-n.recv.reqs:
			return req.decode(t)
		default:
		}
		if n.clock.hasTimer(window) {
			n.clock.Advance(window)
			return n.recv.next(t).decode(t)
		}
		if time.Now().After(deadline) {
			t.Fatal("no batching window and no request")
		}
		time.Sleep(time.Millisecond)
	}
}

func names(b body) []string {
	var out []string
	for _, e := range b.Events {
		s := fmt.Sprint(e["name"], " ", e["channel"])
		if u, ok := e["user_id"]; ok {
			s += " " + fmt.Sprint(u)
		}
		out = append(out, s)
	}
	return out
}

func wantNames(t *testing.T, b body, want ...string) {
	t.Helper()
	if got := names(b); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", got, want)
	}
}

var occupancyOnly = apps.Webhook{URL: "http://receiver.test/hook", EventTypes: []string{"channel_occupied", "channel_vacated"}}

// TestVacatedWaitsForTheDelay: channel_occupied leaves at once,
// channel_vacated only after the delay, and a re-occupation within it
// cancels both (a page reload sends nothing).
func TestVacatedWaitsForTheDelay(t *testing.T) {
	n := newNode(t, nil, occupancyOnly)
	s := &sub{"1.1"}
	n.hub.Subscribe("1", "ch", s)
	wantNames(t, n.flush(t), "channel_occupied ch")

	// A reload: gone and back within the delay.
	n.hub.Unsubscribe("1", "ch", s)
	n.clock.waitTimer(t, webhook.DefaultDelay)
	n.clock.Advance(time.Second)
	n.hub.Subscribe("1", "ch", s)
	n.clock.Advance(webhook.DefaultDelay)
	n.recv.none(t)

	// Gone for good: vacated after exactly the delay, not before.
	n.hub.Unsubscribe("1", "ch", s)
	n.clock.waitTimer(t, webhook.DefaultDelay)
	n.clock.Advance(webhook.DefaultDelay - time.Millisecond)
	n.recv.none(t)
	n.clock.Advance(time.Millisecond)
	// The cancelled vacancy, settled first, would have come first.
	wantNames(t, n.flush(t), "channel_vacated ch")
}

// TestMemberRemovedWaitsForTheDelay: member_added once per user however
// many connections, member_removed after the user's last connection left
// and the delay passed, and a re-join within the delay cancels the pair.
func TestMemberRemovedWaitsForTheDelay(t *testing.T) {
	n := newNode(t, nil, apps.Webhook{URL: "http://receiver.test/hook", EventTypes: []string{"member_added", "member_removed"}})
	ctx := context.Background()
	c1, c2 := admit(t, n.hub), admit(t, n.hub)
	m := broker.Member{UserID: "u1"}
	for _, c := range []*hub.Conn{c1, c2} {
		if _, _, err := n.hub.JoinPresence(ctx, c, "presence-x", m, 0); err != nil {
			t.Fatal(err)
		}
	}
	wantNames(t, n.flush(t), "member_added presence-x u1")

	n.hub.LeavePresence(ctx, c1, "presence-x", "u1")
	n.hub.LeavePresence(ctx, c2, "presence-x", "u1")
	n.clock.waitTimer(t, webhook.DefaultDelay)
	n.clock.Advance(2 * time.Second)
	n.hub.JoinPresence(ctx, c1, "presence-x", m, 0)
	n.clock.Advance(webhook.DefaultDelay)
	n.recv.none(t)

	n.hub.LeavePresence(ctx, c1, "presence-x", "u1")
	n.clock.waitTimer(t, webhook.DefaultDelay)
	n.clock.Advance(webhook.DefaultDelay)
	wantNames(t, n.flush(t), "member_removed presence-x u1")
}

func admit(t *testing.T, h *hub.Hub) *hub.Conn {
	t.Helper()
	c, err := h.Admit("1", 0, nopTransport{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBatchAndFormat: the events of one window go in one request, in
// order, in Pusher's format, signed, with exactly the headers Pusher's
// SDKs check.
func TestBatchAndFormat(t *testing.T) {
	n := newNode(t, nil)
	s := &sub{"1.1"}
	n.hub.Subscribe("1", "private-a", s)
	n.hub.Subscribe("1", "presence-b", s)
	n.hub.Subscribe("1", "private-a", &sub{"1.2"})
	ctx := context.Background()
	n.hub.Publish(ctx, broker.Message{AppID: "1", Channel: "private-a", Event: "client-obj", Data: `{"a":1}`, DataJSON: true, Exclude: "1.1"}, hub.SourceClient)
	n.hub.Publish(ctx, broker.Message{AppID: "1", Channel: "presence-b", Event: "client-str", Data: `"hi \"there\""`, DataJSON: true, Exclude: "1.1", UserID: "u9"}, hub.SourceClient)
	n.hub.CachedEvent(ctx, "1", "cache-c")
	n.clock.waitTimer(t, window)
	n.clock.Advance(window)
	req := n.recv.next(t)
	if got := req.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if got := req.header.Get("X-Pusher-Key"); got != "key" {
		t.Errorf("X-Pusher-Key %q", got)
	}
	if got, want := req.header.Get("X-Pusher-Signature"), auth.WebhookSignature("secret", req.body); got != want {
		t.Errorf("X-Pusher-Signature %q, want %q", got, want)
	}
	if got := req.header.Get("X-Extra"); got != "1" {
		t.Errorf("extra header %q", got)
	}
	b := req.decode(t)
	if b.TimeMS != n.clock.Now().UnixMilli() {
		t.Errorf("time_ms %d, want %d", b.TimeMS, n.clock.Now().UnixMilli())
	}
	// The two counts of private-a are one (the latest), where the first
	// was; presence channels have no subscription_count.
	want := `[{"channel":"private-a","name":"channel_occupied"},` +
		`{"channel":"private-a","name":"subscription_count","subscription_count":2},` +
		`{"channel":"presence-b","name":"channel_occupied"},` +
		`{"channel":"private-a","data":"{\"a\":1}","event":"client-obj","name":"client_event","socket_id":"1.1"},` +
		`{"channel":"presence-b","data":"hi \"there\"","event":"client-str","name":"client_event","socket_id":"1.1","user_id":"u9"},` +
		`{"channel":"cache-c","name":"cache_miss"}]`
	got, _ := json.Marshal(b.Events)
	if string(got) != want {
		t.Errorf("events\n%s\nwant\n%s", got, want)
	}
	if !strings.HasPrefix(string(req.body), `{"time_ms":`) {
		t.Errorf("body %s", req.body)
	}
}

// TestFilters: a target gets only the event types and channels it asks for.
func TestFilters(t *testing.T) {
	n := newNode(t, nil, apps.Webhook{URL: "http://receiver.test/hook", EventTypes: []string{"channel_occupied"}, ChannelPrefix: "private-", ChannelSuffix: "-x"})
	for _, ch := range []string{"private-a", "private-a-x", "public-x", "private-b-x"} {
		n.hub.Subscribe("1", ch, &sub{"1.1"})
	}
	wantNames(t, n.flush(t), "channel_occupied private-a-x", "channel_occupied private-b-x")
}

// TestRetrySchedule: a failed delivery is retried after FirstRetry,
// doubling, with jitter, with the same body and signature, until a 2xx;
// nothing is sent after it.
func TestRetrySchedule(t *testing.T) {
	n := newNode(t, nil, occupancyOnly)
	n.recv.answer = func(i int) (int, error) {
		if i <= 2 {
			return 500, nil
		}
		return 204, nil
	}
	n.hub.Subscribe("1", "ch", &sub{"1.1"})
	n.clock.waitTimer(t, window)
	n.clock.Advance(window)
	first := n.recv.next(t)
	for i, wait := range []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond} {
		if got := webhook.Backoff(i, func() float64 { return 0.5 }); got != wait {
			t.Fatalf("Backoff(%d) = %v, want %v", i, got, wait)
		}
		n.clock.waitTimer(t, wait)
		n.recv.none(t)
		n.clock.Advance(wait)
		again := n.recv.next(t)
		if string(again.body) != string(first.body) || again.header.Get("X-Pusher-Signature") != first.header.Get("X-Pusher-Signature") {
			t.Fatalf("retry %d differs:\n%s\n%s", i, again.body, first.body)
		}
	}
	eventually(t, func() bool { return n.rec.get("sent") == 1 })
	if n.rec.get("request/http_error") != 2 || n.rec.get("request/success") != 1 || n.rec.get("retry") != 2 {
		t.Errorf("counts %v", n.rec.m)
	}
	n.clock.Advance(time.Hour)
	n.recv.none(t)
}

// TestRetryLimit: a receiver that never accepts is given up on once the
// next attempt would be past the retry limit, and the events are counted
// as dropped.
func TestRetryLimit(t *testing.T) {
	n := newNode(t, func(c *webhook.Config) { c.RetryLimit = 10 * time.Second }, occupancyOnly)
	n.recv.answer = func(int) (int, error) { return 0, errors.New("connection refused") }
	n.hub.Subscribe("1", "ch", &sub{"1.1"})
	n.clock.waitTimer(t, window)
	n.clock.Advance(window)
	n.recv.next(t)
	// Waits of 0.75, 1.5 and 3 s: attempts at 0, 0.75, 2.25 and 5.25 s;
	// the next wait (6 s) would end past 10 s.
	for _, w := range []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second} {
		n.clock.waitTimer(t, w)
		n.clock.Advance(w)
		n.recv.next(t)
	}
	eventually(t, func() bool { return n.rec.get("dropped/retry_limit") == 1 })
	if got := n.rec.get("request/error"); got != 4 {
		t.Errorf("%d failed requests, want 4", got)
	}
	n.clock.Advance(time.Hour)
	n.recv.none(t)
}

func TestBackoffBounds(t *testing.T) {
	for i := range 20 {
		lo, hi := webhook.Backoff(i, func() float64 { return 0 }), webhook.Backoff(i, func() float64 { return 0.999999 })
		if lo <= 0 || hi > webhook.MaxRetryWait || lo > hi {
			t.Errorf("Backoff(%d) in [%v, %v]", i, lo, hi)
		}
	}
	if webhook.Backoff(30, func() float64 { return 0.5 }) != 45*time.Second {
		t.Error("the wait is not capped at MaxRetryWait")
	}
}

// TestQueueBound: events beyond the queue's bound are dropped and counted,
// not waited for.
func TestQueueBound(t *testing.T) {
	release := make(chan struct{})
	n := newNode(t, func(c *webhook.Config) { c.QueueSize = 3 }, occupancyOnly)
	n.recv.answer = func(int) (int, error) { <-release; return 200, nil }
	defer close(release)
	n.hub.Subscribe("1", "ch0", &sub{"1.1"})
	n.clock.waitTimer(t, window)
	n.clock.Advance(window)
	n.recv.next(t) // in flight, held by the receiver
	for i := 1; i <= 5; i++ {
		n.hub.Subscribe("1", fmt.Sprint("ch", i), &sub{"1.1"})
	}
	if got := n.rec.get("dropped/queue_full"); got != 2 {
		t.Errorf("dropped %d, want 2", got)
	}
}

// TestCloseSendsHeldAtOnceOnOneNode: a node that shuts down alone sends
// its held-back events without waiting for the delay, and what it queued
// without waiting for the window.
func TestCloseSendsHeldAtOnceOnOneNode(t *testing.T) {
	n := newNode(t, nil, occupancyOnly)
	s := &sub{"1.1"}
	n.hub.Subscribe("1", "ch", s)
	n.flush(t)
	n.hub.Unsubscribe("1", "ch", s)
	n.clock.waitTimer(t, webhook.DefaultDelay)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wantNames(t, n.recv.next(t).decode(t), "channel_vacated ch")
}

// TestCloseGivesUpAtTheDeadline: deliveries still failing when the grace
// period ends are dropped as "shutdown", and Close returns.
func TestCloseGivesUpAtTheDeadline(t *testing.T) {
	n := newNode(t, nil, occupancyOnly)
	n.recv.answer = func(int) (int, error) { return 503, nil }
	n.hub.Subscribe("1", "ch", &sub{"1.1"})
	n.flush(t)
	n.clock.waitTimer(t, 750*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := n.d.Close(ctx); err == nil {
		t.Fatal("Close returned nil with a delivery outstanding")
	}
	if got := n.rec.get("dropped/shutdown"); got != 1 {
		t.Errorf("dropped on shutdown %d, want 1", got)
	}
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOccupiedBeforeItsChannelsEvents: a channel_occupied decided after
// other events of its channel were queued (in a cluster, the count reaches
// the shared state after the first join) still goes first.
func TestOccupiedBeforeItsChannelsEvents(t *testing.T) {
	n := newNode(t, nil, apps.Webhook{URL: "http://receiver.test/hook", EventTypes: []string{"channel_occupied", "member_added", "cache_miss"}})
	for _, e := range []hub.Event{
		{Type: hub.EventCacheMiss, AppID: "1", Channel: "other"},
		{Type: hub.EventTransition, AppID: "1", Channel: "presence-a", Transition: broker.TransitionMemberAdded, UserID: "u1"},
		{Type: hub.EventCacheMiss, AppID: "1", Channel: "other2"},
		{Type: hub.EventTransition, AppID: "1", Channel: "presence-a", Transition: broker.TransitionMemberAdded, UserID: "u2"},
		{Type: hub.EventTransition, AppID: "1", Channel: "presence-a", Transition: broker.TransitionOccupied},
	} {
		n.d.Observe(e)
	}
	wantNames(t, n.flush(t), "cache_miss other", "channel_occupied presence-a", "member_added presence-a u1", "cache_miss other2", "member_added presence-a u2")
}

// TestSettleRetried: a claim the broker fails is tried again a moment
// later, and the event sent once it succeeds.
func TestSettleRetried(t *testing.T) {
	var n *node
	fails := 2
	n = newNode(t, func(c *webhook.Config) {
		c.Settle = func(ctx context.Context, e hub.Event) (bool, error) {
			if fails > 0 {
				fails--
				return false, errors.New("redis: connection refused")
			}
			return n.hub.Settle(ctx, e)
		}
	}, occupancyOnly)
	s := &sub{"1.1"}
	n.hub.Subscribe("1", "ch", s)
	n.flush(t)
	n.hub.Unsubscribe("1", "ch", s)
	n.clock.waitTimer(t, webhook.DefaultDelay)
	n.clock.Advance(webhook.DefaultDelay)
	for range 2 {
		n.clock.waitTimer(t, time.Second)
		n.clock.Advance(time.Second)
	}
	wantNames(t, n.flush(t), "channel_vacated ch")
	if got := n.rec.get("dropped/settle_failed"); got != 0 {
		t.Errorf("dropped %d", got)
	}
}

// TestCacheMissesDeduplicated: a cache channel's subscribers finding it
// empty, many clients at once or one client subscribing again and again,
// make one cache_miss while one is still queued: the backend is told the
// channel needs filling, not once per subscribe, and the misses do not
// crowd the other events out of the queue.
func TestCacheMissesDeduplicated(t *testing.T) {
	n := newNode(t, func(c *webhook.Config) { c.QueueSize = 10 })
	ctx := context.Background()
	for range 50 {
		n.hub.CachedEvent(ctx, "1", "cache-a")
		n.hub.CachedEvent(ctx, "1", "cache-b")
	}
	n.hub.Subscribe("1", "ch", &sub{"1.1"})
	wantNames(t, n.flush(t), "cache_miss cache-a", "cache_miss cache-b", "channel_occupied ch", "subscription_count ch")
	if got := n.rec.get("dropped/queue_full"); got != 0 {
		t.Errorf("dropped %d, want 0", got)
	}
	// Sent: the next miss is news again.
	n.hub.CachedEvent(ctx, "1", "cache-a")
	wantNames(t, n.flush(t), "cache_miss cache-a")
}
