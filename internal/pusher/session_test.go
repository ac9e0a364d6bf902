package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/testkit"
)

// sent is one server message as a client decodes it.
type sent struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id"`
}

// take returns the messages sent on c since the last take. Every message
// must be valid UTF-8 JSON: anything else breaks pusher-js and ws clients.
func take(t *testing.T, c *testkit.Transport) []sent {
	t.Helper()
	frames := c.Take()
	out := make([]sent, 0, len(frames))
	for _, p := range frames {
		if !utf8.Valid(p) {
			t.Fatalf("frame is not valid UTF-8: %q", p)
		}
		var m sent
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatalf("frame is not JSON: %q", p)
		}
		out = append(out, m)
	}
	return out
}

func events(ms []sent) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Event
	}
	return out
}

// testNode is a front end over an in-memory hub, driven without sockets:
// the memory broker delivers synchronously, so nothing here waits.
type testNode struct {
	fe  *FrontEnd
	hub *hub.Hub
	app *apps.App
}

func newTestNode(t *testing.T, a apps.App) *testNode {
	t.Helper()
	return newTestNodeOn(t, a, broker.NewMemory(0))
}

// newTestNodeOn is newTestNode with a broker of the test's.
func newTestNodeOn(t *testing.T, a apps.App, b broker.Broker) *testNode {
	t.Helper()
	return newTestNodeWith(t, a, b, nil)
}

// newTestNodeWith is newTestNodeOn with a clock of the test's (nil: the
// real one).
func newTestNodeWith(t *testing.T, a apps.App, b broker.Broker, clock hub.SessionClock) *testNode {
	t.Helper()
	if a.ID == "" {
		a.ID, a.Key, a.Secret = "1", "key", "secret"
	}
	reg, err := apps.NewRegistry([]apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: b, Clock: clock})
	fe := New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler), Clock: clock})
	return &testNode{fe: fe, hub: h, app: reg.ByID(a.ID)}
}

type testConn struct {
	*Session
	c *testkit.Transport
	n *testNode
	t *testing.T
}

func (n *testNode) connect(t *testing.T) *testConn {
	t.Helper()
	c := &testkit.Transport{}
	c.SetLastRead(time.Now())
	hc, err := n.hub.Admit(n.app.ID, 0, c)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(n.fe, n.app, hc)
	hc.Attach(s)
	t.Cleanup(func() { s.HandleClose(nil) })
	return &testConn{Session: s, c: c, n: n, t: t}
}

func (tc *testConn) sendJSON(v any) {
	tc.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.HandleMessage(b)
}

// subscribe signs channel data as the app's backend would.
func (tc *testConn) subscribe(name, channelData string) {
	tc.t.Helper()
	d := map[string]string{"channel": name}
	if ch, err := channel.Parse(name, 200); err == nil && ch.NeedsAuth() {
		d["auth"] = auth.Token(tc.n.app.Key, tc.n.app.Secret, auth.ChannelString(tc.socketID(), name, channelData))
	}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	tc.sendJSON(map[string]any{"event": "pusher:subscribe", "data": d})
}

func (tc *testConn) signin(userData string) {
	tc.t.Helper()
	tc.sendJSON(map[string]any{"event": "pusher:signin", "data": map[string]string{
		"auth": auth.Token(tc.n.app.Key, tc.n.app.Secret, auth.UserString(tc.socketID(), userData)), "user_data": userData}})
}

// expect checks the events sent since the last take, in order.
func (tc *testConn) expect(want ...string) []sent {
	tc.t.Helper()
	// Broker work runs off the loop; what it sends is awaited here.
	if err := tc.n.hub.WaitOps(tc.t.Context()); err != nil {
		tc.t.Fatal(err)
	}
	got := take(tc.t, tc.c)
	if strings.Join(events(got), " ") != strings.Join(want, " ") {
		tc.t.Fatalf("sent %v, want %v (%s)", events(got), want, dump(got))
	}
	return got
}

func dump(ms []sent) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s %.40q %.120s; ", m.Event, m.Channel, m.Data)
	}
	return b.String()
}

