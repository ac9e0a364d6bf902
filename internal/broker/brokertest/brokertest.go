// Package brokertest is the conformance suite of the broker.Broker contract.
// Every implementation runs the same suite from its own tests:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) broker.Broker { return broker.NewMemory(0) })
//	}
//
// The suite only relies on what package broker documents, and it tolerates
// asynchronous delivery: it waits (up to five seconds) for published
// messages to reach the handler instead of expecting them on return from
// Publish.
package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

// deliveryTimeout bounds the wait for published messages to reach the handler.
const deliveryTimeout = 5 * time.Second

// Config says what the suite may expect of an implementation beyond the
// contract's minimum.
type Config struct {
	// InterestOnly: the broker delivers a channel's messages only to nodes
	// that declared interest (a shared broker). A single-node broker may
	// deliver everything.
	InterestOnly bool
	// CacheTTL is the broker's cache TTL; 0 means broker.DefaultCacheTTL.
	CacheTTL time.Duration
}

// Run checks the brokers newBroker returns against the contract documented in
// package broker. newBroker is called once per subtest. Each subtest uses app
// ids of its own, so brokers that share a backing store across calls (one
// Redis for the whole run, say) do not see each other's state.
//
// Before publishing on a channel the suite declares interest in it
// (SetLocalCount 1) and waits for AwaitInterest, as the hub does.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker, cfg ...Config) {
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = broker.DefaultCacheTTL
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"PublishReachesHandler", testPublishReachesHandler},
		{"Counts", testCounts},
		{"MemberCount", testMemberCount},
		{"UsersOnlineOffline", testUsersOnlineOffline},
		{"CacheTTL", testCacheTTL},
		{"NoDeliveryWithoutInterest", testNoDeliveryWithoutInterest},
		{"OrderPerChannel", testOrderPerChannel},
		{"CacheLastEvent", testCacheLastEvent},
		{"CacheIsolated", testCacheIsolated},
		{"PresencePerUser", testPresencePerUser},
		{"MembersJoinOrder", testMembersJoinOrder},
		{"MemberLimit", testMemberLimit},
		{"PresenceIsolated", testPresenceIsolated},
		{"LeaveUnknown", testLeaveUnknown},
		{"Transitions", testTransitions},
		{"TransitionsForSomeApps", testTransitionsForSomeApps},
		{"PingThenClose", testPingThenClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := "brokertest-" + run + "-" + tt.name + "-"
			s := &suite{b: newBroker(t), prefix: prefix, rec: &recorder{prefix: prefix}, cfg: c}
			s.b.SetHandler(s.rec.handle)
			tt.fn(t, s)
		})
	}
}

type suite struct {
	b      broker.Broker
	prefix string
	rec    *recorder
	cfg    Config
}

// interest declares the node's interest in channels, as a first local
// subscriber does, and waits until it is in effect.
func (s *suite) interest(t *testing.T, app string, channels ...string) {
	t.Helper()
	interest(t, s.b, app, channels...)
}

func interest(t *testing.T, b broker.Broker, app string, channels ...string) {
	t.Helper()
	for _, ch := range channels {
		b.SetLocalCount(app, ch, 1)
	}
	ctx, cancel := context.WithTimeout(t.Context(), deliveryTimeout)
	defer cancel()
	for _, ch := range channels {
		if err := b.AwaitInterest(ctx, app, ch); err != nil {
			t.Fatalf("AwaitInterest(%s, %s): %v", app, ch, err)
		}
		if !b.InterestReady(app, ch) {
			t.Fatalf("InterestReady(%s, %s) = false after AwaitInterest", app, ch)
		}
	}
}

// app names an app of this subtest.
func (s *suite) app(name string) string { return s.prefix + name }

func (s *suite) publish(t *testing.T, m broker.Message) {
	t.Helper()
	if err := s.b.Publish(t.Context(), m); err != nil {
		t.Fatalf("Publish(%s %s %q): %v", m.AppID, m.Channel, m.Event, err)
	}
}

