package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

// recorder is a Subscriber that keeps the payloads it is given.
type recorder struct {
	id     string
	mu     sync.Mutex
	frames [][]byte
}

func (r *recorder) SocketID() string { return r.id }
func (r *recorder) Deliver(p *Publication) {
	f := p.Payload(EncodingPusher, testEncode)
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}

var encodes atomic.Int64

func testEncode(m *broker.Message) []byte {
	encodes.Add(1)
	return []byte(m.Event + ":" + m.Data)
}

func newHub() *Hub { return New(Config{Broker: broker.NewMemory(0)}) }

func TestFanoutEncodesOnceAndExcludes(t *testing.T) {
	h := newHub()
	subs := make([]*recorder, 50)
	for i := range subs {
		subs[i] = &recorder{id: fmt.Sprintf("1.%d", i)}
		h.Subscribe("app", "ch", subs[i])
	}
	other := &recorder{id: "2.0"}
	h.Subscribe("other-app", "ch", other)
	encodes.Store(0)
	if err := h.Publish(context.Background(), broker.Message{AppID: "app", Channel: "ch", Event: "e", Data: "d", Exclude: "1.7"}, SourceREST); err != nil {
		t.Fatal(err)
	}
	if n := encodes.Load(); n != 1 {
		t.Fatalf("encoded %d times for 49 subscribers, want once", n)
	}
	var first []byte
	for i, s := range subs {
		if i == 7 {
			if len(s.frames) != 0 {
				t.Fatal("excluded socket received the event")
			}
			continue
		}
		if len(s.frames) != 1 || string(s.frames[0]) != "e:d" {
			t.Fatalf("sub %d got %q", i, s.frames)
		}
		if first == nil {
			first = s.frames[0]
		} else if &first[0] != &s.frames[0][0] {
			t.Fatal("subscribers received different byte slices; the payload must be shared")
		}
	}
	if len(other.frames) != 0 {
		t.Fatal("another app's subscriber received the event")
	}
}

func TestSubscribeUnsubscribeCounts(t *testing.T) {
	h := newHub()
	a, b := &recorder{id: "1.1"}, &recorder{id: "1.2"}
	if n, added := h.Subscribe("app", "ch", a); n != 1 || !added {
		t.Fatalf("first subscribe: %d %v", n, added)
	}
	if n, added := h.Subscribe("app", "ch", a); n != 1 || added {
		t.Fatalf("repeat subscribe: %d %v", n, added)
	}
	h.Subscribe("app", "ch", b)
	h.Subscribe("app", "presence-x", b)
	got := h.Channels("app", "")
	if len(got) != 2 || got[0].Name != "ch" || got[0].Subscriptions != 2 || got[1].Name != "presence-x" {
		t.Fatalf("channels %+v", got)
	}
	if got := h.Channels("app", "presence-"); len(got) != 1 {
		t.Fatalf("prefix filter %+v", got)
	}
	if n, removed := h.Unsubscribe("app", "ch", a); n != 1 || !removed {
		t.Fatalf("unsubscribe: %d %v", n, removed)
	}
	if _, removed := h.Unsubscribe("app", "ch", a); removed {
		t.Fatal("second unsubscribe reported a removal")
	}
	h.Unsubscribe("app", "ch", b)
	if h.SubscriptionCount("app", "ch") != 0 || len(h.Channels("app", "ch")) != 0 {
		t.Fatal("empty channel still listed")
	}
	// The remaining subscriber still receives after swaps in the slice.
	h.Publish(context.Background(), broker.Message{AppID: "app", Channel: "presence-x", Event: "e"}, SourceREST)
	if len(b.frames) != 1 {
		t.Fatal("remaining subscriber missed the event")
	}
}