type subError struct {
	Type   string `json:"type"`
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// expectRefused checks that a subscription to channel was refused with
// typ and status, as pusher:subscription_error plus pusher:error.
func (tc *testConn) expectRefused(channel, typ string, status int) {
	tc.t.Helper()
	got := tc.expect("pusher:subscription_error", "pusher:error")
	var e subError
	if err := json.Unmarshal(got[0].Data, &e); err != nil {
		tc.t.Fatal(err)
	}
	if got[0].Channel != channel || got[1].Channel != channel || e.Type != typ || e.Status != status {
		tc.t.Fatalf("refusal %s, want channel %q type %s status %d", dump(got), channel, typ, status)
	}
}

func errorCode(t *testing.T, m sent) int {
	t.Helper()
	var d struct {
		Code *int `json:"code"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Code == nil {
		return 0
	}
	return *d.Code
}

func TestSubscriptionLimit(t *testing.T) {
	n := newTestNode(t, apps.App{MaxSubscriptionsPerConnection: 3})
	c := n.connect(t)
	for _, ch := range []string{"a", "private-b", "presence-c"} {
		cd := ""
		if strings.HasPrefix(ch, "presence-") {
			cd = `{"user_id":"u"}`
		}
		c.subscribe(ch, cd)
		c.expect("pusher_internal:subscription_succeeded")
	}
	for _, ch := range []string{"d", "private-d", "presence-d"} {
		c.subscribe(ch, `{"user_id":"u"}`)
		c.expectRefused(ch, "LimitReached", 403)
	}
	// A channel already joined is not a new subscription.
	c.subscribe("a", "")
	c.expect("pusher_internal:subscription_succeeded")
	// Leaving one makes room for another.
	c.sendJSON(map[string]any{"event": "pusher:unsubscribe", "data": map[string]string{"channel": "private-b"}})
	c.subscribe("d", "")
	c.expect("pusher_internal:subscription_succeeded")
	c.subscribe("e", "")
	c.expectRefused("e", "LimitReached", 403)
	// The refused channels hold nothing on the node.
	if _, ok := c.subs.get("e"); ok {
		t.Fatal("refused channel recorded")
	}
	if got := len(c.subs.all()); got != 3 {
		t.Fatalf("%d subscriptions held, want 3", got)
	}
}

// The server-to-user channel that sign-in joins is not counted: a full
// connection may still sign in, and a signed-in one has its whole allowance.
func TestSubscriptionLimitLeavesOutOwnChannel(t *testing.T) {
	n := newTestNode(t, apps.App{MaxSubscriptionsPerConnection: 2})
	t.Run("signed in first", func(t *testing.T) {
		c := n.connect(t)
		c.signin(`{"id":"alice"}`)
		c.expect("pusher:signin_success")
		c.subscribe("x", "")
		c.subscribe("y", "")
		c.expect("pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded")
		c.subscribe("z", "")
		c.expectRefused("z", "LimitReached", 403)
		c.subscribe(channel.ServerToUserPrefix+"alice", "")
		c.expect("pusher_internal:subscription_succeeded")
	})
	t.Run("full, then signed in", func(t *testing.T) {
		c := n.connect(t)
		c.subscribe("x", "")
		c.subscribe("y", "")
		c.expect("pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded")
		c.signin(`{"id":"bob"}`)
		c.expect("pusher:signin_success")
		c.subscribe(channel.ServerToUserPrefix+"bob", "")
		c.expect("pusher_internal:subscription_succeeded")
		c.subscribe("z", "")
		c.expectRefused("z", "LimitReached", 403)
	})
}

func TestPresenceUserIDLimit(t *testing.T) {
	id := func(s string, n int) string { return strings.Repeat(s, n) }
	tests := []struct {
		name        string
		channelData string
		ok          bool
	}{
		{"128 characters", `{"user_id":"` + id("a", 128) + `"}`, true},
		{"129 characters", `{"user_id":"` + id("a", 129) + `"}`, false},
		{"60000 characters", `{"user_id":"` + id("a", 60000) + `"}`, false},
		{"128 two-byte characters", `{"user_id":"` + id("é", 128) + `"}`, true},
		{"129 two-byte characters", `{"user_id":"` + id("é", 129) + `"}`, false},
		{"128 escaped characters", `{"user_id":"` + id(`\u00e9`, 128) + `"}`, true},
		{"129 escaped characters", `{"user_id":"` + id(`\u00e9`, 129) + `"}`, false},
		// A number counts as its string form, JavaScript's: 129 digits
		// are "7.777777777777778e+128", 1e000… is "1".
		{"number of 128 digits", `{"user_id":` + id("7", 128) + `}`, true},
		{"number of 129 digits", `{"user_id":` + id("7", 129) + `}`, true},
		{"number with exponent, 129 characters", `{"user_id":1e` + id("0", 127) + `}`, true},
	}
	n := newTestNode(t, apps.App{MaxPresenceMembers: 1000})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := fmt.Sprintf("presence-room-%d", i)
			watcher := n.connect(t)
			watcher.subscribe(ch, `{"user_id":"watcher"}`)
			watcher.expect("pusher_internal:subscription_succeeded")

			c := n.connect(t)
			c.subscribe(ch, tt.channelData)
			if !tt.ok {
				c.expectRefused(ch, "LimitReached", 400)
				watcher.expect() // nobody hears of the refused member
				return
			}
			c.expect("pusher_internal:subscription_succeeded")
			watcher.expect("pusher_internal:member_added")
		})
	}
}

func TestSigninLimits(t *testing.T) {
	tests := []struct {
		name     string
		userData string
		ok       bool
	}{
		{"id of 128", `{"id":"` + strings.Repeat("u", 128) + `"}`, true},
		{"id of 129", `{"id":"` + strings.Repeat("u", 129) + `"}`, false},
		{"id of 200", `{"id":"` + strings.Repeat("u", 200) + `"}`, false},
		{"id with a space", `{"id":"a b"}`, false},
		{"numeric id", `{"id":7}`, false},
		{"user_info at the limit", `{"id":"i","user_info":"` + strings.Repeat("x", 98) + `"}`, true},
		{"user_info over the limit", `{"id":"i","user_info":"` + strings.Repeat("x", 99) + `"}`, false},
	}
	n := newTestNode(t, apps.App{MaxPresenceUserInfoBytes: 100})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := n.connect(t)
			c.signin(tt.userData)
			if tt.ok {
				c.expect("pusher:signin_success")
				return
			}
			got := c.expect("pusher:error")
			if code := errorCode(t, got[0]); code != int(CodeUnauthorized) {
				t.Fatalf("code %d, want 4009", code)
			}
			c.mu.Lock()
			u := c.signedIn()
			c.mu.Unlock()
			if u != nil {
				t.Fatal("refused sign-in left the connection signed in")
			}
		})
	}
}

func TestClientEventChecks(t *testing.T) {
	const ch = "private-chat"
	tests := []struct {
		name  string
		frame string
		ok    bool
	}{
		{"plain", `{"event":"client-x","channel":"` + ch + `","data":{"a":"é"}}`, true},
		{"event name of 200", `{"event":"client-` + strings.Repeat("e", 193) + `","channel":"` + ch + `","data":1}`, true},
		{"event name of 201", `{"event":"client-` + strings.Repeat("e", 194) + `","channel":"` + ch + `","data":1}`, false},
		{"event name of 200 two-byte characters", `{"event":"client-` + strings.Repeat("я", 193) + `","channel":"` + ch + `","data":1}`, true},
		{"event name of 201 two-byte characters", `{"event":"client-` + strings.Repeat("я", 194) + `","channel":"` + ch + `","data":1}`, false},
		{"data of max_event_bytes", `{"event":"client-x","channel":"` + ch + `","data":"` + strings.Repeat("d", 98) + `"}`, true},
		{"data over max_event_bytes", `{"event":"client-x","channel":"` + ch + `","data":"` + strings.Repeat("d", 99) + `"}`, false},
		{"invalid UTF-8 in data", `{"event":"client-x","channel":"` + ch + "\",\"data\":\"\xff\xfe\"}", false},
		{"truncated character in data", `{"event":"client-x","channel":"` + ch + "\",\"data\":{\"k\":\"\xc3\"}}", false},
		{"surrogate encoded as UTF-8 in data", `{"event":"client-x","channel":"` + ch + "\",\"data\":\"\xed\xa0\x80\"}", false},
		{"invalid UTF-8 in event name", "{\"event\":\"client-\xff\",\"channel\":\"" + ch + `","data":1}`, false},
	}
	n := newTestNode(t, apps.App{ClientEvents: true, ClientEventRate: 1000, MaxEventBytes: 100})
	sender, peer := n.connect(t), n.connect(t)
	for _, c := range []*testConn{sender, peer} {
		c.subscribe(ch, "")
		c.expect("pusher_internal:subscription_succeeded")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender.t, peer.t = t, t
			if _, err := ParseMessage([]byte(tt.frame)); err != nil {
				t.Fatalf("%q is not a frame: %v", tt.frame, err)
			}
			sender.HandleMessage([]byte(tt.frame))
			if tt.ok {
				sender.expect()
				got := peer.expect(eventOf(t, tt.frame))
				var in Message
				json.Unmarshal([]byte(tt.frame), &in)
				if string(got[0].Data) != string(in.Data) {
					t.Fatalf("relayed data %s, want %s", got[0].Data, in.Data)
				}
				return
			}
			got := sender.expect("pusher:error")
			if code := errorCode(t, got[0]); code != int(CodeClientEventRefused) {
				t.Fatalf("code %d, want 4301", code)
			}
			peer.expect()
			if code, _, _ := sender.c.Closed(); code != 0 {
				t.Fatal("refusal closed the connection")
			}
		})
	}
}

