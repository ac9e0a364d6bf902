package brokertest

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
)

// eventually retries check until it returns "" or the delivery timeout
// passes; a shared broker applies counts in the background.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s (after %v)", what, msg, deliveryTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCount(t *testing.T, b broker.Broker, app, ch string, want int) {
	t.Helper()
	eventually(t, "SubscriptionCount("+ch+")", func() string {
		n, err := b.SubscriptionCount(t.Context(), app, ch)
		if err != nil {
			return err.Error()
		}
		if n != want {
			return "got " + itoa(n) + ", want " + itoa(want)
		}
		return ""
	})
}

func wantChannels(t *testing.T, b broker.Broker, app, prefix string, want ...broker.ChannelCount) {
	t.Helper()
	eventually(t, "Channels("+prefix+")", func() string {
		got, err := b.Channels(t.Context(), app, prefix)
		if err != nil {
			return err.Error()
		}
		if !slices.Equal(got, want) {
			return "got " + fmtCounts(got) + ", want " + fmtCounts(want)
		}
		return ""
	})
}

func fmtCounts(cs []broker.ChannelCount) string {
	s := "["
	for i, c := range cs {
		if i > 0 {
			s += " "
		}
		s += c.Name + "=" + itoa(c.Subscriptions)
	}
	return s + "]"
}

