package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

// eventLog is an Observer that keeps what it sees.
type eventLog struct {
	mu sync.Mutex
	ev []Event
}

func (l *eventLog) Observe(e Event) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) types() []EventType {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]EventType, len(l.ev))
	for i, e := range l.ev {
		out[i] = e.Type
	}
	return out
}

func TestEventsOfSubscriptionsAndPublications(t *testing.T) {
	log := &eventLog{}
	h := New(Config{Broker: broker.NewMemory(0), Observers: []Observer{log}})
	a, b := &recorder{id: "1.1"}, &recorder{id: "1.2"}
	h.Subscribe("app", "ch", a)
	h.Subscribe("app", "ch", b)
	h.Subscribe("app", "ch", b) // already there: no event
	h.Publish(context.Background(), broker.Message{AppID: "app", Channel: "ch", Event: "e", Exclude: "1.1"}, SourceREST)
	h.Publish(context.Background(), broker.Message{AppID: "app", Channel: "empty", Event: "e"}, SourceClient)
	h.Unsubscribe("app", "ch", a)
	h.Unsubscribe("app", "ch", b)
	want := []EventType{
		EventChannelOccupied, EventSubscriptionCount, EventSubscriptionCount,
		EventDelivered, EventPublished,
		EventPublished, EventClientEvent,
		EventSubscriptionCount, EventSubscriptionCount, EventChannelVacated,
	}
	if got := log.types(); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	ev := log.ev
	if ev[3].Count != 1 || ev[4].Source != SourceREST || ev[2].Count != 2 || ev[8].Count != 0 || ev[8].Delta != -1 {
		t.Fatalf("event details wrong: %+v", ev)
	}
	for _, e := range ev {
		if e.AppID != "app" {
			t.Fatalf("event without its app: %+v", e)
		}
	}
}