// eventOf returns the event name of a client frame.
func eventOf(t *testing.T, frame string) string {
	t.Helper()
	m, err := ParseMessage([]byte(frame))
	if err != nil {
		t.Fatal(err)
	}
	return m.Event
}

// Bytes that are not UTF-8 are refused whatever the event, and nothing is
// built from them.
func TestNonUTF8MessagesRefused(t *testing.T) {
	n := newTestNode(t, apps.App{})
	c := n.connect(t)
	for _, frame := range []string{
		"{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"room\xff\"}}",
		"{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"room\",\"x\":\"\xff\"}}",
		"{\"event\":\"pusher:ping\",\"data\":\"\xc3\"}",
		"{\"event\":\"pusher:subscribe\",\"data\":\"{\\\"channel\\\":\\\"room\xff\\\"}\"}",
	} {
		if _, err := ParseMessage([]byte(frame)); err != nil {
			t.Fatalf("%q is not a frame: %v", frame, err)
		}
		c.HandleMessage([]byte(frame))
		got := c.expect("pusher:error")
		if code := errorCode(t, got[0]); code != 0 {
			t.Errorf("%q: code %d, want null", frame, code)
		}
	}
	if len(c.subs.all()) != 0 {
		t.Fatal("a non-UTF-8 subscribe was honoured")
	}
}

