package centrifugoapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/brokertest"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/testkit"
)

type fixture struct {
	t      *testing.T
	api    *API
	hub    *hub.Hub
	broker *brokertest.Faulty
	now    time.Time
}

const (
	key      = "api-key-of-42"
	otherKey = "api-key-of-44"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	disabled := false
	reg, err := apps.NewRegistry([]apps.App{
		{ID: "42", Key: "k42", Secret: "s42", APIKey: key, MaxEventBytes: 100, MaxBodyBytes: 1024},
		{ID: "43", Key: "k43", Secret: "s43"}, // no API key: refused
		{ID: "44", Key: "k44", Secret: "s44", APIKey: otherKey},
		{ID: "45", Key: "k45", Secret: "s45", APIKey: "off-key", Enabled: &disabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.NewFaulty(broker.NewMemory(0))
	h := hub.New(hub.Config{Broker: b})
	f := &fixture{t: t, hub: h, broker: b, now: time.Unix(1_700_000_000, 0)}
	f.api = New(Config{Apps: reg, Hub: h, NodeID: "node-1", NodeName: "host", Version: "1.2.3",
		Started: f.now.Add(-90 * time.Second), Now: func() time.Time { return f.now }})
	return f
}

func (f *fixture) subscribe(app, channel, id string) *testkit.Subscriber {
	s := &testkit.Subscriber{ID: id}
	f.hub.Subscribe(app, channel, s)
	return s
}

// call posts body to path with the headers given as name, value pairs.
func (f *fixture) call(method, path, body string, headers ...string) (int, string, http.Header) {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, strings.TrimSpace(string(b)), rec.Header()
}

func (f *fixture) post(path, body string) (int, string) {
	f.t.Helper()
	status, got, _ := f.call("POST", path, body, "X-API-Key", key)
	return status, got
}

func (f *fixture) expect(path, body string, wantStatus int, want string) {
	f.t.Helper()
	status, got := f.post(path, body)
	if status != wantStatus || got != want {
		f.t.Fatalf("POST %s %s: %d %s, want %d %s", path, body, status, got, wantStatus, want)
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	s := f.subscribe("42", "news", "1.1")
	pub := `{"channel":"news","data":{}}`
	cases := []struct {
		name    string
		headers []string
		status  int
	}{
		{"no key", nil, 401},
		{"wrong key", []string{"X-API-Key", "nope"}, 401},
		{"a prefix of the key", []string{"X-API-Key", key[:5]}, 401},
		{"key with more", []string{"X-API-Key", key + "x"}, 401},
		{"empty key", []string{"X-API-Key", ""}, 401},
		{"bearer scheme", []string{"Authorization", "Bearer " + key}, 401},
		{"other app's key", []string{"X-API-Key", otherKey}, 200}, // publishes to app 44
		{"disabled app", []string{"X-API-Key", "off-key"}, 403},
		{"X-API-Key", []string{"X-API-Key", key}, 200},
		{"Authorization apikey", []string{"Authorization", "apikey " + key}, 200},
		{"Authorization scheme case", []string{"Authorization", "ApiKey  " + key}, 200},
	}
	for _, tt := range cases {
		status, body, _ := f.call("POST", "/api/publish", pub, tt.headers...)
		if status != tt.status {
			t.Errorf("%s: %d %q, want %d", tt.name, status, body, tt.status)
		}
		if status == 401 && body != "" {
			t.Errorf("%s: 401 with body %q, want an empty one", tt.name, body)
		}
	}
	if got := len(s.Messages()); got != 3 {
		t.Fatalf("app 42's subscriber got %d messages, want 3 (the accepted keys)", got)
	}
}

func TestRouting(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		method, path string
		headers      []string
		status       int
		body         string
	}{
		{"GET", "/api/publish", []string{"X-API-Key", key}, 405, ""},
		{"PUT", "/api/info", []string{"X-API-Key", key}, 405, ""},
		{"POST", "/api/nosuch", []string{"X-API-Key", key}, 404, "404 page not found"},
		{"POST", "/api/", []string{"X-API-Key", key}, 404, "404 page not found"},
		{"POST", "/api/publish/x", []string{"X-API-Key", key}, 404, "404 page not found"},
		{"POST", "/api/nosuch", nil, 401, ""},
		{"POST", "/api/info", nil, 401, ""},
	}
	for _, tt := range cases {
		status, body, h := f.call(tt.method, tt.path, "{}", tt.headers...)
		if status != tt.status || body != tt.body {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, status, body, tt.status, tt.body)
		}
		if status >= 400 && h.Get("Connection") != "close" {
			t.Errorf("%s %s: refused without closing the connection", tt.method, tt.path)
		}
	}
}

func TestBodyRefusals(t *testing.T) {
	f := newFixture(t)
	big := `{"channel":"news","data":"` + strings.Repeat("x", 2000) + `"}`
	cases := []struct {
		name, body string
		status     int
	}{
		{"not JSON", `{"channel":`, 400},
		{"two values", `{} {}`, 400},
		{"trailing garbage", `{"channel":"news","data":1}x`, 400},
		{"an array", `[]`, 400},
		{"a string", `"publish"`, 400},
		{"over the body limit", big, 413},
	}
	for _, tt := range cases {
		status, body := f.post("/api/publish", tt.body)
		if status != tt.status {
			t.Errorf("%s: %d %q, want %d", tt.name, status, body, tt.status)
		}
	}
	// A declared length over the limit is refused before the body is read.
	req := httptest.NewRequest("POST", "/api/publish", errReader{})
	req.ContentLength = 5000
	req.Header.Set("X-API-Key", key)
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	if rec.Code != 413 || rec.Header().Get("Connection") != "close" {
		t.Fatalf("declared oversize body: %d, Connection %q", rec.Code, rec.Header().Get("Connection"))
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("the body must not be read") }

func TestPublish(t *testing.T) {
	f := newFixture(t)
	s := f.subscribe("42", "news", "1.1")
	c := f.subscribe("42", "cache-news", "1.2")
	other := f.subscribe("44", "news", "2.1")
	cases := []struct {
		name, body string
		want       string
		msg        *broker.Message
	}{
		{"default event", `{"channel":"news","data":{"text": "hi"}}`, `{"result":{}}`,
			&broker.Message{AppID: "42", Channel: "news", Event: "message", Data: `{"text":"hi"}`}},
		{"event from tags", `{"channel":"news","data":[1, 2],"tags":{"event":"tick","k":"v"}}`, `{"result":{}}`,
			&broker.Message{AppID: "42", Channel: "news", Event: "tick", Data: `[1,2]`, Tags: map[string]string{"event": "tick", "k": "v"}}},
		{"string data", `{"channel":"news","data":"plain"}`, `{"result":{}}`,
			&broker.Message{AppID: "42", Channel: "news", Event: "message", Data: `"plain"`}},
		{"unknown fields ignored", `{"channel":"news","data":0,"skip_history":true,"idempotency_key":"x"}`, `{"result":{}}`,
			&broker.Message{AppID: "42", Channel: "news", Event: "message", Data: `0`}},
		{"token channel", `{"channel":"$news","data":{}}`, `{"result":{}}`,
			&broker.Message{AppID: "42", Channel: "$news", Event: "message", Data: `{}`}},
		{"cache channel", `{"channel":"cache-news","data":{}}`, `{"result":{}}`,
			&broker.Message{AppID: "42", Channel: "cache-news", Event: "message", Data: `{}`, Cache: true}},
		{"no data", `{"channel":"news"}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"null data", `{"channel":"news","data":null}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"binary data only", `{"channel":"news","b64data":"aGk="}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"no channel", `{"data":{}}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"empty body", ``, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"invalid channel", `{"channel":"ns:x","data":{}}`, `{"error":{"code":102,"message":"unknown channel"}}`, nil},
		{"$ and a private channel", `{"channel":"$private-x","data":{}}`, `{"error":{"code":102,"message":"unknown channel"}}`, nil},
		{"encrypted channel", `{"channel":"private-encrypted-x","data":{}}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"data over the event limit", `{"channel":"news","data":"` + strings.Repeat("x", 120) + `"}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"wrong types", `{"channel":1,"data":{}}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"protocol event from tags", `{"channel":"news","data":{},"tags":{"event":"pusher:error"}}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"internal event from tags", `{"channel":"news","data":{},"tags":{"event":"pusher_internal:member_removed"}}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"event from tags too long", `{"channel":"news","data":{},"tags":{"event":"` + strings.Repeat("e", 201) + `"}}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
		{"tags not strings", `{"channel":"news","data":{},"tags":{"a":1}}`, `{"error":{"code":107,"message":"bad request"}}`, nil},
	}
	var want []broker.Message
	for _, tt := range cases {
		f.expect("/api/publish", tt.body, 200, tt.want)
		if tt.msg != nil && tt.msg.Channel == "news" {
			want = append(want, *tt.msg)
		}
		if tt.msg != nil && tt.msg.Channel == "cache-news" {
			if got := c.Messages(); len(got) != 1 || !got[0].Equal(tt.msg) {
				t.Fatalf("%s: cache subscriber got %+v", tt.name, got)
			}
		}
	}
	got := s.Messages()
	if len(got) != len(want) {
		t.Fatalf("subscriber got %d messages, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Equal(&want[i]) {
			t.Errorf("message %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(other.Messages()) != 0 {
		t.Fatal("another app's subscriber received app 42's publications")
	}
}

func TestPublishBrokerFailure(t *testing.T) {
	f := newFixture(t)
	s := f.subscribe("42", "news", "1.1")
	f.broker.FailOp("publish", errors.New("redis down"))
	f.expect("/api/publish", `{"channel":"news","data":{}}`, 200, `{"error":{"code":100,"message":"internal server error"}}`)
	status, body, _ := f.call("POST", "/api/publish", `{"channel":"news","data":{}}`, "X-API-Key", key, "X-Centrifugo-Error-Mode", "transport")
	if status != 500 || body != `{"code":100,"message":"internal server error"}` {
		t.Fatalf("transport error mode: %d %s", status, body)
	}
	f.expect("/api/broadcast", `{"channels":["news","a"],"data":{}}`, 200,
		`{"result":{"responses":[{"error":{"code":100,"message":"internal server error"}},{"error":{"code":100,"message":"internal server error"}}]}}`)
	if len(s.Messages()) != 0 {
		t.Fatal("a publication the broker refused was delivered")
	}
}

func TestTransportErrorMode(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/api/publish", `{"channel":"news"}`, 400, `{"code":107,"message":"bad request"}`},
		{"/api/publish", `{"channel":"a:b","data":1}`, 404, `{"code":102,"message":"unknown channel"}`},
		{"/api/history", `{"channel":"a"}`, 400, `{"code":108,"message":"not available"}`},
		{"/api/info", `{}`, 200, ``},
	} {
		status, body, _ := f.call("POST", tt.path, tt.body, "X-API-Key", key, "X-Centrifugo-Error-Mode", "transport")
		if status != tt.status || (tt.want != "" && body != tt.want) {
			t.Errorf("%s %s: %d %s, want %d %s", tt.path, tt.body, status, body, tt.status, tt.want)
		}
	}
}

func TestBroadcast(t *testing.T) {
	f := newFixture(t)
	a := f.subscribe("42", "a", "1.1")
	b := f.subscribe("42", "b", "1.2")
	f.expect("/api/broadcast", `{"channels":["a","ns:x","b"],"data":{"n":1},"tags":{"event":"e"}}`, 200,
		`{"result":{"responses":[{"result":{}},{"error":{"code":102,"message":"unknown channel"}},{"result":{}}]}}`)
	for _, s := range []*testkit.Subscriber{a, b} {
		got := s.Messages()
		if len(got) != 1 || got[0].Event != "e" || got[0].Data != `{"n":1}` {
			t.Fatalf("%s got %+v", s.ID, got)
		}
	}
	for _, body := range []string{`{"data":{}}`, `{"channels":[],"data":{}}`, `{"channels":["a"]}`, `{"channels":"a","data":1}`} {
		f.expect("/api/broadcast", body, 200, `{"error":{"code":107,"message":"bad request"}}`)
	}
}

func TestPresence(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.subscribe("42", "presence-room", "1.1")
	f.subscribe("42", "presence-room", "1.2")
	f.subscribe("42", "presence-room", "1.3")
	f.broker.Join(ctx, "42", "presence-room", "1.1", broker.Member{UserID: "u1", Info: json.RawMessage(`{"name":"A"}`)}, 100)
	f.broker.Join(ctx, "42", "presence-room", "1.2", broker.Member{UserID: "u1", Info: json.RawMessage(`{"name":"A"}`)}, 100)
	f.broker.Join(ctx, "42", "presence-room", "1.3", broker.Member{UserID: "u2"}, 100)
	f.expect("/api/presence", `{"channel":"presence-room"}`, 200,
		`{"result":{"presence":{"u1":{"client":"u1","user":"u1","conn_info":{"name":"A"}},"u2":{"client":"u2","user":"u2"}}}}`)
	f.expect("/api/presence", `{"channel":"presence-empty"}`, 200, `{"result":{"presence":{}}}`)
	f.expect("/api/presence_stats", `{"channel":"presence-room"}`, 200, `{"result":{"num_clients":3,"num_users":2}}`)
	f.expect("/api/presence_stats", `{"channel":"presence-empty"}`, 200, `{"result":{"num_clients":0,"num_users":0}}`)
	for _, m := range []string{"presence", "presence_stats"} {
		f.expect("/api/"+m, `{}`, 200, `{"error":{"code":107,"message":"bad request"}}`)
		f.expect("/api/"+m, `{"channel":"news"}`, 200, `{"error":{"code":108,"message":"not available"}}`)
		f.expect("/api/"+m, `{"channel":"a:b"}`, 200, `{"error":{"code":102,"message":"unknown channel"}}`)
	}
	f.broker.FailOp("members", errors.New("down"))
	f.expect("/api/presence", `{"channel":"presence-room"}`, 200, `{"error":{"code":100,"message":"internal server error"}}`)
}

func TestChannels(t *testing.T) {
	f := newFixture(t)
	f.subscribe("42", "chat-1", "1.1")
	f.subscribe("42", "chat-1", "1.2")
	f.subscribe("42", "chat-2", "1.3")
	f.subscribe("42", "news", "1.4")
	f.subscribe("44", "chat-3", "2.1")
	cases := map[string]string{
		`{}`:                    `{"result":{"channels":{"chat-1":{"num_clients":2},"chat-2":{"num_clients":1},"news":{"num_clients":1}}}}`,
		``:                      `{"result":{"channels":{"chat-1":{"num_clients":2},"chat-2":{"num_clients":1},"news":{"num_clients":1}}}}`,
		`{"pattern":"chat-*"}`:  `{"result":{"channels":{"chat-1":{"num_clients":2},"chat-2":{"num_clients":1}}}}`,
		`{"pattern":"*-2"}`:     `{"result":{"channels":{"chat-2":{"num_clients":1}}}}`,
		`{"pattern":"news"}`:    `{"result":{"channels":{"news":{"num_clients":1}}}}`,
		`{"pattern":"ne?s"}`:    `{"result":{"channels":{"news":{"num_clients":1}}}}`,
		`{"pattern":"nothing"}`: `{"result":{"channels":{}}}`,
		`{"pattern":"chat-\\"}`: `{"error":{"code":107,"message":"bad request"}}`,
		`{"pattern":1}`:         `{"error":{"code":107,"message":"bad request"}}`,
	}
	for body, want := range cases {
		f.expect("/api/channels", body, 200, want)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"", "", true}, {"*", "", true}, {"*", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {`a\*`, "a*", true}, {`a\*`, "ab", false},
		{"*a*b*", "xxaxxbxx", true}, {"*a*b", "ba", false}, {"[ab]", "[ab]", true}, {"news", "news1", false},
	}
	for _, tt := range cases {
		g, err := compileGlob(tt.p)
		if err != nil {
			t.Fatalf("%q: %v", tt.p, err)
		}
		if got := g.match(tt.s); got != tt.want {
			t.Errorf("%q ~ %q = %v, want %v", tt.p, tt.s, got, tt.want)
		}
		if tt.want && !strings.HasPrefix(tt.s, g.prefix) {
			t.Errorf("%q: prefix %q does not start %q", tt.p, g.prefix, tt.s)
		}
	}
}

func TestDisconnect(t *testing.T) {
	f := newFixture(t)
	u := &testkit.User{}
	f.hub.SignIn("42", "u1", u, hub.Budget{})
	f.expect("/api/disconnect", `{"user":"nobody"}`, 200, `{"result":{}}`)
	f.expect("/api/disconnect", `{"user":"u1","client":"c"}`, 200, `{"error":{"code":108,"message":"not available"}}`)
	f.expect("/api/disconnect", `{"user":"u1","disconnect":{"code":4000,"reason":"x"}}`, 200, `{"error":{"code":108,"message":"not available"}}`)
	f.expect("/api/disconnect", `{"user":"u1","whitelist":["c"]}`, 200, `{"error":{"code":108,"message":"not available"}}`)
	f.expect("/api/disconnect", `{}`, 200, `{"error":{"code":107,"message":"bad request"}}`)
	if len(u.Closes()) != 0 {
		t.Fatal("a refused disconnect closed the user's connection")
	}
	f.expect("/api/disconnect", `{"user":"u1"}`, 200, `{"result":{}}`)
	if len(u.Closes()) != 1 {
		t.Fatalf("the user's connection was closed %d times, want once", len(u.Closes()))
	}
}

type unsubUser struct {
	testkit.User
	mu       sync.Mutex
	channels []string
}

func (u *unsubUser) ServerUnsubscribe(channel string) {
	u.mu.Lock()
	u.channels = append(u.channels, channel)
	u.mu.Unlock()
}

func TestUnsubscribe(t *testing.T) {
	f := newFixture(t)
	u := &unsubUser{}
	f.hub.SignIn("42", "u1", u, hub.Budget{})
	f.expect("/api/unsubscribe", `{"channel":"chat","user":"nobody"}`, 200, `{"result":{}}`)
	for body, want := range map[string]string{
		`{"channel":"chat"}`:                          `{"error":{"code":107,"message":"bad request"}}`,
		`{"user":"u1"}`:                               `{"error":{"code":107,"message":"bad request"}}`,
		`{"channel":"a:b","user":"u1"}`:               `{"error":{"code":102,"message":"unknown channel"}}`,
		`{"channel":"chat","user":"u1","client":"c"}`: `{"error":{"code":108,"message":"not available"}}`,
	} {
		f.expect("/api/unsubscribe", body, 200, want)
	}
	if len(u.channels) != 0 {
		t.Fatalf("a refused unsubscribe reached the user: %v", u.channels)
	}
	f.expect("/api/unsubscribe", `{"channel":"chat","user":"u1"}`, 200, `{"result":{}}`)
	if fmt.Sprint(u.channels) != "[chat]" {
		t.Fatalf("user unsubscribed from %v, want [chat]", u.channels)
	}
	f.broker.FailOp("publish", errors.New("down"))
	f.expect("/api/unsubscribe", `{"channel":"chat","user":"u1"}`, 200, `{"error":{"code":100,"message":"internal server error"}}`)
}

func TestNotAvailable(t *testing.T) {
	f := newFixture(t)
	for _, m := range []string{"subscribe", "refresh", "history", "history_remove", "rpc", "batch"} {
		f.expect("/api/"+m, `{"channel":"a","user":"u"}`, 200, `{"error":{"code":108,"message":"not available"}}`)
	}
}

func TestInfo(t *testing.T) {
	f := newFixture(t)
	f.subscribe("42", "a", "1.1")
	f.subscribe("42", "b", "1.2")
	f.subscribe("42", "b", "1.3")
	f.subscribe("44", "c", "2.1")
	f.expect("/api/info", `{}`, 200,
		`{"result":{"nodes":[{"uid":"node-1","name":"host","version":"1.2.3","num_clients":0,"num_users":0,"num_channels":2,"num_subs":3,"uptime":90}]}}`)
	f.expect("/api/info", ``, 200,
		`{"result":{"nodes":[{"uid":"node-1","name":"host","version":"1.2.3","num_clients":0,"num_users":0,"num_channels":2,"num_subs":3,"uptime":90}]}}`)
	f.expect("/api/info", `{"x":1}`, 200,
		`{"result":{"nodes":[{"uid":"node-1","name":"host","version":"1.2.3","num_clients":0,"num_users":0,"num_channels":2,"num_subs":3,"uptime":90}]}}`)
}

func TestLegacyEndpoint(t *testing.T) {
	f := newFixture(t)
	s := f.subscribe("42", "news", "1.1")
	body := `{"method":"publish","params":{"channel":"news","data":{"a":1}}}` + "\n" +
		`{"method":"nosuch","params":{}}` + "\n\n" +
		`{"method":3,"params":{}}` + "\n" +
		`{"method":"publish","params":{"channel":"news"}}` + "\n"
	f.expect("/api", body, 200, `{"result":{}}`+"\n"+
		`{"error":{"code":104,"message":"not found"}}`+"\n"+
		`{"error":{"code":104,"message":"not found"}}`+"\n"+
		`{"error":{"code":107,"message":"bad request"}}`)
	if got := s.Messages(); len(got) != 1 || got[0].Data != `{"a":1}` {
		t.Fatalf("delivered %+v", got)
	}
	for _, bad := range []string{``, "\n\n", `{"method":`, `{"method":"info"} x`} {
		if status, got := f.post("/api", bad); status != 400 {
			t.Errorf("legacy %q: %d %s, want 400", bad, status, got)
		}
	}
	if status, _, _ := f.call("POST", "/api", `{"method":"info"}`); status != 401 {
		t.Fatalf("legacy without a key: %d", status)
	}
	if status, _, _ := f.call("GET", "/api", ``, "X-API-Key", key); status != 405 {
		t.Fatalf("legacy GET: %d", status)
	}
}

// The request decoders never panic, and a body they accept is one JSON
// object.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"channel":"news","data":{"a":1},"tags":{"event":"e"}}`,
		`{"channels":["a","b"],"data":1}`, `{"pattern":"a*\\?"}`, `[]`, `{} {}`, `{"user":"u","disconnect":null}`,
		`{"method":"publish","params":{"channel":"x","data":1}}` + "\n" + `{"method":"info"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fx := newFixture(t)
		raw, err := decodeParams([]byte(body))
		if err == nil && raw != nil && !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		for _, m := range []string{"publish", "broadcast", "presence", "presence_stats", "channels", "disconnect", "unsubscribe", "info"} {
			fx.api.call(t.Context(), fx.api.cfg.Apps.ByID("42"), m, raw)
		}
		if p, err := compileGlob(body); err == nil {
			p.match(body)
		}
		req := httptest.NewRequest("POST", "/api", strings.NewReader(body))
		req.Header.Set("X-API-Key", key)
		fx.api.ServeHTTP(httptest.NewRecorder(), req)
	})
}
