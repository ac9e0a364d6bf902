package metrics_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/httpapi"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/metrics"
)

// TestRESTThroughAPI sends real requests through the REST API with
// ObserveREST as its hook: each is counted under its app, endpoint and
// status, and an unknown app's id, chosen by the client, appears nowhere.
func TestRESTThroughAPI(t *testing.T) {
	reg, err := apps.NewRegistry([]apps.App{{ID: "42", Key: "k", Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	m := metrics.New(metrics.Options{})
	api := httpapi.New(httpapi.Config{Apps: reg, Hub: hub.New(hub.Config{Broker: broker.NewMemory(0)}), Now: func() time.Time { return now }, Observe: m.ObserveREST})
	send := func(method, path, body string, sign bool) int {
		target := path
		if sign {
			target += "?" + auth.SignRequest("k", "s", method, path, nil, []byte(body), now).Encode()
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
		return rec.Code
	}
	event := `{"name":"e","data":"d","channel":"news"}`
	for _, r := range []struct {
		method, path, body string
		sign               bool
		status             int
	}{
		{"POST", "/apps/42/events", event, true, 200},
		{"POST", "/apps/42/events", event, true, 200},
		{"POST", "/apps/42/events", event, false, 401},
		{"GET", "/apps/42/channels", "", true, 200},
		{"GET", "/apps/42/channels/presence-room/users", "", true, 200},
		{"POST", "/apps/42/users/alice/terminate_connections", "{}", true, 200},
		{"POST", "/apps/evil-app-id/events", event, true, 404},
		{"GET", "/apps/evil-app-id/channels/x", "", true, 404},
		{"GET", "/apps/42/evil-endpoint", "", true, 404},
	} {
		if got := send(r.method, r.path, r.body, r.sign); got != r.status {
			t.Fatalf("%s %s: status %d, want %d", r.method, r.path, got, r.status)
		}
	}

	fams, body := scrape(t, m)
	want := expect{
		key("herald_rest_requests_total", "app_id", "42", "endpoint", "events", "status", "200"):    2,
		key("herald_rest_requests_total", "app_id", "42", "endpoint", "events", "status", "401"):    1,
		key("herald_rest_requests_total", "app_id", "42", "endpoint", "channels", "status", "200"):  1,
		key("herald_rest_requests_total", "app_id", "42", "endpoint", "users", "status", "200"):     1,
		key("herald_rest_requests_total", "app_id", "42", "endpoint", "terminate", "status", "200"): 1,
		key("herald_rest_requests_total", "app_id", "", "endpoint", "events", "status", "404"):      1,
		key("herald_rest_requests_total", "app_id", "", "endpoint", "channel", "status", "404"):     1,
		key("herald_rest_requests_total", "app_id", "", "endpoint", "other", "status", "404"):       1,
	}
	want.check(t, fams)
	if n := series(fams, "herald_rest_requests_total"); n != len(want) {
		t.Errorf("herald_rest_requests_total has %d series, want %d", n, len(want))
	}
	if n, _ := histogram(t, fams, "herald_rest_request_duration_seconds", "endpoint=events"); n != 4 {
		t.Errorf("%d events requests timed, want 4", n)
	}
	for _, s := range []string{"evil", "news", "alice", "presence-room"} {
		if strings.Contains(body, s) {
			t.Errorf("the scrape contains %q", s)
		}
	}
}
