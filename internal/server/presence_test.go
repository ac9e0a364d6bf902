package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit"
	"github.com/heraldhq/herald/internal/testkit/redistest"
)

type presencePayload struct {
	Presence struct {
		IDs   []string                   `json:"ids"`
		Hash  map[string]json.RawMessage `json:"hash"`
		Count int                        `json:"count"`
	} `json:"presence"`
}

func decodePresence(t *testing.T, m frameMsg) presencePayload {
	t.Helper()
	var s string
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatalf("presence data must be a JSON string: %s", m.Data)
	}
	var p presencePayload
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func joinPresence(t *testing.T, ts *testServer, a apps.App, channel, channelData string) (*wsClient, string, presencePayload) {
	t.Helper()
	c, sid := connect(t, ts, a.Key)
	c.Subscribe(channel, channelToken(a, sid, channel, channelData), channelData)
	return c, sid, decodePresence(t, c.Expect("pusher_internal:subscription_succeeded"))
}

func TestPresenceMembersAreUsers(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	ch := "presence-room"
	alice := `{"user_id":"alice","user_info":{"name":"Alice"}}`
	bob := `{"user_id":"bob","user_info":{"name":"Bob"}}`

	ca, _, p := joinPresence(t, ts, a, ch, alice)
	if p.Presence.Count != 1 || p.Presence.IDs[0] != "alice" || string(p.Presence.Hash["alice"]) != `{"name":"Alice"}` {
		t.Fatalf("first member sees %+v", p)
	}
	cb1, _, p := joinPresence(t, ts, a, ch, bob)
	if p.Presence.Count != 2 {
		t.Fatalf("bob sees count %d", p.Presence.Count)
	}
	added := ca.Expect("pusher_internal:member_added")
	var s string
	json.Unmarshal(added.Data, &s)
	if s != `{"user_id":"bob","user_info":{"name":"Bob"}}` {
		t.Fatalf("member_added data %s", s)
	}
	// Bob's second tab is not a new member.
	cb2, _, p := joinPresence(t, ts, a, ch, bob)
	if p.Presence.Count != 2 {
		t.Fatalf("second tab sees count %d", p.Presence.Count)
	}
	ca.ExpectSilence(200 * time.Millisecond)
	cb1.ExpectSilence(100 * time.Millisecond) // nobody announces bob to bob

	// One tab leaving removes nobody; the last one does.
	cb1.Send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
	ca.ExpectSilence(200 * time.Millisecond)
	cb2.Conn.Close()
	removed := ca.Expect("pusher_internal:member_removed")
	json.Unmarshal(removed.Data, &s)
	if s != `{"user_id":"bob"}` {
		t.Fatalf("member_removed data %s", s)
	}
}

func TestPresenceRefusals(t *testing.T) {
	a := testApp("1")
	a.MaxPresenceMembers = 2
	a.MaxPresenceUserInfoBytes = 50
	ts := startServer(t, oneApp(a))
	ch := "presence-small"

	t.Run("tampered channel_data", func(t *testing.T) {
		c, sid := connect(t, ts, a.Key)
		signed := `{"user_id":"mallory"}`
		c.Subscribe(ch, channelToken(a, sid, ch, signed), `{"user_id":"admin"}`)
		c.Expect("pusher:subscription_error")
		c.Alive()
	})
	t.Run("missing channel_data", func(t *testing.T) {
		c, sid := connect(t, ts, a.Key)
		c.Subscribe(ch, channelToken(a, sid, ch, ""), "")
		c.Expect("pusher:subscription_error")
	})
	t.Run("user_info too large", func(t *testing.T) {
		c, sid := connect(t, ts, a.Key)
		cd := fmt.Sprintf(`{"user_id":"big","user_info":{"x":"%s"}}`, strings.Repeat("x", 60))
		c.Subscribe(ch, channelToken(a, sid, ch, cd), cd)
		m := c.Expect("pusher:subscription_error")
		if !strings.Contains(string(m.Data), "LimitReached") {
			t.Fatalf("%s", m.Data)
		}
	})
	t.Run("numeric user_id", func(t *testing.T) {
		c, _, p := joinPresence(t, ts, a, "presence-numbers", `{"user_id":10}`)
		if p.Presence.IDs[0] != "10" {
			t.Fatalf("ids %v", p.Presence.IDs)
		}
		c.Alive()
	})
	t.Run("member limit", func(t *testing.T) {
		joinPresence(t, ts, a, ch, `{"user_id":"u1"}`)
		joinPresence(t, ts, a, ch, `{"user_id":"u2"}`)
		// A known member's extra connection is still welcome...
		joinPresence(t, ts, a, ch, `{"user_id":"u2"}`)
		// ...but a third user is not.
		c, sid := connect(t, ts, a.Key)
		cd := `{"user_id":"u3"}`
		c.Subscribe(ch, channelToken(a, sid, ch, cd), cd)
		m := c.Expect("pusher:subscription_error")
		if !strings.Contains(string(m.Data), "LimitReached") {
			t.Fatalf("%s", m.Data)
		}
	})
}