// Only the first watchlist_limit ids are held for the connection's life,
// not the whole list the client sent.
func TestWatchlistHeld(t *testing.T) {
	n := newTestNode(t, apps.App{WatchlistLimit: 2})
	c := n.connect(t)
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprint("user", i))
	}
	c.signin(`{"id":"w","watchlist":[` + strings.Join(ids, ",") + `]}`)
	got := c.expect("pusher:signin_success", "pusher:error", "pusher_internal:watchlist_events")
	if code := errorCode(t, got[1]); code != int(CodeWatchlistLimit) {
		t.Fatalf("code %d, want 4302", code)
	}
	if w := c.rare.user.Watchlist; len(w) != 2 || cap(w) != 2 {
		t.Fatalf("holding %d ids (capacity %d), want 2", len(w), cap(w))
	}
}

// A watchlist names users: each entry is a user id by the rule of the
// sign-in id (a string of at most 128 of A-Z a-z 0-9 _ - = @ , . ;). A
// watchlist with any other entry, or that is not a list of strings, is
// the backend's error and refuses the sign-in with pusher:error 4009, as
// a bad id does, rather than be honoured in part: dropped entries would
// leave the app waiting for users it can never hear of.
func TestWatchlistEntriesValidated(t *testing.T) {
	long := strings.Repeat("x", 129)
	tests := []struct {
		name, watchlist, msg string
	}{
		{"too long", `["ok","` + long + `"]`, "Sign-in refused: watchlist entry 1 is not a valid user id: at most 128 of A-Z a-z 0-9 _ - = @ , . ;"},
		{"60000 characters", `["` + strings.Repeat("x", 60000) + `"]`, "Sign-in refused: watchlist entry 0 is not a valid user id: at most 128 of A-Z a-z 0-9 _ - = @ , . ;"},
		{"space", `["ok","bad id","also-ok"]`, "Sign-in refused: watchlist entry 1 is not a valid user id: at most 128 of A-Z a-z 0-9 _ - = @ , . ;"},
		{"empty", `[""]`, "Sign-in refused: watchlist entry 0 is not a valid user id: at most 128 of A-Z a-z 0-9 _ - = @ , . ;"},
		{"number", `["a",7]`, "Sign-in refused: event data has the wrong shape: user_data.watchlist must be a list of user id strings"},
		{"null entry", `[null]`, "Sign-in refused: event data has the wrong shape: user_data.watchlist must be a list of user id strings"},
		{"not a list", `"a,b"`, "Sign-in refused: event data has the wrong shape: user_data.watchlist must be a list of user id strings"},
		{"object", `{"a":1}`, "Sign-in refused: event data has the wrong shape: user_data.watchlist must be a list of user id strings"},
		{"beyond the limit", `[` + strings.Repeat(`"ok",`, 5) + `"bad id"]`, "Sign-in refused: watchlist entry 5 is not a valid user id: at most 128 of A-Z a-z 0-9 _ - = @ , . ;"},
	}
	n := newTestNode(t, apps.App{WatchlistLimit: 3})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := n.connect(t)
			c.signin(`{"id":"w","watchlist":` + tt.watchlist + `}`)
			c.expectSigninRefused(tt.msg)
			c.mu.Lock()
			u := c.signedIn()
			c.mu.Unlock()
			if u != nil {
				t.Fatalf("signed in as %+v", u)
			}
			// The connection stays, and may sign in with a good list.
			c.signin(`{"id":"w","watchlist":["ok"]}`)
			c.expect("pusher:signin_success", "pusher_internal:watchlist_events")
		})
	}
	// null or an empty list is no watchlist.
	for _, w := range []string{`null`, `[]`} {
		c := n.connect(t)
		c.signin(`{"id":"w","watchlist":` + w + `}`)
		c.expect("pusher:signin_success")
	}
}

