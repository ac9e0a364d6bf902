package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/testkit"
)

type fixture struct {
	t      *testing.T
	api    *API
	hub    *hub.Hub
	broker *broker.Memory
	app    apps.App
	now    time.Time
}

func newFixture(t *testing.T, edit ...func(*apps.App)) *fixture {
	t.Helper()
	app := apps.App{ID: "42", Key: "the-key", Secret: "the-secret", MaxEventBytes: 100, MaxBatchEvents: 3, MaxBodyBytes: 4096}
	disabled := false
	off := apps.App{ID: "43", Key: "off-key", Secret: "off-secret", Enabled: &disabled}
	for _, e := range edit {
		e(&app)
	}
	reg, err := apps.NewRegistry([]apps.App{app, off})
	if err != nil {
		t.Fatal(err)
	}
	app = *reg.ByID("42")
	b := broker.NewMemory(0)
	h := hub.New(hub.Config{Broker: b})
	f := &fixture{t: t, hub: h, broker: b, app: app, now: time.Unix(1_700_000_000, 0)}
	f.api = New(Config{Apps: reg, Hub: h, Now: func() time.Time { return f.now }})
	return f
}

// subscribe puts a recording subscriber with socket id id on channel.
func (f *fixture) subscribe(channel, id string) *testkit.Subscriber {
	s := &testkit.Subscriber{ID: id}
	f.hub.Subscribe(f.app.ID, channel, s)
	return s
}

// do sends a request signed with the fixture app's credentials.
func (f *fixture) do(method, path string, query url.Values, body string) (int, string) {
	q := auth.SignRequest(f.app.Key, f.app.Secret, method, path, query, []byte(body), f.now)
	return f.raw(method, path+"?"+q.Encode(), body)
}

// raw sends a request exactly as given.
func (f *fixture) raw(method, target, body string) (int, string) {
	f.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	return rec.Code, strings.TrimSpace(string(b))
}

