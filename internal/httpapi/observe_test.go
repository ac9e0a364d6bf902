package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/auth"
)

type observation struct {
	app, endpoint string
	status        int
}

// observer records Config.Observe calls.
type observer struct {
	mu  sync.Mutex
	got []observation
}

func (o *observer) observe(appID, endpoint string, status int, d time.Duration) {
	if d < 0 {
		panic("negative duration")
	}
	o.mu.Lock()
	o.got = append(o.got, observation{appID, endpoint, status})
	o.mu.Unlock()
}

func (o *observer) take() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := o.got
	o.got = nil
	return got
}

// observed rebuilds the fixture's API with an Observe hook.
func (f *fixture) observed() *observer {
	o := &observer{}
	cfg := f.api.cfg
	cfg.Observe = o.observe
	f.api = New(cfg)
	return o
}

func TestObserve(t *testing.T) {
	f := newFixture(t)
	o := f.observed()
	f.subscribe("news", "1.1")
	signed := func(f *fixture, key, secret, method, path string, query url.Values, body string) string {
		return path + "?" + auth.SignRequest(key, secret, method, path, query, []byte(body), f.now).Encode()
	}
	event := `{"name":"e","data":"d","channel":"news"}`
	tests := []struct {
		name, method, target, body string
		want                       observation
	}{
		{"event", "POST", signed(f, f.app.Key, f.app.Secret, "POST", "/apps/42/events", nil, event), event, observation{"42", "events", 200}},
		{"batch too long", "POST", signed(f, f.app.Key, f.app.Secret, "POST", "/apps/42/batch_events", nil, `{"batch":[{},{},{},{}]}`),
			`{"batch":[{},{},{},{}]}`, observation{"42", "batch_events", 400}},
		{"channels", "GET", signed(f, f.app.Key, f.app.Secret, "GET", "/apps/42/channels", nil, ""), "", observation{"42", "channels", 200}},
		{"channel", "GET", signed(f, f.app.Key, f.app.Secret, "GET", "/apps/42/channels/news", nil, ""), "", observation{"42", "channel", 200}},
		{"users of a public channel", "GET", signed(f, f.app.Key, f.app.Secret, "GET", "/apps/42/channels/news/users", nil, ""), "",
			observation{"42", "users", 400}},
		{"terminate", "POST", signed(f, f.app.Key, f.app.Secret, "POST", "/apps/42/users/alice/terminate_connections", nil, "{}"), "{}",
			observation{"42", "terminate", 200}},
		{"unsigned", "POST", "/apps/42/events", event, observation{"42", "events", 401}},
		{"disabled app", "POST", signed(f, "off-key", "off-secret", "POST", "/apps/43/events", nil, event), event, observation{"43", "events", 403}},
		// The id in the path of an unknown app is the client's: never recorded.
		{"unknown app", "POST", signed(f, f.app.Key, f.app.Secret, "POST", "/apps/attacker-chosen/events", nil, event), event,
			observation{"", "events", 404}},
		{"unknown endpoint", "GET", signed(f, f.app.Key, f.app.Secret, "GET", "/apps/42/nothing", nil, ""), "", observation{"", "other", 404}},
		{"wrong method", "GET", signed(f, f.app.Key, f.app.Secret, "GET", "/apps/42/events", nil, ""), "", observation{"", "other", 404}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.raw(tc.method, tc.target, tc.body)
			got := o.take()
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("observed %+v, want one %+v", got, tc.want)
			}
			if status != tc.want.status {
				t.Fatalf("status %d (%s), observed %d", status, body, tc.want.status)
			}
		})
	}
}

// TestObserveKeepsConnectionHandling checks that the writer Observe needs
// hides nothing from net/http: a body over the limit still closes the
// connection after the 413, as MaxBytesReader asks of net/http's writer.
func TestObserveKeepsConnectionHandling(t *testing.T) {
	f := newFixture(t)
	o := f.observed()
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	f.now = time.Now()

	body := `{"name":"e","data":"d","channel":"news","pad":"` + strings.Repeat("p", 5000) + `"}`
	q := auth.SignRequest(f.app.Key, f.app.Secret, "POST", "/apps/42/events", nil, []byte(body), f.now)
	// No Content-Length: the limit is found while the body is read.
	req, err := http.NewRequest("POST", srv.URL+"/apps/42/events?"+q.Encode(), io.MultiReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !res.Close {
		t.Fatalf("status %d, close %v: want 413 and the connection closed", res.StatusCode, res.Close)
	}
	if got := o.take(); len(got) != 1 || got[0] != (observation{"42", "events", 413}) {
		t.Fatalf("observed %+v", got)
	}
}

// TestObserveAllocs holds the hook to its one allocation per request (the
// status-recording writer) and to none without a hook.
func TestObserveAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	f := newFixture(t)
	body := `{"name":"e","data":"d","channel":"news"}`
	target := "/apps/42/events?" + auth.SignRequest(f.app.Key, f.app.Secret, "POST", "/apps/42/events", nil, []byte(body), f.now).Encode()
	w := &discardWriter{h: http.Header{}}
	run := func() float64 {
		return testing.AllocsPerRun(200, func() {
			f.api.ServeHTTP(w, httptest.NewRequest("POST", target, strings.NewReader(body)))
		})
	}
	without := run()
	cfg := f.api.cfg
	cfg.Observe = func(string, string, int, time.Duration) {}
	f.api = New(cfg)
	with := run()
	if w.status != http.StatusOK {
		t.Fatalf("status %d", w.status)
	}
	if with > without+1 {
		t.Fatalf("%v allocations per request with Observe, %v without: want at most one more", with, without)
	}
}