func TestClientEvents(t *testing.T) {
	a := testApp("1")
	a.ClientEventRate = 5
	ts := startServer(t, oneApp(a))
	ch := "presence-chat"
	c1, _, _ := joinPresence(t, ts, a, ch, `{"user_id":"one"}`)
	c2, _, _ := joinPresence(t, ts, a, ch, `{"user_id":"two"}`)
	c1.Expect("pusher_internal:member_added")

	c1.Send(map[string]any{"event": "client-typing", "channel": ch, "data": map[string]any{"on": true}})
	m := c2.Expect("client-typing")
	if m.UserID != "one" || string(m.Data) != `{"on":true}` || m.Channel != ch {
		t.Fatalf("client event %+v data %s", m, m.Data)
	}
	c1.ExpectSilence(150 * time.Millisecond) // never echoed

	// Not subscribed: refused.
	c1.Send(map[string]any{"event": "client-x", "channel": "private-elsewhere", "data": 1})
	if code, _ := errorData(t, c1.Expect("pusher:error")); code == nil || *code != 4301 {
		t.Fatalf("code %v", code)
	}
	// Public channel: refused.
	c1.Subscribe("lobby", "", "")
	c1.Expect("pusher_internal:subscription_succeeded")
	c1.Send(map[string]any{"event": "client-x", "channel": "lobby", "data": 1})
	c1.Expect("pusher:error")

	// Rate limit: a burst beyond 5/s is refused with 4301 and the
	// connection stays open.
	time.Sleep(1100 * time.Millisecond)
	for i := 0; i < 20; i++ {
		c1.Send(map[string]any{"event": "client-burst", "channel": ch, "data": i})
	}
	if code, _ := errorData(t, c1.Expect("pusher:error")); code == nil || *code != 4301 {
		t.Fatalf("code %v", code)
	}
	got := 0
	for {
		m, err := c2.Next(300 * time.Millisecond)
		if err != nil {
			break
		}
		if m.Event == "client-burst" {
			got++
		}
	}
	if got != 5 {
		t.Fatalf("peer received %d burst events, want exactly 5", got)
	}
	c1.Alive()
}

func TestClientEventsDisabled(t *testing.T) {
	a := testApp("1")
	a.ClientEvents = false
	ts := startServer(t, oneApp(a))
	c, sid := connect(t, ts, a.Key)
	c.Subscribe("private-x", channelToken(a, sid, "private-x", ""), "")
	c.Expect("pusher_internal:subscription_succeeded")
	c.Send(map[string]any{"event": "client-x", "channel": "private-x", "data": 1})
	if _, msg := errorData(t, c.Expect("pusher:error")); !strings.Contains(msg, "enable") {
		t.Fatalf("message %q", msg)
	}
	c.Alive()
}

func TestCacheChannel(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	c1, _ := connect(t, ts, a.Key)
	c1.Subscribe("cache-prices", "", "")
	c1.Expect("pusher_internal:subscription_succeeded")
	if m := c1.Expect("pusher:cache_miss"); m.Channel != "cache-prices" || string(m.Data) != `"{}"` {
		t.Fatalf("cache_miss %+v %s", m, m.Data)
	}
	publish(t, ts, a.ID, "cache-prices", "price", "41")
	publish(t, ts, a.ID, "cache-prices", "price", "42")
	c1.Expect("price")
	c2, _ := connect(t, ts, a.Key)
	c2.Subscribe("cache-prices", "", "")
	c2.Expect("pusher_internal:subscription_succeeded")
	m := c2.Read()
	var d string
	json.Unmarshal(m.Data, &d)
	if m.Event != "price" || d != "42" || m.Channel != "cache-prices" {
		t.Fatalf("cached event %+v %s", m, m.Data)
	}
}