func (f *fixture) expect(method, path string, query url.Values, body string, wantStatus int, wantBody string) {
	f.t.Helper()
	status, got := f.do(method, path, query, body)
	if status != wantStatus {
		f.t.Fatalf("%s %s: status %d (%s), want %d", method, path, status, got, wantStatus)
	}
	if wantBody != "" && !jsonEqual(got, wantBody) {
		f.t.Fatalf("%s %s: body %s, want %s", method, path, got, wantBody)
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func TestTriggerDeliversAndExcludes(t *testing.T) {
	f := newFixture(t)
	a := f.subscribe("news", "1.1")
	b := f.subscribe("news", "1.2")
	c := f.subscribe("private-x", "1.3")
	f.expect("POST", "/apps/42/events", nil,
		`{"name":"hello","data":"{\"n\":1}","channels":["news","private-x"],"socket_id":"1.1"}`, 200, `{}`)
	if len(a.Messages()) != 0 {
		t.Fatal("the excluded socket received the event")
	}
	for _, s := range []*testkit.Subscriber{b, c} {
		got := s.Messages()
		if len(got) != 1 || got[0].Event != "hello" || got[0].Data != `{"n":1}` || got[0].DataJSON {
			t.Fatalf("%s received %+v", s.ID, got)
		}
	}
}

func TestTriggerSingleChannelAndObjectData(t *testing.T) {
	f := newFixture(t)
	s := f.subscribe("news", "1.1")
	f.expect("POST", "/apps/42/events", nil, `{"name":"e","data":{"a": [1, 2]},"channel":"news"}`, 200, `{}`)
	got := s.Messages()
	if len(got) != 1 || got[0].Data != `{"a":[1,2]}` {
		t.Fatalf("received %+v, want the compact JSON text of the object", got)
	}
}

func TestTriggerInfo(t *testing.T) {
	f := newFixture(t)
	f.subscribe("news", "1.1")
	f.subscribe("news", "1.2")
	ctx := context.Background()
	f.subscribe("presence-room", "1.3")
	f.subscribe("presence-room", "1.4")
	f.broker.Join(ctx, "42", "presence-room", "1.3", broker.Member{UserID: "u1"}, 100)
	f.broker.Join(ctx, "42", "presence-room", "1.4", broker.Member{UserID: "u1"}, 100)
	f.expect("POST", "/apps/42/events", nil,
		`{"name":"e","data":"d","channels":["news","presence-room","empty"],"info":"user_count,subscription_count"}`, 200,
		`{"channels":{"news":{"subscription_count":2},"presence-room":{"user_count":1,"subscription_count":2},"empty":{"subscription_count":0}}}`)
}

func TestBatchTrigger(t *testing.T) {
	f := newFixture(t)
	a := f.subscribe("a", "1.1")
	b := f.subscribe("b", "1.2")
	f.expect("POST", "/apps/42/batch_events", nil,
		`{"batch":[{"channel":"a","name":"one","data":"1"},{"channel":"b","name":"two","data":"2","socket_id":"1.2"},{"channel":"a","name":"three","data":"3"}]}`,
		200, `{}`)
	got := a.Messages()
	if len(got) != 2 || got[0].Event != "one" || got[1].Event != "three" {
		t.Fatalf("a received %+v, want one then three", got)
	}
	if len(b.Messages()) != 0 {
		t.Fatal("the batch event's socket_id was not excluded")
	}
	f.expect("POST", "/apps/42/batch_events", nil,
		`{"batch":[{"channel":"a","name":"one","data":"1","info":"subscription_count"},{"channel":"b","name":"two","data":"2"}]}`,
		200, `{"batch":[{"subscription_count":1},{}]}`)
}

func TestChannelQueries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.subscribe("news", "1.1")
	f.subscribe("news", "1.2")
	f.subscribe("presence-room", "1.3")
	f.broker.Join(ctx, "42", "presence-room", "1.3", broker.Member{UserID: "u1"}, 100)
	f.subscribe("presence-room", "1.4")
	f.broker.Join(ctx, "42", "presence-room", "1.4", broker.Member{UserID: "u2"}, 100)
	f.expect("GET", "/apps/42/channels", nil, "", 200, `{"channels":{"news":{},"presence-room":{}}}`)
	f.expect("GET", "/apps/42/channels", url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count,subscription_count"}}, "", 200,
		`{"channels":{"presence-room":{"user_count":2,"subscription_count":2}}}`)
	f.expect("GET", "/apps/42/channels", url.Values{"info": {"subscription_count"}}, "", 200,
		`{"channels":{"news":{"subscription_count":2},"presence-room":{"subscription_count":2}}}`)
	f.expect("GET", "/apps/42/channels/news", url.Values{"info": {"subscription_count"}}, "", 200, `{"occupied":true,"subscription_count":2}`)
	f.expect("GET", "/apps/42/channels/nobody-here", nil, "", 200, `{"occupied":false}`)
	f.expect("GET", "/apps/42/channels/presence-room", url.Values{"info": {"user_count"}}, "", 200, `{"occupied":true,"user_count":2}`)
	f.expect("GET", "/apps/42/channels/presence-room/users", nil, "", 200, `{"users":[{"id":"u1"},{"id":"u2"}]}`)
}

func TestCacheChannelInfo(t *testing.T) {
	f := newFixture(t)
	f.expect("GET", "/apps/42/channels/cache-prices", url.Values{"info": {"cache"}}, "", 200, `{"occupied":false}`)
	f.expect("POST", "/apps/42/events", nil, `{"name":"price","data":"7","channel":"cache-prices"}`, 200, `{}`)
	status, body := f.do("GET", "/apps/42/channels/cache-prices", url.Values{"info": {"cache"}}, "")
	var got struct {
		Occupied bool
		Cache    *cacheInfo
	}
	if err := json.Unmarshal([]byte(body), &got); status != 200 || err != nil {
		t.Fatalf("status %d body %s", status, body)
	}
	if got.Cache == nil || got.Cache.Event != "price" || got.Cache.Data != "7" || got.Cache.TTL <= 0 || got.Cache.TTL > 1800 {
		t.Fatalf("cache info %+v", got.Cache)
	}
}

func TestTerminateConnections(t *testing.T) {
	f := newFixture(t)
	mine, other := &testkit.User{}, &testkit.User{}
	f.hub.SignIn("42", "alice", mine, hub.Budget{})
	f.hub.SignIn("42", "bob", other, hub.Budget{})
	f.expect("POST", "/apps/42/users/alice/terminate_connections", nil, "{}", 200, `{}`)
	// Users are shared with Centrifugo clients, whose ids are any text.
	f.expect("POST", "/apps/42/users/auth0|5f3c/terminate_connections", nil, "{}", 200, `{}`)
	f.expect("POST", "/apps/42/users/"+strings.Repeat("é", 200)+"/terminate_connections", nil, "{}", 200, `{}`)
	if len(mine.Closes()) != 1 || mine.Closes()[0] != hub.ReasonTerminated || len(other.Closes()) != 0 {
		t.Fatalf("alice closed %v, bob closed %v", mine.Closes(), other.Closes())
	}
}

func TestSignatureOverEscapedPath(t *testing.T) {
	f := newFixture(t)
	s := &testkit.Subscriber{ID: "1.1"}
	f.hub.Subscribe("42", "#server-to-user-alice", s)
	// An SDK signs the path before escaping it; the signature is checked
	// against the decoded path.
	q := auth.SignRequest(f.app.Key, f.app.Secret, "GET", "/apps/42/channels/#server-to-user-alice", nil, nil, f.now)
	status, body := f.raw("GET", "/apps/42/channels/%23server-to-user-alice?"+q.Encode(), "")
	if status != 200 || !jsonEqual(body, `{"occupied":true}`) {
		t.Fatalf("status %d body %s", status, body)
	}
}

// TestRefusals checks every refusal: its status, that the body says why,
// and that nothing was delivered.
func TestRefusals(t *testing.T) {
	big := strings.Repeat("x", 101)
	manyChannels := make([]string, 101)
	for i := range manyChannels {
		manyChannels[i] = fmt.Sprintf("c%d", i)
	}
	many, _ := json.Marshal(manyChannels)
	type signer func(f *fixture, method, path, body string) string // returns the query
	good := func(f *fixture, method, path, body string) string {
		return auth.SignRequest(f.app.Key, f.app.Secret, method, path, nil, []byte(body), f.now).Encode()
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		sign   signer
		status int
		says   string
	}{
		{"unknown app", "POST", "/apps/999/events", `{"name":"e","data":"d","channel":"news"}`, good, 404, "Unknown app"},
		{"unknown endpoint", "POST", "/apps/42/nothing", `{}`, good, 404, "no such endpoint"},
		{"wrong secret", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news"}`,
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest(f.app.Key, "not-the-secret", m, p, nil, []byte(b), f.now).Encode()
			}, 401, "Invalid signature"},
		{"another app's key", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news"}`,
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest("off-key", "off-secret", m, p, nil, []byte(b), f.now).Encode()
			}, 401, "auth_key"},
		{"stale timestamp", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news"}`,
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest(f.app.Key, f.app.Secret, m, p, nil, []byte(b), f.now.Add(-601*time.Second)).Encode()
			}, 401, "Timestamp expired"},
		{"future timestamp", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news"}`,
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest(f.app.Key, f.app.Secret, m, p, nil, []byte(b), f.now.Add(601*time.Second)).Encode()
			}, 401, "Timestamp expired"},
		{"unsigned", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news"}`,
			func(*fixture, string, string, string) string { return "" }, 401, "auth_key"},
		{"body changed after signing", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news"}`,
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest(f.app.Key, f.app.Secret, m, p, nil, []byte(`{"name":"e","data":"x","channel":"news"}`), f.now).Encode()
			}, 401, "body_md5"},
		{"query changed after signing", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news"}`,
			func(f *fixture, m, p, b string) string {
				return good(f, m, p, b) + "&extra=1"
			}, 401, "Invalid signature"},
		{"disabled app", "POST", "/apps/43/events", `{"name":"e","data":"d","channel":"news"}`,
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest("off-key", "off-secret", m, p, nil, []byte(b), f.now).Encode()
			}, 403, "disabled"},
		{"malformed JSON", "POST", "/apps/42/events", `{"name":"e",`, good, 400, "not valid JSON"},
		{"empty body", "POST", "/apps/42/events", ``, good, 400, "JSON object"},
		{"JSON array", "POST", "/apps/42/events", `["news"]`, good, 400, "not valid JSON"},
		{"missing name", "POST", "/apps/42/events", `{"data":"d","channel":"news"}`, good, 400, "name is required"},
		{"missing data", "POST", "/apps/42/events", `{"name":"e","channel":"news"}`, good, 400, "data is required"},
		{"null data", "POST", "/apps/42/events", `{"name":"e","data":null,"channel":"news"}`, good, 400, "data is required"},
		{"event name too long", "POST", "/apps/42/events", `{"name":"` + strings.Repeat("e", 201) + `","data":"d","channel":"news"}`, good, 400, "event name"},
		{"event name of 201 characters", "POST", "/apps/42/events", `{"name":"` + strings.Repeat("é", 201) + `","data":"d","channel":"news"}`, good, 400, "longer than 200 characters"},
		{"protocol event name", "POST", "/apps/42/events", `{"name":"pusher:error","data":"{}","channel":"news"}`, good, 400, "reserved"},
		{"internal event name", "POST", "/apps/42/events", `{"name":"pusher_internal:member_added","data":"{}","channel":"news"}`, good, 400, "reserved"},
		{"internal event name in a batch", "POST", "/apps/42/batch_events",
			`{"batch":[{"channel":"news","name":"e","data":"1"},{"channel":"news","name":"pusher_internal:subscription_succeeded","data":"{}"}]}`,
			good, 400, "batch[1]"},
		{"no channel", "POST", "/apps/42/events", `{"name":"e","data":"d"}`, good, 400, "channel"},
		{"invalid channel", "POST", "/apps/42/events", `{"name":"e","data":"d","channels":["news","bad channel"]}`, good, 400, "invalid channel name"},
		{"reserved channel", "POST", "/apps/42/events", `{"name":"e","data":"d","channels":["news","#secret"]}`, good, 400, "invalid channel name"},
		{"channel too long", "POST", "/apps/42/events", `{"name":"e","data":"d","channels":["news","` + strings.Repeat("c", 201) + `"]}`, good, 400, "too long"},
		{"101 channels", "POST", "/apps/42/events", `{"name":"e","data":"d","channels":` + string(many) + `}`, good, 400, "at most 100"},
		{"bad socket_id", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news","socket_id":"abc"}`, good, 400, "socket_id"},
		{"data over the limit", "POST", "/apps/42/events", `{"name":"e","data":"` + big + `","channel":"news"}`, good, 413, "limit of 100"},
		{"body over the limit", "POST", "/apps/42/events", `{"name":"e","data":"d","channel":"news","pad":"` + strings.Repeat("p", 5000) + `"}`, good, 413, "4096 bytes"},
		{"batch too long", "POST", "/apps/42/batch_events",
			`{"batch":[{"channel":"news","name":"e","data":"1"},{"channel":"news","name":"e","data":"2"},{"channel":"news","name":"e","data":"3"},{"channel":"news","name":"e","data":"4"}]}`,
			good, 400, "at most 3"},
		{"batch too long, for encoding/json", "POST", "/apps/42/batch_events",
			`{"batch":[null,{"channel":"news","name":"e","data":"1"},{"channel":"news","name":"e","data":"2"},{"channel":"news","name":"e","data":"\u0033"}]}`,
			good, 400, "at most 3 events, not 4"},
		{"batch with one bad event", "POST", "/apps/42/batch_events",
			`{"batch":[{"channel":"news","name":"e","data":"1"},{"channel":"bad channel","name":"e","data":"2"}]}`,
			good, 400, "batch[1]"},
		{"batch with one oversized event", "POST", "/apps/42/batch_events",
			`{"batch":[{"channel":"news","name":"e","data":"1"},{"channel":"news","name":"e","data":"` + big + `"}]}`,
			good, 413, "batch[1]"},
		{"batch event with channels", "POST", "/apps/42/batch_events",
			`{"batch":[{"channels":["news"],"name":"e","data":"1"}]}`, good, 400, "exactly one channel"},
		{"batch missing", "POST", "/apps/42/batch_events", `{}`, good, 400, "batch is required"},
		{"user_count without presence filter", "GET", "/apps/42/channels?info=user_count", "",
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest(f.app.Key, f.app.Secret, m, "/apps/42/channels", url.Values{"info": {"user_count"}}, nil, f.now).Encode()
			}, 400, "presence"},
		{"user_count of a public channel", "GET", "/apps/42/channels/news", "",
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest(f.app.Key, f.app.Secret, m, p, url.Values{"info": {"user_count"}}, nil, f.now).Encode()
			}, 400, "presence"},
		{"cache of a non-cache channel", "GET", "/apps/42/channels/news", "",
			func(f *fixture, m, p, b string) string {
				return auth.SignRequest(f.app.Key, f.app.Secret, m, p, url.Values{"info": {"cache"}}, nil, f.now).Encode()
			}, 400, "cache channel"},
		{"users of a public channel", "GET", "/apps/42/channels/news/users", "", good, 400, "presence"},
		{"invalid channel in path", "GET", "/apps/42/channels/bad$name", "", good, 400, "invalid channel name"},
		{"user id of 201 characters", "POST", "/apps/42/users/" + strings.Repeat("u", 201) + "/terminate_connections", "{}", good, 400, "invalid user id"},
		{"user id not UTF-8", "POST", "/apps/42/users/%FF/terminate_connections", "{}",
			func(f *fixture, m, p, b string) string {
				return good(f, m, "/apps/42/users/\xff/terminate_connections", b)
			}, 400, "invalid user id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.subscribe("news", "1.1")
			path, _, _ := strings.Cut(tc.path, "?")
			q := tc.sign(f, tc.method, path, tc.body)
			status, body := f.raw(tc.method, path+"?"+q, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, body, tc.status)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, tc.says) {
				t.Fatalf("body %s does not say %q", body, tc.says)
			}
			if got := s.Messages(); len(got) != 0 {
				t.Fatalf("a refused request delivered %+v", got)
			}
		})
	}
}

// TestEventNameLimitCountsCharacters: an event name may have 200
// characters, as Pusher documents, not 200 bytes: a name in another
// script than Latin has more bytes than characters.
func TestEventNameLimitCountsCharacters(t *testing.T) {
	f := newFixture(t)
	s := f.subscribe("news", "1.1")
	name := strings.Repeat("é", 200) // 400 bytes
	body, _ := json.Marshal(map[string]any{"name": name, "data": "d", "channel": "news"})
	f.expect("POST", "/apps/42/events", nil, string(body), 200, `{}`)
	if got := s.Messages(); len(got) != 1 || got[0].Event != name {
		t.Fatalf("subscriber got %+v", got)
	}
}