// A client that sends pusher:ping and never reads fills its send queue and
// is cut off as a slow client.
func TestPingFloodCutsOffClient(t *testing.T) {
	n := newTestNode(t, apps.App{})
	c := n.connect(t)
	c.c.Limit = 4096
	ping := []byte(`{"event":"pusher:ping","data":{}}`)
	i := 0
	closed := func() int { code, _, _ := c.c.Closed(); return code }
	for ; i < 100000 && closed() == 0; i++ {
		c.HandleMessage(ping)
	}
	if code, _, aborted := c.c.Closed(); code != int(CodeOverCapacity) || !aborted {
		t.Fatalf("after %d pings: closed %d aborted %v, want an abort with 4100", i, code, aborted)
	}
	if max := 4096/len(pongFrame) + 1; i > max {
		t.Fatalf("cut off after %d pings, want at most %d", i, max)
	}
	if r := c.reason.Load(); r != uint32(hub.ReasonSlowConsumer)+1 {
		t.Fatalf("close reason %d, want slow consumer", r)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"},   // é is two bytes: not cut in half
		{"a€b", 3, "a…"},  // € is three
		{"a€b", 4, "a€…"}, // a cut right after a character keeps it
		{"€€", 1, "…"},    // nothing whole fits
		{"a\xffb", 10, "a\ufffdb"},
		{"\xff\xff\xffabc", 4, "\ufffda…"},
	}
	for _, tt := range tests {
		got := truncate(tt.in, tt.n)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// A client that asks faster than the broker answers can make the node hold
// at most hub.MaxPendingOps pieces of work: beyond that its subscriptions
// are refused at once (and its client events too), and nothing of the
// refused ones stays behind.
func TestPendingWorkBounded(t *testing.T) {
	slow := brokertest.NewFaulty(broker.NewMemory(0))
	slow.SetLatency(time.Hour)
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "key", Secret: "secret", MaxSubscriptionsPerConnection: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: slow})
	fe := New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler)})
	c := &testkit.Transport{}
	hc, err := h.Admit("1", 0, c)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(fe, reg.ByID("1"), hc)
	hc.Attach(s)
	const asked = hub.MaxPendingOps + 50
	for i := range asked {
		s.HandleMessage(fmt.Appendf(nil, `{"event":"pusher:subscribe","data":{"channel":"cache-%d"}}`, i))
	}
	refused := 0
	for _, m := range take(t, c) {
		if m.Event == "pusher:subscription_error" {
			refused++
		}
	}
	// The first op may already have left the queue for its goroutine.
	if refused < asked-hub.MaxPendingOps-1 || refused > asked-hub.MaxPendingOps {
		t.Fatalf("%d of %d subscriptions refused, want %d", refused, asked, asked-hub.MaxPendingOps)
	}
	s.mu.Lock()
	held := len(s.subs.all())
	s.mu.Unlock()
	if held != asked-refused {
		t.Fatalf("%d subscriptions held, want %d", held, asked-refused)
	}
	if n := len(h.Channels("1", "cache-")); n != held {
		t.Fatalf("%d channels in the hub, want %d", n, held)
	}
	h.Close(context.Background()) // cancels the waiting lookups
	s.HandleClose(nil)
}

// A presence join whose member list cannot be read is refused, and the
// join the broker did record is undone: no member is left behind that
// nobody would ever remove.
func TestFailedJoinLeavesNoGhost(t *testing.T) {
	inner := broker.NewMemory(0)
	faulty := brokertest.NewFaulty(inner)
	faulty.FailOp("members", errors.New("backend unavailable"))
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "key", Secret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: faulty})
	n := &testNode{fe: New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler)}), hub: h, app: reg.ByID("1")}
	c := n.connect(t)
	c.subscribe("presence-room", `{"user_id":"ghost"}`)
	c.expectRefused("presence-room", errTypeLimit, 503)
	members, err := inner.Members(context.Background(), "1", "presence-room")
	if err != nil || len(members) != 0 {
		t.Fatalf("members after the failed join: %v %v", members, err)
	}
	if n := h.SubscriptionCount("1", "presence-room"); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}

