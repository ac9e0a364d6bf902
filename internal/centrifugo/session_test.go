package centrifugo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/testkit"
)

const secret = "secret"

// token signs claims with HS256 and the app's secret, as a backend would.
func token(t *testing.T, claims map[string]any) string {
	return tokenWith(t, secret, claims)
}

func tokenWith(t *testing.T, key string, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(p)
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(m.Sum(nil))
}

var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type testNode struct {
	fe    *FrontEnd
	hub   *hub.Hub
	app   *apps.App
	clock *testkit.Clock
}

func newTestNode(t *testing.T, a apps.App) *testNode {
	t.Helper()
	a.ID, a.Key, a.Secret = "1", "key", secret
	reg, err := apps.NewRegistry([]apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(start)
	h := hub.New(hub.Config{Broker: broker.NewMemory(0), Clock: clock})
	fe := New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler), Clock: clock,
		PingInterval: 10 * time.Second, PongTimeout: 5 * time.Second, ExpiredDelay: 25 * time.Second, StaleDelay: 10 * time.Second})
	return &testNode{fe: fe, hub: h, app: reg.ByID(a.ID), clock: clock}
}

type testConn struct {
	*Session
	c *testkit.Transport
	n *testNode
	t *testing.T
}

func (n *testNode) dial(t *testing.T) *testConn {
	t.Helper()
	c := &testkit.Transport{}
	c.SetLastRead(n.clock.Now())
	hc, err := n.hub.Admit(n.app.ID, 0, c)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(n.fe, n.app, hc)
	hc.Attach(s)
	s.start()
	t.Cleanup(func() { s.HandleClose(nil) })
	return &testConn{Session: s, c: c, n: n, t: t}
}

// connect dials and connects as user.
func (n *testNode) connect(t *testing.T, user string) *testConn {
	t.Helper()
	tc := n.dial(t)
	tc.cmd(1, "connect", map[string]any{"token": token(t, map[string]any{"sub": user, "info": map[string]string{"name": user}})})
	if r := tc.replies(); len(r) != 1 || r[0]["connect"] == nil {
		t.Fatalf("connect: %v", r)
	}
	return tc
}

func (tc *testConn) cmd(id uint32, method string, body any) {
	tc.t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, method: body})
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.HandleMessage(b)
}

// replies returns what was sent since the last call, each decoded. Every
// message must be one JSON object without a newline.
func (tc *testConn) replies() []map[string]json.RawMessage {
	tc.t.Helper()
	if err := tc.n.hub.WaitOps(tc.t.Context()); err != nil {
		tc.t.Fatal(err)
	}
	var out []map[string]json.RawMessage
	for _, p := range tc.c.Take() {
		if strings.ContainsRune(string(p), '\n') {
			tc.t.Fatalf("message with a newline: %q", p)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(p, &m); err != nil {
			tc.t.Fatalf("not JSON: %q", p)
		}
		out = append(out, m)
	}
	return out
}

// texts returns what was sent since the last call, as text.
func (tc *testConn) texts() []string {
	tc.t.Helper()
	var out []string
	for _, r := range tc.replies() {
		b, _ := json.Marshal(r)
		var v any
		json.Unmarshal(b, &v)
		b, _ = json.Marshal(v) // keys sorted at every level: stable
		out = append(out, string(b))
	}
	return out
}

func (tc *testConn) expect(want ...string) {
	tc.t.Helper()
	got := tc.texts()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		tc.t.Fatalf("sent\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (tc *testConn) expectClosed(code int, reason string) {
	tc.t.Helper()
	got, why, _ := tc.c.Closed()
	if got != code || why != reason {
		tc.t.Fatalf("closed %d %q, want %d %q", got, why, code, reason)
	}
}

func (tc *testConn) expectOpen() {
	tc.t.Helper()
	if code, why, _ := tc.c.Closed(); code != 0 {
		tc.t.Fatalf("closed %d %q", code, why)
	}
}

func publish(t *testing.T, n *testNode, m broker.Message) {
	t.Helper()
	m.AppID = n.app.ID
	if err := n.hub.Publish(t.Context(), m, hub.SourceREST); err != nil {
		t.Fatal(err)
	}
}

func TestConnect(t *testing.T) {
	n := newTestNode(t, apps.App{})
	exp := start.Add(time.Minute).Unix()
	tests := []struct {
		name  string
		token string
		want  string // a reply, or "" when the connection is closed
		code  int
		why   string
	}{
		{"valid", token(t, map[string]any{"sub": "u1"}), `{"connect":{"client":"ID","ping":10,"pong":true,"version":"herald"},"id":1}`, 0, ""},
		{"expiring", token(t, map[string]any{"sub": "u1", "exp": exp}), `{"connect":{"client":"ID","expires":true,"ping":10,"pong":true,"ttl":60,"version":"herald"},"id":1}`, 0, ""},
		{"empty sub is anonymous", token(t, map[string]any{"sub": ""}), `{"connect":{"client":"ID","ping":10,"pong":true,"version":"herald"},"id":1}`, 0, ""},
		{"expired", token(t, map[string]any{"sub": "u1", "exp": start.Add(-time.Second).Unix()}), `{"error":{"code":109,"message":"token expired"},"id":1}`, 0, ""},
		{"no token", "", "", CloseBadRequest, "bad request"},
		{"wrong key", tokenWith(t, "other", map[string]any{"sub": "u1"}), "", CloseInvalidToken, "invalid token"},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u1"}`)) + ".", "", CloseInvalidToken, "invalid token"},
		{"garbage", "abc", "", CloseInvalidToken, "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := n.dial(t)
			tc.cmd(1, "connect", map[string]any{"token": tt.token, "name": "js"})
			if tt.want == "" {
				tc.expect()
				tc.expectClosed(tt.code, tt.why)
				return
			}
			tc.expect(strings.ReplaceAll(tt.want, "ID", tc.SocketID()))
			tc.expectOpen()
		})
	}
}

func TestCommandsBeforeConnect(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.dial(t)
	tc.cmd(1, "subscribe", map[string]any{"channel": "news"})
	tc.expectClosed(CloseBadRequest, "bad request")

	tc = n.dial(t)
	tc.HandleMessage([]byte("not json"))
	tc.expectClosed(CloseBadRequest, "bad request")

	// An asynchronous message is a command too: before connect, 3501.
	tc = n.dial(t)
	tc.HandleMessage([]byte(`{"send":{"data":{}}}`))
	tc.expectClosed(CloseBadRequest, "bad request")
}

// The commands of one message are handled in order: connect first, then
// the subscribe that came with it.
func TestBatchedConnectSubscribe(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.dial(t)
	tok := token(t, map[string]any{"sub": "u1"})
	tc.HandleMessage([]byte(`{"connect":{"token":"` + tok + `","name":"js"},"id":1}` + "\n" +
		`{"subscribe":{"channel":"news","flag":1},"id":2}` + "\n" + `{}` + "\n" + `{"send":{"data":1}}`))
	got := tc.texts()
	if len(got) != 2 || !strings.Contains(got[0], `"connect"`) || got[1] != `{"id":2,"subscribe":{}}` {
		t.Fatalf("sent %v", got)
	}
	tc.expectOpen()
}

func TestPublicationsFromPusherSide(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "news"})
	tc.expect(`{"id":2,"subscribe":{}}`)
	publish(t, n, broker.Message{Channel: "news", Event: "greet", Data: "{\n \"a\": [1, 2]\n}"})
	publish(t, n, broker.Message{Channel: "news", Event: "text", Data: "hello"})
	publish(t, n, broker.Message{Channel: "news", Event: "client-x", Data: `{"b":true}`, DataJSON: true, UserID: "u9"})
	publish(t, n, broker.Message{Channel: "other", Event: "e", Data: "x"})
	tc.expect(
		`{"push":{"channel":"news","pub":{"data":{"a":[1,2]},"tags":{"event":"greet"}}}}`,
		`{"push":{"channel":"news","pub":{"data":"hello","tags":{"event":"text"}}}}`,
		`{"push":{"channel":"news","pub":{"data":{"b":true},"info":{"client":"","user":"u9"},"tags":{"event":"client-x"}}}}`,
	)
	tc.cmd(3, "unsubscribe", map[string]any{"channel": "news"})
	tc.expect(`{"id":3,"unsubscribe":{}}`)
	publish(t, n, broker.Message{Channel: "news", Event: "greet", Data: "1"})
	tc.expect()
}