func (s *suite) join(t *testing.T, app, channel, conn, user string, maxMembers int) bool {
	t.Helper()
	first, err := s.b.Join(t.Context(), app, channel, conn, member(user), maxMembers)
	if err != nil {
		t.Fatalf("Join(%s, %s, %s): %v", channel, conn, user, err)
	}
	return first
}

func (s *suite) leave(t *testing.T, app, channel, conn, user string) bool {
	t.Helper()
	last, err := s.b.Leave(t.Context(), app, channel, conn, user)
	if err != nil {
		t.Fatalf("Leave(%s, %s, %s): %v", channel, conn, user, err)
	}
	return last
}

// member gives each user a user_info of its own, so that a mix-up shows.
func member(user string) broker.Member {
	return broker.Member{UserID: user, Info: []byte(`{"name":"` + user + `"}`)}
}

// wantMembers checks Members against users, in order, with their infos.
func (s *suite) wantMembers(t *testing.T, app, channel string, users ...string) {
	t.Helper()
	got, err := s.b.Members(t.Context(), app, channel)
	if err != nil {
		t.Fatalf("Members(%s): %v", channel, err)
	}
	ids := make([]string, len(got))
	for i, m := range got {
		ids[i] = m.UserID
	}
	if strings.Join(ids, ",") != strings.Join(users, ",") || len(got) != len(users) {
		t.Fatalf("Members(%s) = %q, want %q", channel, ids, users)
	}
	for _, m := range got {
		if want := member(m.UserID).Info; !bytes.Equal(m.Info, want) {
			t.Fatalf("Members(%s): user %s has info %s, want %s", channel, m.UserID, m.Info, want)
		}
	}
}

func (s *suite) wantLastEvent(t *testing.T, app, channel string, want *broker.Message) {
	t.Helper()
	got, ok, err := s.b.LastEvent(t.Context(), app, channel)
	if err != nil {
		t.Fatalf("LastEvent(%s, %s): %v", app, channel, err)
	}
	switch {
	case want == nil && ok:
		t.Fatalf("LastEvent(%s, %s) = %+v, want none", app, channel, got)
	case want != nil && !ok:
		t.Fatalf("LastEvent(%s, %s): none, want %+v", app, channel, *want)
	case want != nil && !got.Message.Equal(want):
		t.Fatalf("LastEvent(%s, %s) = %+v, want %+v", app, channel, got, *want)
	}
}

// recorder is a Handler that keeps the messages of one subtest's apps. It
// never blocks, as the contract requires of handlers.
type recorder struct {
	prefix string
	mu     sync.Mutex
	msgs   []broker.Message
}

func (r *recorder) handle(m broker.Message) {
	if !strings.HasPrefix(m.AppID, r.prefix) {
		return
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]broker.Message(nil), r.msgs...)
}