// An event published to a cache channel while a new subscriber's cache
// lookup is under way is both the channel's last event and held for the
// subscriber: it arrives once, right after the confirmation.
func TestCachedEventNotDoubled(t *testing.T) {
	inner := broker.NewMemory(0)
	slow := brokertest.NewFaulty(inner)
	slow.SetLatency(100 * time.Millisecond)
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "key", Secret: "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: slow})
	n := &testNode{fe: New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler)}), hub: h, app: reg.ByID("1")}
	c := n.connect(t)
	c.subscribe("cache-news", "")
	// Straight into the memory broker: cached and fanned out at once,
	// while the subscriber's lookup still waits.
	if err := inner.Publish(context.Background(), broker.Message{AppID: "1", Channel: "cache-news", Event: "e", Data: "d", Cache: true}); err != nil {
		t.Fatal(err)
	}
	c.expect("pusher_internal:subscription_succeeded", "e")
}

// slowInterest is a broker whose node interest in a channel takes effect
// only when the test says so, like a shared broker waiting for its backend
// to confirm a subscription.
type slowInterest struct {
	*broker.Memory
	mu      sync.Mutex
	ready   map[string]bool
	release chan struct{}
}

func (b *slowInterest) InterestReady(appID, ch string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready[ch]
}

func (b *slowInterest) AwaitInterest(ctx context.Context, appID, ch string) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.ready[ch] = true
	b.mu.Unlock()
	return nil
}

// On a node that does not yet receive a channel's cluster messages, a
// subscription is confirmed only once it does, whatever the channel's kind,
// and then at once for the next subscriber.
func TestConfirmationWaitsForClusterInterest(t *testing.T) {
	b := &slowInterest{Memory: broker.NewMemory(0), ready: map[string]bool{}, release: make(chan struct{})}
	n := newTestNodeOn(t, apps.App{}, b)
	c := n.connect(t)
	for _, name := range []string{"news", "private-a", "presence-a", "cache-a"} {
		data := ""
		if strings.HasPrefix(name, "presence-") {
			data = `{"user_id":"u"}`
		}
		c.subscribe(name, data)
	}
	time.Sleep(20 * time.Millisecond)
	if got := take(t, c.c); len(got) != 0 {
		t.Fatalf("sent %v before the node's interest took effect", events(got))
	}
	close(b.release)
	c.expect("pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded",
		"pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded", "pusher:cache_miss")
	c2 := n.connect(t)
	c2.subscribe("news", "")
	// Ready now: confirmed in the loop, before any off-loop work ran.
	if got := take(t, c2.c); len(got) != 1 || got[0].Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("second subscriber got %v, want an immediate confirmation", events(got))
	}
}

// Sign-in subscribes the user's own channel, which carries send-to-user
// events: its success comes once the node receives that channel's cluster
// messages, and a send-to-user event published after it arrives.
func TestSigninWaitsForClusterInterest(t *testing.T) {
	b := &slowInterest{Memory: broker.NewMemory(0), ready: map[string]bool{}, release: make(chan struct{})}
	n := newTestNodeOn(t, apps.App{}, b)
	h := n.hub
	c := n.connect(t)
	c.signin(`{"id":"u"}`)
	time.Sleep(20 * time.Millisecond)
	if got := take(t, c.c); len(got) != 0 {
		t.Fatalf("sent %v before the user's channel took effect on the cluster", events(got))
	}
	close(b.release)
	c.expect("pusher:signin_success")
	if err := h.Publish(t.Context(), broker.Message{AppID: "1", Channel: "#server-to-user-u", Event: "hello", Data: "x"}, hub.SourceREST); err != nil {
		t.Fatal(err)
	}
	c.expect("hello")
}

// gatedJoin is a broker whose presence joins wait until the test releases
// them, like a shared broker slow to answer.
type gatedJoin struct {
	*broker.Memory
	release chan struct{}
}

func (b *gatedJoin) Join(ctx context.Context, appID, channel, connID string, m broker.Member, maxMembers int) (bool, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return b.Memory.Join(ctx, appID, channel, connID, m, maxMembers)
}