func wantOnline(t *testing.T, b broker.Broker, app string, ids []string, want ...string) {
	t.Helper()
	got, err := b.OnlineUsers(t.Context(), app, ids)
	if err != nil {
		t.Fatalf("OnlineUsers: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("OnlineUsers(%q) = %q, want %q", ids, got, want)
	}
}

func wantMemberCount(t *testing.T, b broker.Broker, app, ch string, want int) {
	t.Helper()
	n, err := b.MemberCount(t.Context(), app, ch)
	if err != nil {
		t.Fatalf("MemberCount(%s): %v", ch, err)
	}
	if n != want {
		t.Fatalf("MemberCount(%s) = %d, want %d", ch, n, want)
	}
}

func cc(name string, n int) broker.ChannelCount {
	return broker.ChannelCount{Name: name, Subscriptions: n}
}

func testCounts(t *testing.T, s *suite) {
	a, b := s.app("a"), s.app("b")
	wantCount(t, s.b, a, "ch-b", 0)
	wantChannels(t, s.b, a, "")
	s.b.SetLocalCount(a, "ch-b", 3)
	s.b.SetLocalCount(a, "presence-x", 2)
	s.b.SetLocalCount(b, "ch-a", 5)
	// Many changes of one channel: the last one counts.
	for n := 1; n <= 20; n++ {
		s.b.SetLocalCount(a, "ch-a", n)
	}
	s.b.SetLocalCount(a, "ch-a", 1)
	wantCount(t, s.b, a, "ch-b", 3)
	wantCount(t, s.b, a, "ch-a", 1)
	wantCount(t, s.b, b, "ch-a", 5)
	wantChannels(t, s.b, a, "", cc("ch-a", 1), cc("ch-b", 3), cc("presence-x", 2))
	wantChannels(t, s.b, a, "ch-", cc("ch-a", 1), cc("ch-b", 3))
	wantChannels(t, s.b, a, "private-")
	wantChannels(t, s.b, b, "", cc("ch-a", 5))

	s.b.SetLocalCount(a, "ch-b", 0)
	wantCount(t, s.b, a, "ch-b", 0)
	wantChannels(t, s.b, a, "ch-", cc("ch-a", 1))
	s.b.SetLocalCount(a, "ch-a", 0)
	s.b.SetLocalCount(a, "presence-x", 0)
	wantChannels(t, s.b, a, "")
	wantChannels(t, s.b, b, "", cc("ch-a", 5))
}

func testMemberCount(t *testing.T, s *suite) {
	app := s.app("a")
	const ch = "presence-count"
	wantMemberCount(t, s.b, app, ch, 0)
	s.join(t, app, ch, "1.1", "alice", 0)
	s.join(t, app, ch, "1.2", "alice", 0)
	s.join(t, app, ch, "2.1", "bob", 0)
	wantMemberCount(t, s.b, app, ch, 2)
	s.leave(t, app, ch, "1.1", "alice")
	wantMemberCount(t, s.b, app, ch, 2)
	s.leave(t, app, ch, "1.2", "alice")
	wantMemberCount(t, s.b, app, ch, 1)
	s.leave(t, app, ch, "2.1", "bob")
	wantMemberCount(t, s.b, app, ch, 0)
}

func isUser(m broker.Message) bool {
	return m.Kind == broker.KindUserOnline || m.Kind == broker.KindUserOffline
}

func testUsersOnlineOffline(t *testing.T, s *suite) {
	app := s.app("a")
	ids := []string{"u2", "u1", "u3"}
	wantOnline(t, s.b, app, ids)

	s.b.SetLocalUser(app, "u1", 1)
	got := s.rec.waitMatch(t, 1, isUser)
	want := broker.Message{Kind: broker.KindUserOnline, AppID: app, UserID: "u1"}
	if !got[0].Equal(&want) {
		t.Fatalf("transition %+v, want %+v", got[0], want)
	}
	wantOnline(t, s.b, app, ids, "u1")

	// More connections of an online user are no transition.
	s.b.SetLocalUser(app, "u1", 2)
	s.b.SetLocalUser(app, "u3", 1)
	s.rec.waitMatch(t, 2, isUser)
	wantOnline(t, s.b, app, ids, "u1", "u3")
	s.b.SetLocalUser(app, "u1", 1)
	s.b.SetLocalUser(app, "u1", 0)
	got = s.rec.waitMatch(t, 3, isUser)
	want = broker.Message{Kind: broker.KindUserOffline, AppID: app, UserID: "u1"}
	if !got[2].Equal(&want) {
		t.Fatalf("transition %+v, want %+v", got[2], want)
	}
	wantOnline(t, s.b, app, ids, "u3")
	// Another app's user of the same id is another user.
	wantOnline(t, s.b, s.app("b"), ids)
}

func testCacheTTL(t *testing.T, s *suite) {
	app := s.app("a")
	s.interest(t, app, "cache-ttl")
	s.publish(t, broker.Message{AppID: app, Channel: "cache-ttl", Event: "e", Data: "d", Cache: true})
	c, ok, err := s.b.LastEvent(t.Context(), app, "cache-ttl")
	if err != nil || !ok {
		t.Fatalf("LastEvent: %v, %v", ok, err)
	}
	if c.TTL <= 0 || c.TTL > s.cfg.CacheTTL {
		t.Fatalf("LastEvent TTL = %v, want in (0, %v]", c.TTL, s.cfg.CacheTTL)
	}
	s.rec.wait(t, 1)
}

func testNoDeliveryWithoutInterest(t *testing.T, s *suite) {
	if !s.cfg.InterestOnly {
		t.Skip("the broker may deliver channels nobody declared interest in")
	}
	app := s.app("a")
	s.interest(t, app, "wanted")
	s.publish(t, broker.Message{AppID: app, Channel: "unwanted", Event: "e"})
	s.publish(t, broker.Message{AppID: app, Channel: "wanted", Event: "e"})
	// Per-channel order is all that is promised, so give the unwanted one
	// time to show before judging.
	time.Sleep(50 * time.Millisecond)
	got := s.rec.wait(t, 1)
	if got[0].Channel != "wanted" {
		t.Fatalf("received %+v", got[0])
	}
}

// waitMatch is wait for the recorded messages that match.
func (r *recorder) waitMatch(t *testing.T, n int, match func(broker.Message) bool) []broker.Message {
	t.Helper()
	filter := func() []broker.Message {
		var out []broker.Message
		for _, m := range r.snapshot() {
			if match(m) {
				out = append(out, m)
			}
		}
		return out
	}
	deadline := time.Now().Add(deliveryTimeout)
	for {
		got := filter()
		if len(got) >= n {
			time.Sleep(50 * time.Millisecond)
			got = filter()
			if len(got) != n {
				t.Fatalf("handler received %d matching messages, want %d: %+v", len(got), n, got)
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler received %d matching messages within %v, want %d: %+v", len(got), deliveryTimeout, n, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