// Channels are kept by app, then by name: one app's channels are never
// another's, whatever their names, and an app's map goes with its last
// channel.
func TestChannelsKeptPerApp(t *testing.T) {
	h := newHub()
	a, b := &recorder{id: "1.1"}, &recorder{id: "1.2"}
	h.Subscribe("app1", "ch", a)
	h.Subscribe("app2", "ch", b)
	h.Subscribe("app2", "other", b)
	if got := h.Channels("app1", ""); len(got) != 1 || got[0].Name != "ch" || got[0].Subscriptions != 1 {
		t.Fatalf("app1's channels %+v", got)
	}
	if got := h.Channels("app2", ""); len(got) != 2 {
		t.Fatalf("app2's channels %+v", got)
	}
	h.Publish(context.Background(), broker.Message{AppID: "app2", Channel: "ch", Event: "e"}, SourceREST)
	if len(a.frames) != 0 || len(b.frames) != 1 {
		t.Fatalf("app2's event reached %d of app1's frames and %d of app2's", len(a.frames), len(b.frames))
	}
	h.Unsubscribe("app1", "ch", a)
	h.Unsubscribe("app2", "ch", b)
	h.Unsubscribe("app2", "other", b)
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n := len(sh.channels)
		sh.mu.RUnlock()
		if n != 0 {
			t.Errorf("shard %d keeps %d app maps with no channel", i, n)
		}
	}
}

type fakeUser struct {
	mu         sync.Mutex
	terminated int
	changes    []string
}

func (u *fakeUser) CloseWith(CloseReason) { u.mu.Lock(); u.terminated++; u.mu.Unlock() }
func (u *fakeUser) WatchlistChange(id string, online bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.changes = append(u.changes, fmt.Sprintf("%s:%v", id, online))
}

func TestUsersWatchlistAndTerminate(t *testing.T) {
	h := newHub()
	w := &fakeUser{}
	tab1, tab2 := &fakeUser{}, &fakeUser{}
	h.Watch("app", w, []string{"bob", "carol"})
	if online, err := h.OnlineUsers(t.Context(), "app", []string{"bob", "carol"}); err != nil || len(online) != 0 {
		t.Fatalf("online %v, %v", online, err)
	}
	h.SignIn("app", "bob", tab1, Budget{})
	h.SignIn("app", "bob", tab2, Budget{}) // second tab: no second "online"
	h.SignIn("other", "bob", &fakeUser{}, Budget{})
	if online, err := h.OnlineUsers(t.Context(), "app", []string{"bob", "carol"}); err != nil || len(online) != 1 || online[0] != "bob" {
		t.Fatalf("online %v, %v", online, err)
	}
	if err := h.TerminateUser(context.Background(), "app", "bob"); err != nil {
		t.Fatal(err)
	}
	if tab1.terminated != 1 || tab2.terminated != 1 {
		t.Fatal("terminate missed a connection")
	}
	h.SignOut("app", "bob", tab1)
	h.SignOut("app", "bob", tab2)
	h.Unwatch("app", w, []string{"bob", "carol"})
	h.SignIn("app", "bob", tab1, Budget{})
	if fmt.Sprint(w.changes) != "[bob:true bob:false]" {
		t.Fatalf("watcher saw %v", w.changes)
	}
}

func TestConnectionQuota(t *testing.T) {
	h := New(Config{Broker: broker.NewMemory(0), MaxConnections: 4})
	admit := func(app string) (*Conn, error) { return h.Admit(app, 2, nil) }
	a1, err1 := admit("a")
	_, err2 := admit("a")
	if _, err := admit("a"); err1 != nil || err2 != nil || !errors.Is(err, ErrOverQuota) {
		t.Fatalf("quota of 2 not enforced: %v %v %v", err1, err2, err)
	}
	if _, err := admit("b"); err != nil {
		t.Fatal("quota leaked across apps:", err)
	}
	a1.Closed(ReasonClientClosed)
	if _, err := admit("a"); err != nil || h.AppConnections("a") != 2 {
		t.Fatal("closed connection not uncounted:", err)
	}
	if _, err := admit("c"); err != nil {
		t.Fatal(err)
	}
	if _, err := admit("d"); !errors.Is(err, ErrOverCapacity) || !h.AtCapacity() {
		t.Fatalf("node limit of 4 not enforced: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := h.Drain(ctx); err == nil {
		t.Fatal("drain returned with connections left")
	}
	if _, err := admit("e"); !errors.Is(err, ErrDraining) {
		t.Fatalf("admitted while draining: %v", err)
	}
}

// nopSub counts deliveries without keeping anything, like a connection
// whose queue append is amortized.
type nopSub struct {
	id string
	n  int
}

func (s *nopSub) SocketID() string { return s.id }
func (s *nopSub) Deliver(p *Publication) {
	_ = p.Payload(EncodingPusher, testEncode)
	s.n++
}

// The broadcast path allocates per publication, never per subscriber.
func TestFanoutAllocationsIndependentOfSubscribers(t *testing.T) {
	allocs := func(n int) float64 {
		h := newHub()
		for i := 0; i < n; i++ {
			h.Subscribe("app", "ch", &nopSub{id: fmt.Sprint(i)})
		}
		m := broker.Message{AppID: "app", Channel: "ch", Event: "e", Data: "d"}
		return testing.AllocsPerRun(50, func() { h.Publish(context.Background(), m, SourceREST) })
	}
	one, many := allocs(1), allocs(1000)
	if many != one {
		t.Fatalf("allocations per publish: %v with 1 subscriber, %v with 1000", one, many)
	}
}

func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			h := newHub()
			for i := 0; i < n; i++ {
				h.Subscribe("app", "ch", &nopSub{id: fmt.Sprint(i)})
			}
			m := broker.Message{AppID: "app", Channel: "ch", Event: "e", Data: `{"price":42}`}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.Publish(context.Background(), m, SourceREST)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}