// A client event on a channel whose subscription is not yet confirmed is
// refused: a presence join still waiting on the broker may yet be refused
// (here the channel is full), and its members must hear nothing from a
// connection that never became one of them.
func TestClientEventBeforeConfirmationRefused(t *testing.T) {
	b := &gatedJoin{Memory: broker.NewMemory(0), release: make(chan struct{}, 2)}
	n := newTestNodeOn(t, apps.App{ClientEvents: true, ClientEventRate: 100, MaxPresenceMembers: 1}, b)
	member, joiner := n.connect(t), n.connect(t)
	b.release <- struct{}{}
	member.subscribe("presence-room", `{"user_id":"member"}`)
	member.expect("pusher_internal:subscription_succeeded")

	joiner.subscribe("presence-room", `{"user_id":"intruder"}`)
	joiner.HandleMessage([]byte(`{"event":"client-x","channel":"presence-room","data":{"from":"intruder"}}`))
	got := take(t, joiner.c)
	if len(got) != 1 || got[0].Event != "pusher:error" || errorCode(t, got[0]) != int(CodeClientEventRefused) {
		t.Fatalf("client event before confirmation: sent %s, want pusher:error 4301", dump(got))
	}
	b.release <- struct{}{}
	joiner.expectRefused("presence-room", errTypeLimit, 403)
	member.expect()
}

// The signed-in user's own channel may be left and joined again: the
// confirmation of the new subscription is a real one (send-to-user events
// arrive again), and while it is left the channel no longer stands in for
// a subscription that does not count.
func TestOwnChannelLeftAndJoinedAgain(t *testing.T) {
	n := newTestNode(t, apps.App{MaxSubscriptionsPerConnection: 1})
	c := n.connect(t)
	own := channel.ServerToUserPrefix + "alice"
	c.signin(`{"id":"alice"}`)
	c.expect("pusher:signin_success")
	c.sendJSON(map[string]any{"event": "pusher:unsubscribe", "data": map[string]string{"channel": own}})
	c.subscribe("x", "")
	c.expect("pusher_internal:subscription_succeeded")
	c.subscribe("y", "")
	c.expectRefused("y", "LimitReached", 403)

	c.subscribe(own, "")
	c.expect("pusher_internal:subscription_succeeded")
	if err := n.hub.Publish(t.Context(), broker.Message{AppID: "1", Channel: own, Event: "hello", Data: "x"}, hub.SourceREST); err != nil {
		t.Fatal(err)
	}
	c.expect("hello")
	c.subscribe("y", "")
	c.expectRefused("y", "LimitReached", 403)
}

// Leaving and joining the own channel again while the cluster has not yet
// confirmed it queues a wait each time: those waits are bounded like any
// subscription's, the joins beyond the bound refused.
func TestOwnChannelRejoinsBounded(t *testing.T) {
	b := &slowInterest{Memory: broker.NewMemory(0), ready: map[string]bool{}, release: make(chan struct{})}
	n := newTestNodeOn(t, apps.App{}, b)
	c := n.connect(t)
	own := channel.ServerToUserPrefix + "alice"
	c.signin(`{"id":"alice"}`)
	const asked = hub.MaxPendingOps + 50
	for range asked {
		c.sendJSON(map[string]any{"event": "pusher:unsubscribe", "data": map[string]string{"channel": own}})
		c.subscribe(own, "")
	}
	refused := 0
	for _, m := range take(t, c.c) {
		if m.Event == "pusher:subscription_error" {
			refused++
		}
	}
	// The sign-in's wait is queued too, and the first may already have
	// left the queue for its goroutine.
	if refused < asked-hub.MaxPendingOps || refused > asked-hub.MaxPendingOps+2 {
		t.Fatalf("%d of %d joins refused, want about %d", refused, asked, asked-hub.MaxPendingOps)
	}
	close(b.release)
}