func TestSubscribeTokens(t *testing.T) {
	n := newTestNode(t, apps.App{})
	exp := start.Add(30 * time.Second).Unix()
	type claims = map[string]any
	tests := []struct {
		name, channel string
		claims        claims // nil: no token
		key           string
		want          string // reply; "" when the connection closes
		code          int
	}{
		{"plain channel, no token", "news", nil, "", `{"id":2,"subscribe":{}}`, 0},
		{"plain channel, token accepted", "news", claims{"sub": "u1", "channel": "news"}, "", `{"id":2,"subscribe":{}}`, 0},
		{"$ without token", "$secret", nil, "", `{"error":{"code":103,"message":"permission denied"},"id":2}`, 0},
		{"private without token", "private-a", nil, "", `{"error":{"code":103,"message":"permission denied"},"id":2}`, 0},
		{"presence without token", "presence-a", nil, "", `{"error":{"code":103,"message":"permission denied"},"id":2}`, 0},
		{"$ with token", "$secret", claims{"sub": "u1", "channel": "$secret", "exp": exp}, "", `{"id":2,"subscribe":{"expires":true,"ttl":30}}`, 0},
		{"private with token", "private-a", claims{"sub": "u1", "channel": "private-a"}, "", `{"id":2,"subscribe":{}}`, 0},
		{"client claim matches", "$secret", claims{"sub": "u1", "channel": "$secret", "client": "ID"}, "", `{"id":2,"subscribe":{}}`, 0},
		{"expired", "$secret", claims{"sub": "u1", "channel": "$secret", "exp": start.Add(-time.Second).Unix()}, "", `{"error":{"code":109,"message":"token expired"},"id":2}`, 0},
		{"bad signature", "$secret", claims{"sub": "u1", "channel": "$secret"}, "other", `{"error":{"code":103,"message":"permission denied"},"id":2}`, 0},
		{"no channel claim", "$secret", claims{"sub": "u1"}, "", `{"error":{"code":103,"message":"permission denied"},"id":2}`, 0},
		{"another channel", "$secret", claims{"sub": "u1", "channel": "$other"}, "", "", CloseInvalidToken},
		{"another user", "$secret", claims{"sub": "u2", "channel": "$secret"}, "", "", CloseInvalidToken},
		{"another client", "$secret", claims{"sub": "u1", "channel": "$secret", "client": "x.y"}, "", "", CloseInvalidToken},
		{"encrypted refused", "private-encrypted-a", claims{"sub": "u1", "channel": "private-encrypted-a"}, "", `{"error":{"code":103,"message":"permission denied"},"id":2}`, 0},
		{"invalid name", "bad name!", nil, "", `{"error":{"code":107,"message":"bad request"},"id":2}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := n.connect(t, "u1")
			body := map[string]any{"channel": tt.channel}
			if tt.claims != nil {
				if tt.claims["client"] == "ID" {
					tt.claims["client"] = tc.SocketID()
				}
				key := tt.key
				if key == "" {
					key = secret
				}
				body["token"] = tokenWith(t, key, tt.claims)
			}
			tc.cmd(2, "subscribe", body)
			if tt.want == "" {
				tc.expect()
				tc.expectClosed(tt.code, "invalid token")
				return
			}
			tc.expect(tt.want)
			tc.expectOpen()
		})
	}
}

func TestDuplicateAndLimit(t *testing.T) {
	n := newTestNode(t, apps.App{MaxSubscriptionsPerConnection: 2})
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "a"})
	tc.cmd(3, "subscribe", map[string]any{"channel": "a"})
	tc.cmd(4, "subscribe", map[string]any{"channel": "b"})
	tc.cmd(5, "subscribe", map[string]any{"channel": "c"})
	tc.expect(`{"id":2,"subscribe":{}}`,
		`{"error":{"code":105,"message":"already subscribed"},"id":3}`,
		`{"id":4,"subscribe":{}}`,
		`{"error":{"code":106,"message":"limit exceeded"},"id":5}`)
}

func TestClientPublish(t *testing.T) {
	for _, allowed := range []bool{false, true} {
		t.Run(fmt.Sprint(allowed), func(t *testing.T) {
			n := newTestNode(t, apps.App{ClientPublish: allowed})
			rec := &testkit.Subscriber{ID: "pusher.1"}
			n.hub.Subscribe(n.app.ID, "news", rec)
			tc := n.connect(t, "u1")
			tc.cmd(2, "publish", map[string]any{"channel": "news", "data": map[string]int{"n": 1}})
			tc.expect(`{"error":{"code":103,"message":"permission denied"},"id":2}`)
			tc.cmd(3, "subscribe", map[string]any{"channel": "news"})
			tc.cmd(4, "publish", map[string]any{"channel": "news", "data": map[string]int{"n": 1}})
			if !allowed {
				tc.expect(`{"id":3,"subscribe":{}}`, `{"error":{"code":103,"message":"permission denied"},"id":4}`)
				if len(rec.Messages()) != 0 {
					t.Fatal("a refused publication was delivered")
				}
				return
			}
			// The publisher gets its own publication, as in Centrifugo.
			tc.expect(`{"id":3,"subscribe":{}}`,
				`{"push":{"channel":"news","pub":{"data":{"n":1},"info":{"client":"","user":"u1"},"tags":{"event":"publication"}}}}`,
				`{"id":4,"publish":{}}`)
			ms := rec.Messages()
			if len(ms) != 1 || ms[0].Event != PublicationEvent || ms[0].Data != `{"n":1}` || !ms[0].DataJSON {
				t.Fatalf("Pusher side got %+v", ms)
			}
		})
	}
}

// Publishes are bounded by the app's client_event_rate, per connection,
// as Pusher client events are: over it, 111 and nothing published.
func TestClientPublishRate(t *testing.T) {
	n := newTestNode(t, apps.App{ClientPublish: true, ClientEventRate: 3})
	rec := &testkit.Subscriber{ID: "pusher.1"}
	n.hub.Subscribe(n.app.ID, "news", rec)
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "news"})
	tc.replies()
	for i := range 4 {
		tc.cmd(uint32(10+i), "publish", map[string]any{"channel": "news", "data": i})
	}
	got := strings.Join(tc.texts(), "\n")
	if !strings.Contains(got, `{"error":{"code":111,"message":"too many requests","temporary":true},"id":13}`) || len(rec.Messages()) != 3 {
		t.Fatalf("sent %s; %d published", got, len(rec.Messages()))
	}
	n.clock.Advance(time.Second)
	tc.cmd(20, "publish", map[string]any{"channel": "news", "data": 9})
	if got := strings.Join(tc.texts(), "\n"); !strings.Contains(got, `{"id":20,"publish":{}}`) || len(rec.Messages()) != 4 {
		t.Fatalf("after a second: sent %s; %d published", got, len(rec.Messages()))
	}
}

func TestPresence(t *testing.T) {
	n := newTestNode(t, apps.App{})
	sub := func(tc *testConn, user string, id uint32) {
		tc.cmd(id, "subscribe", map[string]any{"channel": "presence-room", "join_leave": true, "token": token(t, map[string]any{"sub": user, "channel": "presence-room"})})
	}
	a := n.connect(t, "u1")
	sub(a, "u1", 2)
	a.expect(`{"id":2,"subscribe":{}}`,
		`{"push":{"channel":"presence-room","join":{"info":{"client":"u1","conn_info":{"name":"u1"},"user":"u1"}}}}`)
	b := n.connect(t, "u2")
	sub(b, "u2", 2)
	b.expect(`{"id":2,"subscribe":{}}`,
		`{"push":{"channel":"presence-room","join":{"info":{"client":"u2","conn_info":{"name":"u2"},"user":"u2"}}}}`)
	a.expect(`{"push":{"channel":"presence-room","join":{"info":{"client":"u2","conn_info":{"name":"u2"},"user":"u2"}}}}`)

	a.cmd(3, "presence", map[string]any{"channel": "presence-room"})
	a.cmd(4, "presence_stats", map[string]any{"channel": "presence-room"})
	a.expect(`{"id":3,"presence":{"presence":{"u1":{"client":"u1","conn_info":{"name":"u1"},"user":"u1"},"u2":{"client":"u2","conn_info":{"name":"u2"},"user":"u2"}}}}`,
		`{"id":4,"presence_stats":{"num_clients":2,"num_users":2}}`)

	// A member joining through the Pusher front end is announced the
	// same way; so is its departure.
	publish(t, n, broker.Message{Kind: broker.KindMemberAdded, Channel: "presence-room", UserID: "p1", Data: `{"name":"P"}`})
	publish(t, n, broker.Message{Kind: broker.KindMemberRemoved, Channel: "presence-room", UserID: "p1"})
	a.expect(`{"push":{"channel":"presence-room","join":{"info":{"client":"p1","conn_info":{"name":"P"},"user":"p1"}}}}`,
		`{"push":{"channel":"presence-room","leave":{"info":{"client":"p1","user":"p1"}}}}`)

	if got := b.texts(); len(got) != 2 {
		t.Fatalf("the other member got %v", got)
	}
	b.cmd(3, "unsubscribe", map[string]any{"channel": "presence-room"})
	b.expect(`{"id":3,"unsubscribe":{}}`)
	a.expect(`{"push":{"channel":"presence-room","leave":{"info":{"client":"u2","user":"u2"}}}}`)

	// Presence needs a subscription, and a presence channel.
	b.cmd(4, "presence", map[string]any{"channel": "presence-room"})
	b.cmd(5, "subscribe", map[string]any{"channel": "news"})
	b.cmd(6, "presence", map[string]any{"channel": "news"})
	b.expect(`{"error":{"code":103,"message":"permission denied"},"id":4}`, `{"id":5,"subscribe":{}}`,
		`{"error":{"code":108,"message":"not available"},"id":6}`)

	// An anonymous connection cannot be a member.
	c := n.connect(t, "")
	sub(c, "", 2)
	c.expect(`{"error":{"code":103,"message":"permission denied"},"id":2}`)

	// Without join_leave a member gets no join or leave pushes, its own
	// included, while publications still arrive; the others still see it.
	d := n.connect(t, "u4")
	d.cmd(2, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u4", "channel": "presence-room"})})
	d.expect(`{"id":2,"subscribe":{}}`)
	a.expect(`{"push":{"channel":"presence-room","join":{"info":{"client":"u4","conn_info":{"name":"u4"},"user":"u4"}}}}`)
	publish(t, n, broker.Message{Kind: broker.KindMemberAdded, Channel: "presence-room", UserID: "p2"})
	publish(t, n, broker.Message{Channel: "presence-room", Event: "e", Data: `1`})
	d.expect(`{"push":{"channel":"presence-room","pub":{"data":1,"tags":{"event":"e"}}}}`)
	a.texts()
	d.cmd(3, "unsubscribe", map[string]any{"channel": "presence-room"})
	d.expect(`{"id":3,"unsubscribe":{}}`)
	a.expect(`{"push":{"channel":"presence-room","leave":{"info":{"client":"u4","user":"u4"}}}}`)

	// Unsubscribing forgets the request: a resubscription without it
	// gets no pushes.
	a.cmd(5, "unsubscribe", map[string]any{"channel": "presence-room"})
	a.cmd(6, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u1", "channel": "presence-room"})})
	a.expect(`{"id":5,"unsubscribe":{}}`, `{"id":6,"subscribe":{}}`)
	publish(t, n, broker.Message{Kind: broker.KindMemberAdded, Channel: "presence-room", UserID: "p3"})
	a.expect()
}

func TestUnsupportedCommands(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.connect(t, "u1")
	tc.cmd(2, "rpc", map[string]any{"method": "m"})
	tc.cmd(3, "history", map[string]any{"channel": "news"})
	tc.HandleMessage([]byte(`{"send":{"data":{}}}`))
	tc.expect(`{"error":{"code":108,"message":"not available"},"id":2}`, `{"error":{"code":108,"message":"not available"},"id":3}`)
	tc.HandleMessage([]byte(`{"id":7,"nothing":{}}`))
	tc.expectClosed(CloseBadRequest, "bad request")
}

func TestRefresh(t *testing.T) {
	n := newTestNode(t, apps.App{})
	exp := start.Add(time.Hour).Unix()
	tc := n.connect(t, "u1")
	tc.cmd(2, "refresh", map[string]any{"token": token(t, map[string]any{"sub": "u1", "exp": exp})})
	tc.expect(fmt.Sprintf(`{"id":2,"refresh":{"client":"%s","expires":true,"ttl":3600,"version":"herald"}}`, tc.SocketID()))

	tc.cmd(3, "refresh", map[string]any{"token": token(t, map[string]any{"sub": "u2", "exp": exp})})
	tc.expectClosed(CloseInvalidToken, "invalid token")

	tc = n.connect(t, "u1")
	tc.cmd(2, "refresh", map[string]any{"token": token(t, map[string]any{"sub": "u1", "exp": start.Add(-time.Second).Unix()})})
	tc.expectClosed(CloseExpired, "connection expired")
}

func TestSubRefresh(t *testing.T) {
	n := newTestNode(t, apps.App{})
	subTok := func(exp time.Time) string {
		return token(t, map[string]any{"sub": "u1", "channel": "$s", "exp": exp.Unix()})
	}
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "$s", "token": subTok(start.Add(10 * time.Second))})
	tc.cmd(3, "sub_refresh", map[string]any{"channel": "$s", "token": subTok(start.Add(time.Minute))})
	tc.cmd(4, "sub_refresh", map[string]any{"channel": "$t", "token": subTok(start.Add(time.Minute))})
	tc.expect(`{"id":2,"subscribe":{"expires":true,"ttl":10}}`, `{"id":3,"sub_refresh":{"expires":true,"ttl":60}}`,
		`{"error":{"code":103,"message":"permission denied"},"id":4}`)
	// A correctly signed token that has expired is refused.
	tc.cmd(5, "sub_refresh", map[string]any{"channel": "$s", "token": subTok(start.Add(-time.Second))})
	tc.expectClosed(CloseSubExpired, "subscription expired")
}

func TestPingPong(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.connect(t, "u1")
	n.clock.Advance(10 * time.Second)
	tc.expect(`{}`)
	tc.c.SetLastRead(n.clock.Now().Add(time.Second)) // the pong
	n.clock.Advance(10 * time.Second)
	tc.expect(`{}`)
	tc.expectOpen()
	n.clock.Advance(5 * time.Second)
	tc.expectClosed(CloseNoPong, "no pong")
}

func TestStale(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.dial(t)
	n.clock.Advance(9 * time.Second)
	tc.expectOpen()
	n.clock.Advance(time.Second)
	tc.expectClosed(CloseStale, "stale")
}

func TestExpiry(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.dial(t)
	tc.cmd(1, "connect", map[string]any{"token": token(t, map[string]any{"sub": "u1", "exp": start.Add(time.Minute).Unix()})})
	tc.cmd(2, "subscribe", map[string]any{"channel": "$s", "token": token(t, map[string]any{"sub": "u1", "channel": "$s", "exp": start.Add(20 * time.Second).Unix()})})
	tc.replies()
	tc.c.SetLastRead(start.Add(time.Hour)) // pongs are not the point here
	n.clock.Advance(45 * time.Second)
	got := tc.texts()
	want := `{"push":{"channel":"$s","unsubscribe":{"code":2501,"reason":"subscription expired"}}}`
	if !strings.Contains(strings.Join(got, "\n"), want) {
		t.Fatalf("sent %v, want the 2501 push", got)
	}
	publish(t, n, broker.Message{Channel: "$s", Event: "e", Data: "x"})
	if got := tc.texts(); len(got) != 0 {
		t.Fatalf("an expired subscription got %v", got)
	}
	n.clock.Advance(39 * time.Second)
	tc.expectOpen()
	n.clock.Advance(time.Second)
	tc.expectClosed(CloseExpired, "connection expired")
}

func TestServerSideChannels(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.dial(t)
	tc.cmd(1, "connect", map[string]any{"token": token(t, map[string]any{"sub": "u1", "channels": []string{"news", "$feed", "presence-x", "news"}})})
	r := tc.replies()
	if len(r) != 1 || !strings.Contains(string(r[0]["connect"]), `"subs":{"$feed":{},"news":{}}`) {
		t.Fatalf("connect reply %v", r)
	}
	publish(t, n, broker.Message{Channel: "$feed", Event: "e", Data: "1"})
	tc.expect(`{"push":{"channel":"$feed","pub":{"data":1,"tags":{"event":"e"}}}}`)
}

func TestCloseCodes(t *testing.T) {
	seen := map[int]bool{}
	for _, r := range hub.CloseReasons() {
		code, why := closeCode(r)
		if why == "" || json.Valid([]byte(why)) {
			t.Errorf("%v: reason %q must be plain words", r, why)
		}
		if code < 3000 || code > 3999 {
			t.Errorf("%v: code %d", r, code)
		}
		seen[code] = true
	}
	if c, _ := closeCode(hub.ReasonShutdown); c >= 3500 {
		t.Error("shutdown must let clients reconnect")
	}
}

// Whatever a client sends, the session does not panic, and everything it
// sends is one line of valid JSON.
func FuzzSession(f *testing.F) {
	f.Add([]byte(`{"subscribe":{"channel":"news"},"id":2}` + "\n" + `{"publish":{"channel":"news","data":{"a":1}},"id":3}`))
	f.Add([]byte(`{"presence":{"channel":"presence-x"},"id":2}` + "\n" + `{}`))
	f.Add([]byte(`{"sub_refresh":{"channel":"$a","token":"x.y.z"},"id":2}`))
	f.Add([]byte(`{"refresh":{"token":""},"id":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := newTestNode(t, apps.App{ClientPublish: true})
		tc := n.connect(t, "u1")
		tc.HandleMessage(data)
		tc.replies() // checks each message
	})
}

// The server API's unsubscribe and disconnect by user reach a Centrifugo
// connection: it is known to the hub as its token's user.
func TestServerUnsubscribeAndDisconnectByUser(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.connect(t, "u1")
	other := n.connect(t, "u2")
	tc.cmd(2, "subscribe", map[string]any{"channel": "news"})
	tc.expect(`{"id":2,"subscribe":{}}`)
	other.cmd(2, "subscribe", map[string]any{"channel": "news"})
	other.expect(`{"id":2,"subscribe":{}}`)
	if err := n.hub.UnsubscribeUser(t.Context(), n.app.ID, "news", "u1"); err != nil {
		t.Fatal(err)
	}
	tc.expect(`{"push":{"channel":"news","unsubscribe":{"code":2000,"reason":"server unsubscribe"}}}`)
	other.expect()
	publish(t, n, broker.Message{Channel: "news", Event: "e", Data: "1"})
	tc.expect()
	other.expect(`{"push":{"channel":"news","pub":{"data":1,"tags":{"event":"e"}}}}`)
	if err := n.hub.TerminateUser(t.Context(), n.app.ID, "u1"); err != nil {
		t.Fatal(err)
	}
	code, _ := closeCode(hub.ReasonTerminated)
	if got, _, _ := tc.c.Closed(); got != code {
		t.Fatalf("closed %d after disconnect by user, want %d", got, code)
	}
	other.expectOpen()
}

// A valid token whose expire_at has already passed grants nothing: what
// it would connect or subscribe is expired from the start. Centrifugo
// answers each command with 110 "expired"; accepting it instead made the
// connection close 3005 at once and the client reconnect with the same
// token, over and over.
func TestExpireAtInThePast(t *testing.T) {
	n := newTestNode(t, apps.App{})
	past := start.Add(-time.Minute).Unix()
	const expired = `{"error":{"code":110,"message":"expired"},"id":%d}`

	tc := n.dial(t)
	tc.cmd(1, "connect", map[string]any{"token": token(t, map[string]any{"sub": "u1", "expire_at": past})})
	tc.expect(fmt.Sprintf(expired, 1))
	tc.expectOpen()

	tc = n.connect(t, "u1")
	tc.cmd(2, "refresh", map[string]any{"token": token(t, map[string]any{"sub": "u1", "expire_at": past})})
	tc.cmd(3, "subscribe", map[string]any{"channel": "$s", "token": token(t, map[string]any{"sub": "u1", "channel": "$s", "expire_at": past})})
	tc.cmd(4, "subscribe", map[string]any{"channel": "$s", "token": token(t, map[string]any{"sub": "u1", "channel": "$s"})})
	tc.cmd(5, "sub_refresh", map[string]any{"channel": "$s", "token": token(t, map[string]any{"sub": "u1", "channel": "$s", "expire_at": past})})
	tc.expect(fmt.Sprintf(expired, 2), fmt.Sprintf(expired, 3), `{"id":4,"subscribe":{}}`, fmt.Sprintf(expired, 5))
	tc.expectOpen()
}

// A connect answered with an error (an expired token) ends the handling
// of its message, as in Centrifugo: the subscribes centrifuge-js batched
// with it are not taken for commands before connect (3501, after which a
// client does not reconnect), and the client reconnects with a new token.
func TestFailedConnectDropsTheRestOfItsMessage(t *testing.T) {
	n := newTestNode(t, apps.App{})
	tc := n.dial(t)
	tok := token(t, map[string]any{"sub": "u1", "exp": start.Add(-time.Second).Unix()})
	tc.HandleMessage([]byte(`{"connect":{"token":"` + tok + `","name":"js"},"id":1}` + "\n" +
		`{"subscribe":{"channel":"news"},"id":2}`))
	tc.expect(`{"error":{"code":109,"message":"token expired"},"id":1}`)
	tc.expectOpen()
}

// Presence admits the user ids Pusher presence admits: any id of at most
// channel.MaxUserIDLength characters, such as an identity provider's
// "auth0|5f3c" (pusher-js members may have it through channel_data or a
// subscription JWT), not only the narrower alphabet of Pusher sign-in.
func TestPresenceUserIDs(t *testing.T) {
	n := newTestNode(t, apps.App{})
	for _, tt := range []struct {
		user string
		ok   bool
	}{
		{"auth0|5f3c", true},
		{"user:42", true},
		{"Zoë", true},
		{strings.Repeat("x", 129), false},
	} {
		tc := n.connect(t, tt.user)
		tc.cmd(2, "subscribe", map[string]any{"channel": "presence-ids", "token": token(t, map[string]any{"sub": tt.user, "channel": "presence-ids"})})
		want := `{"id":2,"subscribe":{}}`
		if !tt.ok {
			want = `{"error":{"code":106,"message":"limit exceeded"},"id":2}`
		}
		tc.expect(want)
	}
}

// A presence subscription refused after the command was accepted (the
// channel is full) grants nothing in the meantime: a publish or a presence
// query sent right behind the subscribe, before its reply, is refused as
// for a channel the client is not in. The members never hear from a
// connection that did not become one of them, and it does not see them,
// whichever protocol they use (Pusher refuses client events before
// subscription_succeeded for the same reason).
func TestCommandsBehindARefusedPresenceJoin(t *testing.T) {
	n := newTestNode(t, apps.App{ClientPublish: true, MaxPresenceMembers: 1})
	rec := &testkit.Subscriber{ID: "pusher.1"}
	n.hub.Subscribe(n.app.ID, "presence-room", rec)
	a := n.connect(t, "u1")
	a.cmd(2, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u1", "channel": "presence-room"})})
	a.expect(`{"id":2,"subscribe":{}}`)
	before := len(rec.Messages()) // u1's member_added

	// In one message, so that every command is taken before the join's
	// outcome is known.
	b := n.connect(t, "u2")
	b.HandleMessage([]byte(`{"id":2,"subscribe":{"channel":"presence-room","token":"` + token(t, map[string]any{"sub": "u2", "channel": "presence-room"}) + `"}}` + "\n" +
		`{"id":3,"publish":{"channel":"presence-room","data":{"from":"u2"}}}` + "\n" +
		`{"id":4,"presence":{"channel":"presence-room"}}` + "\n" +
		`{"id":5,"presence_stats":{"channel":"presence-room"}}`))
	b.expect(`{"error":{"code":106,"message":"limit exceeded"},"id":2}`,
		`{"error":{"code":103,"message":"permission denied"},"id":3}`,
		`{"error":{"code":103,"message":"permission denied"},"id":4}`,
		`{"error":{"code":103,"message":"permission denied"},"id":5}`)
	a.expect()
	if ms := rec.Messages()[before:]; len(ms) != 0 {
		t.Fatalf("the channel got %+v from a refused joiner", ms)
	}

	// Once confirmed, the same commands batched behind a subscribe work.
	a.cmd(3, "unsubscribe", map[string]any{"channel": "presence-room"})
	a.expect(`{"id":3,"unsubscribe":{}}`)
	b.cmd(6, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u2", "channel": "presence-room"})})
	b.cmd(7, "publish", map[string]any{"channel": "presence-room", "data": 1})
	b.cmd(8, "presence_stats", map[string]any{"channel": "presence-room"})
	b.expect(`{"id":6,"subscribe":{}}`,
		`{"push":{"channel":"presence-room","pub":{"data":1,"info":{"client":"","user":"u2"},"tags":{"event":"publication"}}}}`,
		`{"id":7,"publish":{}}`,
		`{"id":8,"presence_stats":{"num_clients":2,"num_users":1}}`)

	// A publish sent before an unsubscribe is still made: it came first.
	b.cmd(9, "unsubscribe", map[string]any{"channel": "presence-room"})
	b.cmd(10, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u2", "channel": "presence-room"})})
	b.cmd(11, "publish", map[string]any{"channel": "presence-room", "data": 2})
	b.cmd(12, "unsubscribe", map[string]any{"channel": "presence-room"})
	// The join may or may not be done before the unsubscribe arrives.
	if got := strings.Join(b.texts(), "\n"); !strings.Contains(got, `{"id":11,"publish":{}}`) {
		t.Fatalf("publish then unsubscribe: sent %s", got)
	}
	if ms := rec.Messages(); !slices.ContainsFunc(ms, func(m broker.Message) bool { return m.Data == "2" }) {
		t.Fatalf("the channel got %+v", ms)
	}
}

// Presence joins are bounded per connection as on the Pusher front end:
// after a burst of ten seconds' worth, a join beyond presence_join_rate a
// second is refused with 111 (temporary: centrifuge-js tries again after a
// backoff) and announced to nobody.
func TestPresenceJoinRate(t *testing.T) {
	n := newTestNode(t, apps.App{PresenceJoinRate: 1})
	const room = "presence-room"
	tok := func(user string) string { return token(t, map[string]any{"sub": user, "channel": room}) }
	w := n.connect(t, "w")
	w.cmd(2, "subscribe", map[string]any{"channel": room, "join_leave": true, "token": tok("w")})
	w.texts()

	c := n.connect(t, "f")
	id := uint32(2)
	for i := 0; i < 10; i++ { // the burst: 10 s × 1
		c.cmd(id, "subscribe", map[string]any{"channel": room, "token": tok("f")})
		c.expect(fmt.Sprintf(`{"id":%d,"subscribe":{}}`, id))
		c.cmd(id+1, "unsubscribe", map[string]any{"channel": room})
		c.expect(fmt.Sprintf(`{"id":%d,"unsubscribe":{}}`, id+1))
		if got := w.texts(); len(got) != 2 {
			t.Fatalf("round %d: the watcher got %v, want a join and a leave", i, got)
		}
		id += 2
	}
	c.cmd(id, "subscribe", map[string]any{"channel": room, "token": tok("f")})
	c.expect(fmt.Sprintf(`{"error":{"code":111,"message":"too many requests","temporary":true},"id":%d}`, id))
	w.expect()
	c.cmd(id+1, "subscribe", map[string]any{"channel": "news"})
	c.expect(fmt.Sprintf(`{"id":%d,"subscribe":{}}`, id+1))

	n.clock.Advance(time.Second)
	c.cmd(id+2, "subscribe", map[string]any{"channel": room, "token": tok("f")})
	c.expect(fmt.Sprintf(`{"id":%d,"subscribe":{}}`, id+2))
	if got := w.texts(); len(got) != 1 {
		t.Fatalf("the watcher got %v, want one join", got)
	}
}

// Server-side subscriptions follow the connection token: a refresh whose
// token no longer lists a channel (access revoked), or lists one the
// connection is not in, closes 3010 "insufficient state", as Centrifugo
// does, so that the client reconnects and gets the token's channels. A
// token with the same channels keeps the connection; channels the token
// could not subscribe (a presence- one) do not count.
func TestRefreshChecksServerSideChannels(t *testing.T) {
	n := newTestNode(t, apps.App{})
	connect := func() *testConn {
		tc := n.dial(t)
		tc.cmd(1, "connect", map[string]any{"token": token(t, map[string]any{"sub": "u1", "channels": []string{"news", "$feed", "presence-x"}})})
		tc.replies()
		return tc
	}
	refresh := func(tc *testConn, channels ...string) {
		tc.cmd(2, "refresh", map[string]any{"token": token(t, map[string]any{"sub": "u1", "channels": channels})})
	}

	tc := connect()
	refresh(tc, "$feed", "news", "news", "presence-x")
	if r := tc.replies(); len(r) != 1 || r[0]["refresh"] == nil {
		t.Fatalf("same channels: %v", r)
	}
	tc.expectOpen()

	tc = connect()
	refresh(tc, "news")
	tc.expect()
	tc.expectClosed(CloseInsufficientState, "insufficient state")
	publish(t, n, broker.Message{Channel: "$feed", Event: "e", Data: "1"})
	tc.expect()

	tc = connect()
	refresh(tc, "news", "$feed", "$more")
	tc.expect()
	tc.expectClosed(CloseInsufficientState, "insufficient state")

	// A channel the client subscribed itself counts as subscribed.
	tc = connect()
	tc.cmd(3, "subscribe", map[string]any{"channel": "sports"})
	tc.replies()
	refresh(tc, "news", "$feed", "sports")
	if r := tc.replies(); len(r) != 1 || r[0]["refresh"] == nil {
		t.Fatalf("a channel subscribed by the client: %v", r)
	}
	tc.expectOpen()
}

// A token presented before its nbf (the backend's clock is ahead) is
// answered as an expired one, as Centrifugo does: 109, after which
// centrifuge-js fetches a fresh token and tries again, not 3500 or 103,
// after which it gives up for good.
func TestTokenBeforeNotBefore(t *testing.T) {
	n := newTestNode(t, apps.App{})
	nbf := start.Add(time.Second).Unix()
	tc := n.dial(t)
	tc.cmd(1, "connect", map[string]any{"token": token(t, map[string]any{"sub": "u1", "nbf": nbf})})
	tc.expect(`{"error":{"code":109,"message":"token expired"},"id":1}`)
	tc.expectOpen()

	tc = n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "$s", "token": token(t, map[string]any{"sub": "u1", "channel": "$s", "nbf": nbf})})
	tc.expect(`{"error":{"code":109,"message":"token expired"},"id":2}`)
	tc.expectOpen()
}

// centrifuge-js sends its connect, or after a reconnect, with a
// subscribe for every subscription it has, all in one message: a client
// with more than a hundred channels must not be closed 3501 (which it
// takes as final) for it. A message may carry a subscribe for each
// channel the app lets a connection have, and a hundred commands more.
func TestConnectBatchedWithManySubscribes(t *testing.T) {
	n := newTestNode(t, apps.App{MaxSubscriptionsPerConnection: 300})
	tc := n.dial(t)
	var b strings.Builder
	b.WriteString(`{"id":1,"connect":{"token":"` + token(t, map[string]any{"sub": "u1"}) + `"}}`)
	for i := range 300 {
		fmt.Fprintf(&b, "\n"+`{"id":%d,"subscribe":{"channel":"ch%d"}}`, i+2, i)
	}
	tc.HandleMessage([]byte(b.String()))
	if r := tc.replies(); len(r) != 301 || r[0]["connect"] == nil || string(r[300]["subscribe"]) != "{}" {
		t.Fatalf("%d replies", len(r))
	}
	tc.expectOpen()

	// Past that bound the message is still refused.
	tc = n.connect(t, "u2")
	tc.HandleMessage([]byte(strings.Repeat(`{"id":9,"unsubscribe":{"channel":"x"}}`+"\n", 300+MaxCommandsPerFrame+1)))
	tc.expect()
	tc.expectClosed(CloseBadRequest, "bad request")
}

// A command missing what it is about (a channel, a token) is malformed:
// Centrifugo closes 3501, except for sub_refresh's token, which it answers
// 107. Herald answers the same, not as for a wrong channel name (107) or a
// token that fails its checks (3500).
func TestCommandsMissingTheirSubject(t *testing.T) {
	n := newTestNode(t, apps.App{})
	for _, tc := range []struct {
		method string
		body   map[string]any
	}{
		{"subscribe", map[string]any{"channel": ""}},
		{"unsubscribe", map[string]any{"channel": ""}},
		{"refresh", map[string]any{"token": ""}},
		{"sub_refresh", map[string]any{"channel": "", "token": "x"}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			c := n.connect(t, "u1")
			c.cmd(2, tc.method, tc.body)
			c.expectClosed(CloseBadRequest, "bad request")
		})
	}
	c := n.connect(t, "u1")
	c.cmd(2, "subscribe", map[string]any{"channel": "$x", "token": token(t, map[string]any{"sub": "u1", "channel": "$x"})})
	c.expect(`{"id":2,"subscribe":{}}`)
	c.cmd(3, "sub_refresh", map[string]any{"channel": "$x", "token": ""})
	c.expect(`{"error":{"code":107,"message":"bad request"},"id":3}`)
	c.expectOpen()

	// A subscription made without a token has nothing to refresh.
	c.cmd(4, "subscribe", map[string]any{"channel": "news"})
	c.expect(`{"id":4,"subscribe":{}}`)
	c.cmd(5, "sub_refresh", map[string]any{"channel": "news", "token": token(t, map[string]any{"sub": "u1", "channel": "news"})})
	c.expectClosed(CloseBadRequest, "bad request")

	// Nor has a server-side one, made by the connection token.
	s := n.dial(t)
	s.cmd(1, "connect", map[string]any{"token": token(t, map[string]any{"sub": "u1", "channels": []string{"feed"}})})
	s.replies()
	s.cmd(2, "sub_refresh", map[string]any{"channel": "feed", "token": token(t, map[string]any{"sub": "u1", "channel": "feed"})})
	s.expectClosed(CloseBadRequest, "bad request")
}

// A subscribe still under way (a presence join) when the client
// unsubscribes is answered all the same, as Centrifugo answers every
// command: a client waiting for the reply would otherwise time out, and
// centrifuge-js reconnects on a subscribe timeout. A join refused meanwhile
// is answered with its error.
func TestSubscribeLeftWhileJoiningIsAnswered(t *testing.T) {
	n := newTestNode(t, apps.App{MaxPresenceMembers: 1})
	sub := func(user string, id uint32) string {
		return fmt.Sprintf(`{"id":%d,"subscribe":{"channel":"presence-room","token":%q}}`, id,
			token(t, map[string]any{"sub": user, "channel": "presence-room"}))
	}
	a := n.connect(t, "u1")
	a.HandleMessage([]byte(sub("u1", 2) + "\n" + `{"id":3,"unsubscribe":{"channel":"presence-room"}}`))
	got := a.texts()
	if len(got) != 2 || !slices.Contains(got, `{"id":2,"subscribe":{}}`) || !slices.Contains(got, `{"id":3,"unsubscribe":{}}`) {
		t.Fatalf("sent %v, want both replies", got)
	}
	a.expectOpen()

	// The channel is full: the join is refused, after the unsubscribe.
	b := n.connect(t, "u2")
	b.HandleMessage([]byte(sub("u2", 2)))
	b.expect(`{"id":2,"subscribe":{}}`)
	a.HandleMessage([]byte(sub("u1", 4) + "\n" + `{"id":5,"unsubscribe":{"channel":"presence-room"}}`))
	got = a.texts()
	if len(got) != 2 || !slices.Contains(got, `{"error":{"code":106,"message":"limit exceeded"},"id":4}`) {
		t.Fatalf("sent %v, want the refusal and the unsubscribe", got)
	}
	if p, err := n.hub.Members(t.Context(), n.app.ID, "presence-room"); err != nil || len(p) != 1 {
		t.Fatalf("members %v, %v; want u2 alone", p, err)
	}
}