func TestSigninWatchlistAndServerToUser(t *testing.T) {
	a := testApp("1")
	a.WatchlistLimit = 2
	ts := startServer(t, oneApp(a))

	signin := func(c *wsClient, sid, userData string) {
		c.Send(map[string]any{"event": "pusher:signin", "data": map[string]any{
			"auth": auth.Token(a.Key, a.Secret, auth.UserString(sid, userData)), "user_data": userData}})
	}
	watcher, wsid := connect(t, ts, a.Key)
	signin(watcher, wsid, `{"id":"w","watchlist":["bob","carol","dave"]}`)
	m := watcher.Expect("pusher:signin_success")
	var sd struct {
		UserData string `json:"user_data"`
	}
	json.Unmarshal(m.Data, &sd)
	if sd.UserData != `{"id":"w","watchlist":["bob","carol","dave"]}` {
		t.Fatalf("signin_success %s", m.Data)
	}
	if code, _ := errorData(t, watcher.Expect("pusher:error")); code == nil || *code != 4302 {
		t.Fatalf("want 4302 for a watchlist over the limit, got %v", code)
	}
	status := watcher.Expect("pusher_internal:watchlist_events")
	if !strings.Contains(string(status.Data), `{"name":"offline","user_ids":["bob","carol"]}`) {
		t.Fatalf("initial watchlist %s", status.Data)
	}

	bob, bsid := connect(t, ts, a.Key)
	// Bad signature: refused, connection kept.
	bob.Send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": a.Key + ":00", "user_data": `{"id":"bob"}`}})
	if code, _ := errorData(t, bob.Expect("pusher:error")); code == nil || *code != 4009 {
		t.Fatalf("code %v", code)
	}
	// Someone else's server-to-user channel: refused.
	bob.Subscribe("#server-to-user-w", "", "")
	bob.Expect("pusher:subscription_error")

	signin(bob, bsid, `{"id":"bob"}`)
	bob.Expect("pusher:signin_success")
	if m := watcher.Expect("pusher_internal:watchlist_events"); string(m.Data) != `{"events":[{"name":"online","user_ids":["bob"]}]}` {
		t.Fatalf("online event %s", m.Data)
	}
	bob.Subscribe("#server-to-user-bob", "", "")
	bob.Expect("pusher_internal:subscription_succeeded")
	publish(t, ts, a.ID, "#server-to-user-bob", "dm", "hello bob")
	if m := bob.Expect("dm"); m.Channel != "#server-to-user-bob" {
		t.Fatalf("%+v", m)
	}
	watcher.ExpectSilence(100 * time.Millisecond)

	// Terminating bob closes his connection with 4009, and watchers see him go.
	if err := ts.hub.TerminateUser(t.Context(), a.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if code := bob.ExpectClose(); code != 4009 {
		t.Fatalf("terminate close %d", code)
	}
	if m := watcher.Expect("pusher_internal:watchlist_events"); string(m.Data) != `{"events":[{"name":"offline","user_ids":["bob"]}]}` {
		t.Fatalf("offline event %s", m.Data)
	}
}

// A numeric user_id is the member JavaScript's String() makes of it: 1e2
// and 100.0 are the user "100", announced so in the presence hash, in
// member_added and by the REST users endpoint, on every node of a cluster.
// The signature is still checked over the channel_data as signed.
func TestNumericUserIDSpelling(t *testing.T) {
	a := testApp("1")
	check := func(t *testing.T, n0, n1 *testServer) {
		ch := "presence-numbers"
		first, _, p := joinPresence(t, n0, a, ch, `{"user_id":1e2,"user_info":{"n":1}}`)
		if len(p.Presence.IDs) != 1 || p.Presence.IDs[0] != "100" || string(p.Presence.Hash["100"]) != `{"n":1}` {
			t.Fatalf("presence of the first member %+v", p.Presence)
		}
		other, _, p := joinPresence(t, n1, a, ch, `{"user_id":1.5}`)
		if p.Presence.Count != 2 || p.Presence.Hash["100"] == nil || p.Presence.Hash["1.5"] == nil {
			t.Fatalf("presence seen by the second member %+v", p.Presence)
		}
		added := first.Expect("pusher_internal:member_added")
		var s string
		json.Unmarshal(added.Data, &s)
		if s != `{"user_id":"1.5","user_info":{}}` && s != `{"user_id":"1.5"}` {
			t.Fatalf("member_added %s", s)
		}
		// The same user spelt otherwise is the same member: nobody is told.
		again, _, p := joinPresence(t, n1, a, ch, `{"user_id":100.0,"user_info":{"n":1}}`)
		if p.Presence.Count != 2 {
			t.Fatalf("100.0 counted as a new member: %+v", p.Presence)
		}
		first.ExpectSilence(200 * time.Millisecond)
		other.ExpectSilence(100 * time.Millisecond)
		again.Alive()
		for _, n := range []*testServer{n0, n1} {
			code, body := testkit.REST(t, n.addr, a, "GET", "/apps/1/channels/"+ch+"/users", nil, "")
			body = strings.TrimSpace(body)
			if code != 200 || (body != `{"users":[{"id":"100"},{"id":"1.5"}]}` && body != `{"users":[{"id":"1.5"},{"id":"100"}]}`) {
				t.Fatalf("users: %d %s", code, body)
			}
		}
		// Signed as 1e2, sent as 100: the signature covers what was signed.
		c, sid := connect(t, n0, a.Key)
		c.Subscribe(ch, channelToken(a, sid, ch, `{"user_id":1e2}`), `{"user_id":100}`)
		c.Expect("pusher:subscription_error")
	}
	t.Run("one node", func(t *testing.T) {
		ts := startServer(t, oneApp(a))
		check(t, ts, ts)
	})
	t.Run("cluster", func(t *testing.T) {
		rs := redistest.Start(t)
		node := func(id string) *testServer {
			cfg := config.Config{Apps: []apps.App{a}}
			cfg.Redis = config.Redis{URL: "redis://" + rs.Addr(), NodeID: id, NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
			ts := startServerLog(t, cfg, options{}, nil, slog.New(slog.DiscardHandler))
			waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
			return ts
		}
		check(t, node("a"), node("b"))
	})
}