// wait returns the recorded messages once there are n of them, failing the
// test if they do not arrive in time or if more than n arrive.
func (r *recorder) wait(t *testing.T, n int) []broker.Message {
	t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	for {
		got := r.snapshot()
		if len(got) >= n {
			// Give duplicates a moment to show before counting.
			time.Sleep(20 * time.Millisecond)
			got = r.snapshot()
			if len(got) != n {
				t.Fatalf("handler received %d messages, want %d", len(got), n)
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler received %d messages within %v, want %d", len(got), deliveryTimeout, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testPublishReachesHandler(t *testing.T, s *suite) {
	sent := []broker.Message{
		{Kind: broker.KindEvent, AppID: s.app("a"), Channel: "my-channel", Event: "my-event", Data: `{"some":"data"}`},
		{Kind: broker.KindEvent, AppID: s.app("a"), Channel: "presence-room", Event: "client-move", Data: `{"x":1}`,
			DataJSON: true, UserID: "u1", Exclude: "123.456"},
		{Kind: broker.KindEvent, AppID: s.app("a"), Channel: "cache-prices", Event: "tick", Data: "42", Cache: true},
		{Kind: broker.KindTerminate, AppID: s.app("a"), UserID: "u1"},
		{Kind: broker.KindUnsubscribe, AppID: s.app("a"), Channel: "elsewhere", UserID: "u1"},
		{Kind: broker.KindEvent, AppID: s.app("b"), Channel: "my-channel", Event: "my-event", Data: "for app b"},
		{Kind: broker.KindEvent, AppID: s.app("a"), Channel: "c", Event: "unicode", Data: "ą€😀 \x00\"\\"},
		{Kind: broker.KindEvent, AppID: s.app("a"), Channel: "c", Event: "tagged", Data: `{"v":1}`, DataJSON: true,
			Tags: map[string]string{"event": "tick", "z": "", "": "empty key", "ключ": "значение"}},
	}
	s.interest(t, s.app("a"), "my-channel", "presence-room", "cache-prices", "c")
	s.interest(t, s.app("b"), "my-channel")
	for _, m := range sent {
		s.publish(t, m)
	}
	got := s.rec.wait(t, len(sent))
	// Order across channels is not promised: match each message once.
	used := make([]bool, len(got))
	for _, want := range sent {
		found := false
		for i, m := range got {
			if !used[i] && m.Equal(&want) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("message %+v did not reach the handler intact; got %+v", want, got)
		}
	}
}

func testOrderPerChannel(t *testing.T, s *suite) {
	const perChannel = 200
	channels := []string{"ch-0", "ch-1", "ch-2", "ch-3"}
	app := s.app("a")
	s.interest(t, app, append(channels, "mixed-a", "mixed-b")...)
	var wg sync.WaitGroup
	errs := make(chan error, len(channels)+1)
	for _, ch := range channels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perChannel {
				m := broker.Message{AppID: app, Channel: ch, Event: "seq", Data: strconv.Itoa(i)}
				if err := s.b.Publish(context.Background(), m); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// One publisher interleaving two channels of its own.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range perChannel {
			for _, ch := range []string{"mixed-a", "mixed-b"} {
				m := broker.Message{AppID: app, Channel: ch, Event: "seq", Data: strconv.Itoa(i)}
				if err := s.b.Publish(context.Background(), m); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	channels = append(channels, "mixed-a", "mixed-b")

	got := s.rec.wait(t, perChannel*len(channels))
	next := map[string]int{}
	for _, m := range got {
		want := next[m.Channel]
		if m.Data != strconv.Itoa(want) {
			t.Fatalf("channel %s: received %s where %d was due", m.Channel, m.Data, want)
		}
		next[m.Channel]++
	}
	for _, ch := range channels {
		if next[ch] != perChannel {
			t.Errorf("channel %s: %d messages, want %d", ch, next[ch], perChannel)
		}
	}
}

func testCacheLastEvent(t *testing.T, s *suite) {
	app := s.app("a")
	const ch = "cache-prices"
	s.interest(t, app, ch, "cache-other")
	s.wantLastEvent(t, app, ch, nil)

	first := broker.Message{AppID: app, Channel: ch, Event: "price", Data: `{"eur":1}`, Cache: true}
	s.publish(t, first)
	s.wantLastEvent(t, app, ch, &first)

	// An event not marked for the cache does not replace the cached one.
	s.publish(t, broker.Message{AppID: app, Channel: ch, Event: "price", Data: `{"eur":2}`})
	s.wantLastEvent(t, app, ch, &first)

	second := broker.Message{AppID: app, Channel: ch, Event: "price-now", Data: `{"eur":3}`, Cache: true, Exclude: "1.2",
		Tags: map[string]string{"event": "price-now", "src": "api"}}
	s.publish(t, second)
	s.wantLastEvent(t, app, ch, &second)

	// A channel that only ever had uncached events has no last event.
	s.publish(t, broker.Message{AppID: app, Channel: "cache-other", Event: "e", Data: "d"})
	s.wantLastEvent(t, app, "cache-other", nil)

	s.rec.wait(t, 4)
}

func testCacheIsolated(t *testing.T, s *suite) {
	a, b := s.app("a"), s.app("b")
	s.interest(t, a, "cache-x")
	s.interest(t, b, "cache-x")
	m := broker.Message{AppID: a, Channel: "cache-x", Event: "e", Data: "from a", Cache: true}
	s.publish(t, m)
	s.wantLastEvent(t, a, "cache-x", &m)
	s.wantLastEvent(t, b, "cache-x", nil)
	s.wantLastEvent(t, a, "cache-y", nil)

	mb := broker.Message{AppID: b, Channel: "cache-x", Event: "e", Data: "from b", Cache: true}
	s.publish(t, mb)
	s.wantLastEvent(t, a, "cache-x", &m)
	s.wantLastEvent(t, b, "cache-x", &mb)
	s.rec.wait(t, 2)
}

func testPresencePerUser(t *testing.T, s *suite) {
	app := s.app("a")
	const ch = "presence-room"
	if !s.join(t, app, ch, "1.1", "alice", 100) {
		t.Fatal("alice's first connection: first = false")
	}
	if s.join(t, app, ch, "1.2", "alice", 100) {
		t.Fatal("alice's second connection: first = true")
	}
	if !s.join(t, app, ch, "2.1", "bob", 100) {
		t.Fatal("bob's first connection: first = false")
	}
	s.wantMembers(t, app, ch, "alice", "bob")

	if s.leave(t, app, ch, "1.1", "alice") {
		t.Fatal("alice left with one connection still in: last = true")
	}
	s.wantMembers(t, app, ch, "alice", "bob")
	if !s.leave(t, app, ch, "1.2", "alice") {
		t.Fatal("alice's last connection left: last = false")
	}
	s.wantMembers(t, app, ch, "bob")
	if s.leave(t, app, ch, "1.2", "alice") {
		t.Fatal("a second Leave of the same connection: last = true")
	}
	if !s.leave(t, app, ch, "2.1", "bob") {
		t.Fatal("bob left: last = false")
	}
	s.wantMembers(t, app, ch)

	// The user can come back, as a new member.
	if !s.join(t, app, ch, "1.3", "alice", 100) {
		t.Fatal("alice rejoined: first = false")
	}
	s.wantMembers(t, app, ch, "alice")
}

func testMembersJoinOrder(t *testing.T, s *suite) {
	app := s.app("a")
	const ch = "presence-order"
	users := []string{"zed", "amy", "mike", "bea", "10", "9"}
	for i, u := range users {
		s.join(t, app, ch, fmt.Sprintf("1.%d", i), u, 100)
	}
	// Further connections of present users do not move them.
	s.join(t, app, ch, "2.0", "zed", 100)
	s.join(t, app, ch, "2.1", "bea", 100)
	s.wantMembers(t, app, ch, users...)

	// A member who leaves and returns goes to the end.
	if !s.leave(t, app, ch, "1.1", "amy") {
		t.Fatal("amy left: last = false")
	}
	s.join(t, app, ch, "3.1", "amy", 100)
	s.wantMembers(t, app, ch, "zed", "mike", "bea", "10", "9", "amy")

	// zed is still present through its second connection.
	if s.leave(t, app, ch, "1.0", "zed") {
		t.Fatal("zed left with one connection still in: last = true")
	}
	s.wantMembers(t, app, ch, "zed", "mike", "bea", "10", "9", "amy")
}

func testMemberLimit(t *testing.T, s *suite) {
	app := s.app("a")
	const ch = "presence-small"
	const limit = 2
	s.join(t, app, ch, "1.1", "alice", limit)
	s.join(t, app, ch, "2.1", "bob", limit)

	first, err := s.b.Join(t.Context(), app, ch, "3.1", member("carol"), limit)
	if !errors.Is(err, broker.ErrMemberLimit) {
		t.Fatalf("third user of a channel limited to 2: first=%v err=%v, want ErrMemberLimit", first, err)
	}
	s.wantMembers(t, app, ch, "alice", "bob")
	// Nothing was recorded for the refused connection.
	if s.leave(t, app, ch, "3.1", "carol") {
		t.Fatal("Leave of a refused connection: last = true")
	}

	// A present user may still add connections.
	if s.join(t, app, ch, "1.2", "alice", limit) {
		t.Fatal("alice's second connection in a full channel: first = true")
	}
	s.wantMembers(t, app, ch, "alice", "bob")

	// Room frees up when a member leaves.
	s.leave(t, app, ch, "2.1", "bob")
	if !s.join(t, app, ch, "3.2", "carol", limit) {
		t.Fatal("carol joined after bob left: first = false")
	}
	s.wantMembers(t, app, ch, "alice", "carol")

	// The limit counts users, not connections.
	if _, err := s.b.Join(t.Context(), app, ch, "4.1", member("dave"), limit); !errors.Is(err, broker.ErrMemberLimit) {
		t.Fatalf("dave joined a full channel: %v", err)
	}
	// Other channels have their own count.
	if !s.join(t, app, "presence-other", "4.1", "dave", limit) {
		t.Fatal("dave in another channel: first = false")
	}
}

func testPresenceIsolated(t *testing.T, s *suite) {
	a, b := s.app("a"), s.app("b")
	const ch = "presence-room"
	if !s.join(t, a, ch, "1.1", "alice", 1) {
		t.Fatal("alice in app a: first = false")
	}
	s.wantMembers(t, b, ch)
	// The same user and connection id in another app is another member, and
	// app a's full channel does not count against app b.
	if !s.join(t, b, ch, "1.1", "alice", 1) {
		t.Fatal("alice in app b: first = false")
	}
	if _, err := s.b.Join(t.Context(), b, ch, "2.1", member("bob"), 1); !errors.Is(err, broker.ErrMemberLimit) {
		t.Fatalf("bob in full channel of app b: %v, want ErrMemberLimit", err)
	}
	// Another channel of app a keeps a member count of its own.
	if !s.join(t, a, "presence-room-2", "1.1", "alice", 1) {
		t.Fatal("alice in a second channel: first = false")
	}

	if !s.leave(t, a, ch, "1.1", "alice") {
		t.Fatal("alice left app a: last = false")
	}
	s.wantMembers(t, a, ch)
	s.wantMembers(t, b, ch, "alice")
	s.wantMembers(t, a, "presence-room-2", "alice")
}

func testLeaveUnknown(t *testing.T, s *suite) {
	app := s.app("a")
	const ch = "presence-room"
	if s.leave(t, app, "presence-never-joined", "1.1", "alice") {
		t.Fatal("Leave of an empty channel: last = true")
	}
	s.join(t, app, ch, "1.1", "alice", 100)
	if s.leave(t, app, ch, "9.9", "alice") {
		t.Fatal("Leave of a connection that never joined: last = true")
	}
	if s.leave(t, app, ch, "1.1", "bob") {
		t.Fatal("Leave naming another user: last = true")
	}
	s.wantMembers(t, app, ch, "alice")
}

// testPingThenClose: an open broker answers Ping; after Close, publishing
// fails with ErrClosed and Ping fails.
func testPingThenClose(t *testing.T, s *suite) {
	ctx := context.Background()
	if err := s.b.Ping(ctx); err != nil {
		t.Fatalf("Ping of an open broker: %v", err)
	}
	if err := s.b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.b.Publish(ctx, broker.Message{AppID: s.prefix + "a", Channel: "c", Event: "e"}); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
	if err := s.b.Ping(ctx); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}