// TestChannelMembershipAcrossIndexThreshold subscribes and unsubscribes at
// random, so channels grow past the size where they add an index and shrink
// again, and checks every publication reaches exactly the subscribed set.
func TestChannelMembershipAcrossIndexThreshold(t *testing.T) {
	h := newHub()
	r := rand.New(rand.NewPCG(3, 4))
	subs := make([]*recorder, 60)
	for i := range subs {
		subs[i] = &recorder{id: fmt.Sprintf("1.%d", i)}
	}
	in := map[*recorder]bool{}
	for step := 0; step < 3000; step++ {
		s := subs[r.IntN(len(subs))]
		if in[s] {
			n, removed := h.Unsubscribe("app", "ch", s)
			if !removed {
				t.Fatalf("step %d: %s was subscribed but not removed", step, s.id)
			}
			delete(in, s)
			if n != len(in) {
				t.Fatalf("step %d: count %d after unsubscribe, want %d", step, n, len(in))
			}
		} else {
			n, added := h.Subscribe("app", "ch", s)
			if !added {
				t.Fatalf("step %d: %s was not subscribed but not added", step, s.id)
			}
			in[s] = true
			if n != len(in) {
				t.Fatalf("step %d: count %d after subscribe, want %d", step, n, len(in))
			}
		}
		if in[s] {
			if _, again := h.Subscribe("app", "ch", s); again {
				t.Fatalf("step %d: %s added twice", step, s.id)
			}
		}
		if step%100 != 0 {
			continue
		}
		for _, x := range subs {
			x.mu.Lock()
			x.frames = nil
			x.mu.Unlock()
		}
		h.Publish(context.Background(), broker.Message{AppID: "app", Channel: "ch", Event: "e", Data: "d"}, SourceREST)
		for _, x := range subs {
			x.mu.Lock()
			got := len(x.frames)
			x.mu.Unlock()
			if want := map[bool]int{true: 1, false: 0}[in[x]]; got != want {
				t.Fatalf("step %d: %s received %d frames, want %d", step, x.id, got, want)
			}
		}
	}
}

// countingBroker records what the hub reports of its local state.
type countingBroker struct {
	*broker.Memory
	mu      sync.Mutex
	counts  []string
	users   []string
	handler broker.Handler
}

func (b *countingBroker) SetHandler(h broker.Handler) { b.handler = h; b.Memory.SetHandler(h) }
func (b *countingBroker) SetLocalCount(app, ch string, n int) {
	b.mu.Lock()
	b.counts = append(b.counts, fmt.Sprintf("%s/%s=%d", ch, app, n))
	b.mu.Unlock()
	b.Memory.SetLocalCount(app, ch, n)
}
func (b *countingBroker) SetLocalUser(app, user string, n int) {
	b.mu.Lock()
	b.users = append(b.users, fmt.Sprintf("%s/%s=%d", user, app, n))
	b.mu.Unlock()
	b.Memory.SetLocalUser(app, user, n)
}