func TestAdmissionEventsAndReasons(t *testing.T) {
	log := &eventLog{}
	h := New(Config{Broker: broker.NewMemory(0), Observers: []Observer{log}})
	c, err := h.Admit("app", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Admit("app", 1, nil); AdmitReason(err) != ReasonOverQuota {
		t.Fatalf("second connection: %v", err)
	}
	cl := &closer{}
	if !c.Attach(cl) {
		t.Fatal("attach refused")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	go func() {
		for cl.reason() == 0 {
			time.Sleep(time.Millisecond)
		}
		c.Closed(CloseReason(cl.reason() - 1))
	}()
	if err := h.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if cl.reason()-1 != int(ReasonShutdown) {
		t.Fatalf("drain closed with %d", cl.reason()-1)
	}
	got := log.types()
	if !slices.Equal(got, []EventType{EventConnectionRefused, EventConnectionOpened, EventConnectionClosed}) {
		t.Fatalf("events %v", got)
	}
	if log.ev[0].Reason != ReasonOverQuota || log.ev[2].Reason != ReasonShutdown {
		t.Fatalf("reasons %+v", log.ev)
	}
}

type closer struct {
	mu sync.Mutex
	r  int
}

func (c *closer) SocketID() string        { return "x" }
func (c *closer) Deliver(*Publication)    {}
func (c *closer) CloseWith(r CloseReason) { c.mu.Lock(); c.r = int(r) + 1; c.mu.Unlock() }
func (c *closer) Protocol() string        { return "test" }
func (c *closer) reason() int             { c.mu.Lock(); defer c.mu.Unlock(); return c.r }

// Work queued for one connection runs in order, off the caller's goroutine.
func TestOpsRunInOrder(t *testing.T) {
	h := newHub()
	c, _ := h.Admit("app", 0, nil)
	var mu sync.Mutex
	var got []int
	release := make(chan struct{})
	c.Do(func(context.Context) { <-release })
	for i := range 100 {
		c.Do(func(context.Context) { mu.Lock(); got = append(got, i); mu.Unlock() })
	}
	// Do did not wait for the blocked first op.
	close(release)
	if err := h.WaitOps(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("ran out of order: %v", got)
		}
	}
	if len(got) != 100 {
		t.Fatalf("ran %d of 100", len(got))
	}
}

// Close cancels the context of work still running.
func TestCloseCancelsOps(t *testing.T) {
	h := newHub()
	c, _ := h.Admit("app", 0, nil)
	done := make(chan error, 1)
	c.Do(func(ctx context.Context) { <-ctx.Done(); done <- ctx.Err() })
	h.Close(context.Background())
	if err := <-done; err == nil {
		t.Fatal("op context not cancelled")
	}
}

// A pending subscription misses nothing and lets nothing through before
// its confirmation; after it, events go to the subscriber directly.
func TestPendingHoldsUntilActivated(t *testing.T) {
	h := newHub()
	r := &recorder{id: "1.1"}
	p, ok := h.SubscribePending("app", "ch", r)
	if !ok {
		t.Fatal("not subscribed")
	}
	pub := func(ev string) {
		h.Publish(context.Background(), broker.Message{AppID: "app", Channel: "ch", Event: ev}, SourceREST)
	}
	pub("a")
	pub("b")
	if len(r.frames) != 0 {
		t.Fatal("delivered before the confirmation")
	}
	if !p.Activate(func() { r.frames = append(r.frames, []byte("confirm")) }) {
		t.Fatal("activate failed")
	}
	pub("c")
	if got := fmt.Sprintf("%s", r.frames); got != "[confirm a: b: c:]" {
		t.Fatalf("got %s", got)
	}
	if n := h.SubscriptionCount("app", "ch"); n != 1 {
		t.Fatalf("%d subscribers", n)
	}
	h.Unsubscribe("app", "ch", r)
	if n := h.SubscriptionCount("app", "ch"); n != 0 {
		t.Fatalf("the subscriber was not put in the holder's place: %d left", n)
	}
}

func TestPendingLeftBeforeActivation(t *testing.T) {
	h := newHub()
	r := &recorder{id: "1.1"}
	p, _ := h.SubscribePending("app", "ch", r)
	h.Unsubscribe("app", "ch", p)
	if p.Activate(func() { t.Fatal("confirmed a subscription that was left") }) {
		t.Fatal("activated")
	}
}

func TestPendingOverflowIsSlow(t *testing.T) {
	h := newHub()
	cl := &closer{}
	p, _ := h.SubscribePending("app", "ch", cl)
	for range maxHeld + 1 {
		h.Publish(context.Background(), broker.Message{AppID: "app", Channel: "ch", Event: "e"}, SourceREST)
	}
	p.Activate(func() {})
	if cl.reason()-1 != int(ReasonSlowConsumer) {
		t.Fatalf("overflowing holder: close reason %d", cl.reason()-1)
	}
}

func TestLiveness(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var l Liveness
	activity, pong := 10*time.Second, 3*time.Second
	step := func(now, last time.Duration, wantA LivenessAction, wantNext time.Duration) {
		t.Helper()
		a, next := l.Check(t0.Add(now), t0.Add(last), activity, pong)
		if a != wantA || (a != LiveTimeout && next != wantNext) {
			t.Fatalf("at %v (last read %v): %v %v, want %v %v", now, last, a, next, wantA, wantNext)
		}
	}
	step(4*time.Second, 0, LiveWait, 6*time.Second)
	step(10*time.Second, 0, LivePing, 3*time.Second)
	step(11*time.Second, 0, LiveWait, 2*time.Second)
	step(13*time.Second, 12*time.Second, LiveWait, 9*time.Second) // answered
	step(22*time.Second, 12*time.Second, LivePing, 3*time.Second)
	step(25*time.Second, 12*time.Second, LiveTimeout, 0)

	// An activity timeout shorter than the pong timeout: the check after a
	// ping comes at the activity timeout, and a pong in between moves the
	// next ping to an activity timeout after it.
	l = Liveness{}
	activity, pong = 2*time.Second, 5*time.Second
	step(2*time.Second, 0, LivePing, 2*time.Second)
	step(4*time.Second, 2500*time.Millisecond, LiveWait, 500*time.Millisecond)
	step(4500*time.Millisecond, 2500*time.Millisecond, LivePing, 2*time.Second)
	step(6500*time.Millisecond, 2500*time.Millisecond, LiveWait, 3*time.Second)
	step(9500*time.Millisecond, 2500*time.Millisecond, LiveTimeout, 0)
}

func TestBufferedDropsWhenFull(t *testing.T) {
	block := make(chan struct{})
	var got []EventType
	var mu sync.Mutex
	b := NewBuffered("test", 2, ObserverFunc(func(e Event) {
		<-block
		mu.Lock()
		got = append(got, e.Type)
		mu.Unlock()
	}), nil)
	for range 10 {
		b.Observe(Event{Type: EventChannelOccupied})
	}
	// One is being handled, two are queued, seven dropped; nothing waited.
	if d := b.Drops(); d < 7 || d > 8 {
		t.Fatalf("%d dropped", d)
	}
	close(block)
	b.Close(nil)
	b.Observe(Event{Type: EventChannelVacated}) // after Close: dropped, no panic
	mu.Lock()
	defer mu.Unlock()
	if uint64(len(got))+b.Drops() != 11 {
		t.Fatalf("%d handled, %d dropped of 11", len(got), b.Drops())
	}
}

// batchBroker is the memory broker taking batches, as Redis's does: it
// records their sizes and fails the message at failAt (if not negative)
// as a backend gone mid-batch would.
type batchBroker struct {
	*broker.Memory
	batches []int
	failAt  int // the message, counted over every batch, that fails
	seen    int
}

func (b *batchBroker) PublishBatch(ctx context.Context, ms []broker.Message) (int, error) {
	b.batches = append(b.batches, len(ms))
	for i := range ms {
		if b.seen++; b.seen-1 == b.failAt {
			return i, errors.New("connection reset")
		}
		if err := b.Memory.Publish(ctx, ms[i]); err != nil {
			return i, err
		}
	}
	return len(ms), nil
}

// PublishMany hands a broker that takes batches its messages at most
// publishBatchMax at once, reports only those published, stops at the
// first failure, and publishes one at a time through a broker that
// batches nothing.
func TestPublishMany(t *testing.T) {
	msgs := func(n int) func(int) broker.Message {
		next := 0
		return func(i int) broker.Message {
			if i != next {
				t.Fatalf("message %d asked for, want %d", i, next)
			}
			next++
			return broker.Message{AppID: "app", Channel: "ch" + strconv.Itoa(i%3), Event: "e" + strconv.Itoa(i)}
		}
	}
	for _, tt := range []struct {
		name        string
		batch       bool
		failAt, n   int
		wantBatches []int
		wantDone    int
	}{
		{"batched", true, -1, 5, []int{5}, 5},
		{"one message, no batch", true, -1, 1, nil, 1},
		{"failing mid-batch", true, 2, 5, []int{5}, 2},
		{"in batches of publishBatchMax", true, -1, 2*publishBatchMax + 50, []int{publishBatchMax, publishBatchMax, 50}, 2*publishBatchMax + 50},
		{"failing in a later batch", true, publishBatchMax + 30, 2*publishBatchMax + 50, []int{publishBatchMax, publishBatchMax}, publishBatchMax + 30},
		{"broker without batches", false, -1, 5, nil, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := &eventLog{}
			bb := &batchBroker{Memory: broker.NewMemory(0), failAt: tt.failAt}
			var br broker.Broker = bb
			if !tt.batch {
				br = struct{ broker.Broker }{bb} // hides PublishBatch
			}
			h := New(Config{Broker: br, Observers: []Observer{log}})
			subs := make([]*recorder, 3)
			for i := range subs {
				subs[i] = &recorder{id: "1." + strconv.Itoa(i)}
				h.Subscribe("app", "ch"+strconv.Itoa(i), subs[i])
			}
			done, err := h.PublishMany(context.Background(), tt.n, msgs(tt.n), SourceREST)
			if done != tt.wantDone || (err != nil) != (tt.failAt >= 0) {
				t.Fatalf("PublishMany = %d, %v; want %d", done, err, tt.wantDone)
			}
			if !slices.Equal(bb.batches, tt.wantBatches) {
				t.Fatalf("batches %v, want %v", bb.batches, tt.wantBatches)
			}
			delivered, published := 0, 0
			for _, s := range subs {
				delivered += len(s.frames)
			}
			for _, e := range log.ev {
				if e.Type == EventPublished {
					published++
				}
			}
			if delivered != tt.wantDone || published != tt.wantDone {
				t.Fatalf("%d delivered and %d reported published, want %d", delivered, published, tt.wantDone)
			}
		})
	}
}