// Once the server has begun to close a connection (here the app terminated
// its user), what the client still sends while the close completes is
// ignored: a terminated user cannot go on sending client events, nor join
// channels, in the seconds a client that does not answer the close frame
// keeps its socket.
func TestNothingHandledAfterServerClose(t *testing.T) {
	n := newTestNode(t, apps.App{ClientEvents: true, ClientEventRate: 100})
	sender, peer := n.connect(t), n.connect(t)
	sender.signin(`{"id":"banned"}`)
	sender.expect("pusher:signin_success")
	for _, c := range []*testConn{sender, peer} {
		c.subscribe("private-chat", "")
		c.expect("pusher_internal:subscription_succeeded")
	}
	if err := n.hub.TerminateUser(t.Context(), "1", "banned"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := sender.c.Closed(); code != int(CodeUnauthorized) {
		t.Fatalf("terminated connection closed with %d, want 4009", code)
	}
	take(t, sender.c)
	sender.HandleMessage([]byte(`{"event":"client-x","channel":"private-chat","data":{"after":"terminate"}}`))
	sender.subscribe("presence-room", `{"user_id":"banned"}`)
	n.hub.WaitOps(t.Context())
	peer.expect()
	if got := len(sender.subs.all()); got != 2 {
		t.Fatalf("%d subscriptions after the close began, want the 2 from before", got)
	}
}

// A subscribe that names its channel but whose other fields have the wrong
// type is refused for that channel, saying what is wrong: a client waiting
// on the channel learns it failed, and is not told it named none.
func TestSubscribeWithBadFieldRefusesChannel(t *testing.T) {
	n := newTestNode(t, apps.App{})
	c := n.connect(t)
	c.HandleMessage([]byte(`{"event":"pusher:subscribe","data":{"channel":"private-a","auth":5}}`))
	got := c.expect("pusher:subscription_error", "pusher:error")
	if got[0].Channel != "private-a" || got[1].Channel != "private-a" || strings.Contains(string(got[1].Data), "no channel") {
		t.Fatalf("refusal %s", dump(got))
	}
	c.HandleMessage([]byte(`{"event":"pusher:subscribe","data":{"auth":"x"}}`))
	got = c.expect("pusher:error")
	if !strings.Contains(string(got[0].Data), "no channel") {
		t.Fatalf("refusal %s", dump(got))
	}
	if len(c.subs.all()) != 0 {
		t.Fatal("a malformed subscribe was honoured")
	}
}

// A connection that joins and leaves a presence channel in a loop makes
// every member receive two events a round. Joins are bounded per
// connection: a burst of ten seconds' worth, then presence_join_rate a
// second, refused with LimitReached 429 and announced to nobody. Other
// subscriptions and other connections are not held to it.
func TestPresenceJoinRate(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_700_000_000, 0))
	n := newTestNodeWith(t, apps.App{PresenceJoinRate: 2}, broker.NewMemory(0), clock)
	const room = "presence-room"
	watcher := n.connect(t)
	watcher.subscribe(room, `{"user_id":"watcher"}`)
	watcher.expect("pusher_internal:subscription_succeeded")

	c := n.connect(t)
	leave := func() {
		c.sendJSON(map[string]any{"event": "pusher:unsubscribe", "data": map[string]string{"channel": room}})
	}
	for i := 0; i < 20; i++ { // the burst: 10 s × 2
		c.subscribe(room, `{"user_id":"flapper"}`)
		c.expect("pusher_internal:subscription_succeeded")
		leave()
		watcher.expect("pusher_internal:member_added", "pusher_internal:member_removed")
	}
	c.subscribe(room, `{"user_id":"flapper"}`)
	c.expectRefused(room, "LimitReached", 429)
	watcher.expect()
	if got := n.hub.SubscriptionCount(n.app.ID, room); got != 1 {
		t.Fatalf("%d subscribers after the refused join, want 1", got)
	}

	// Other subscriptions are not joins, and another connection has a
	// bucket of its own.
	c.subscribe("public-news", "")
	c.subscribe("private-x", "")
	c.expect("pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded")
	other := n.connect(t)
	other.subscribe(room, `{"user_id":"other"}`)
	other.expect("pusher_internal:subscription_succeeded")
	watcher.expect("pusher_internal:member_added")

	// The bucket refills at the rate: one join per half second.
	clock.Advance(499 * time.Millisecond)
	c.subscribe(room, `{"user_id":"flapper"}`)
	c.expectRefused(room, "LimitReached", 429)
	clock.Advance(2 * time.Millisecond)
	c.subscribe(room, `{"user_id":"flapper"}`)
	c.expect("pusher_internal:subscription_succeeded")
	watcher.expect("pusher_internal:member_added")
}

// A user id the watchlist names twice is watched once: the first list
// names it once, and its changes come once.
func TestWatchlistDuplicatesWatchedOnce(t *testing.T) {
	n := newTestNode(t, apps.App{})
	c := n.connect(t)
	c.signin(`{"id":"w","watchlist":["a","w","a","b","w"]}`)
	got := c.expect("pusher:signin_success", "pusher_internal:watchlist_events")
	if want := `{"events":[{"name":"online","user_ids":["w"]},{"name":"offline","user_ids":["a","b"]}]}`; string(got[1].Data) != want {
		t.Fatalf("first list %s, want %s", got[1].Data, want)
	}
	if fmt.Sprint(c.rare.user.Watchlist) != "[a w b]" {
		t.Fatalf("holding %q", c.rare.user.Watchlist)
	}
}