// The broker hears every change of a channel's local count and of a user's
// local sign-ins, in order; watchers hear of users coming online on other
// nodes through the broker's messages.
func TestLocalStateReportedToBroker(t *testing.T) {
	b := &countingBroker{Memory: broker.NewMemory(0)}
	h := New(Config{Broker: b})
	r1, r2 := &recorder{id: "1.1"}, &recorder{id: "1.2"}
	h.Subscribe("app", "ch", r1)
	h.Subscribe("app", "ch", r2)
	h.Subscribe("app", "ch", r2) // already there: nothing changes
	h.Unsubscribe("app", "ch", r1)
	h.Unsubscribe("app", "ch", r2)
	if got := fmt.Sprint(b.counts); got != "[ch/app=1 ch/app=2 ch/app=1 ch/app=0]" {
		t.Fatalf("counts reported %s", got)
	}
	if n, err := h.ClusterSubscriptionCount(t.Context(), "app", "ch"); err != nil || n != 0 {
		t.Fatalf("cluster count %d, %v", n, err)
	}

	w, tab := &fakeUser{}, &fakeUser{}
	h.Watch("app", w, []string{"bob", "carol"})
	h.SignIn("app", "bob", tab, Budget{})
	h.SignOut("app", "bob", tab)
	h.SignOut("app", "bob", tab) // not signed in: nothing reported
	if got := fmt.Sprint(b.users); got != "[bob/app=1 bob/app=0]" {
		t.Fatalf("users reported %s", got)
	}
	// carol signs in on another node: the broker tells this one.
	b.handler(broker.Message{Kind: broker.KindUserOnline, AppID: "app", UserID: "carol"})
	b.handler(broker.Message{Kind: broker.KindUserOffline, AppID: "other", UserID: "carol"})
	if got := fmt.Sprint(w.changes); got != "[bob:true bob:false carol:true]" {
		t.Fatalf("watcher saw %s", got)
	}
}

// unsubUser is a signed-in connection that can be unsubscribed by the server.
type unsubUser struct {
	fakeUser
	channels []string
}

func (u *unsubUser) ServerUnsubscribe(channel string) { u.channels = append(u.channels, channel) }

func TestUnsubscribeUser(t *testing.T) {
	h := newHub()
	tab1, tab2, other := &unsubUser{}, &unsubUser{}, &unsubUser{}
	plain := &fakeUser{} // a front end without server unsubscribe
	h.SignIn("app", "bob", tab1, Budget{})
	h.SignIn("app", "bob", tab2, Budget{})
	h.SignIn("app", "bob", plain, Budget{})
	h.SignIn("app", "carol", other, Budget{})
	h.SignIn("other", "bob", other, Budget{})
	if err := h.UnsubscribeUser(t.Context(), "app", "chat", "bob"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tab1.channels, tab2.channels, other.channels) != "[chat] [chat] []" {
		t.Fatalf("unsubscribed %v %v %v", tab1.channels, tab2.channels, other.channels)
	}
	if plain.terminated != 0 {
		t.Fatal("a connection without server unsubscribe was closed")
	}
	if err := h.UnsubscribeUser(t.Context(), "app", "chat", "nobody"); err != nil {
		t.Fatal(err)
	}
}

// wrapped is a broker that wraps another, as the metrics' instrumented one
// does.
type wrapped struct{ broker.Broker }

func (w wrapped) Unwrap() broker.Broker { return w.Broker }

// countsSpy is a memory broker that records who handed it counts.
type countsSpy struct {
	*broker.Memory
	from broker.LocalCounts
}

func (s *countsSpy) UseLocalCounts(lc broker.LocalCounts) {
	s.from = lc
	s.Memory.UseLocalCounts(lc)
}

// A memory broker, even wrapped, is handed the hub's counts and answers
// the cluster's from them: the node is the cluster.
func TestMemoryBrokerReadsHubCounts(t *testing.T) {
	spy := &countsSpy{Memory: broker.NewMemory(0)}
	h := New(Config{Broker: wrapped{spy}})
	if spy.from != h {
		t.Fatalf("the broker was handed %v, not the hub", spy.from)
	}
	h.Subscribe("app", "ch", &recorder{id: "1.1"})
	h.Subscribe("app", "ch", &recorder{id: "1.2"})
	h.Subscribe("app", "other", &recorder{id: "1.3"})
	if n, err := h.ClusterSubscriptionCount(t.Context(), "app", "ch"); err != nil || n != 2 {
		t.Fatalf("cluster count %d, %v", n, err)
	}
	cs, err := h.ClusterChannels(t.Context(), "app", "c")
	if err != nil || fmt.Sprint(cs) != "[{ch 2}]" {
		t.Fatalf("cluster channels %v, %v", cs, err)
	}
}
