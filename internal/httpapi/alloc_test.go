package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/metrics"
)

// publishAllocs is how often the handler allocates to answer one signed
// POST body to an app with metrics, net/http's own allocations aside.
func publishAllocs(t *testing.T, path, body string) float64 {
	t.Helper()
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "k", Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: broker.NewMemory(0)})
	now := time.Now()
	api := New(Config{Apps: reg, Hub: h, Now: func() time.Time { return now }, Observe: metrics.New(metrics.Options{}).ObserveREST})
	target := path + "?" + auth.SignRequest("k", "s", "POST", path, nil, []byte(body), now).Encode()
	bodyBytes := []byte(body)
	rd := bytes.NewReader(nil)
	req := httptest.NewRequest("POST", target, nil)
	req.Body = io.NopCloser(rd)
	req.ContentLength = int64(len(body))
	w := &discardWriter{h: http.Header{}}
	return testing.AllocsPerRun(500, func() {
		rd.Reset(bodyBytes)
		w.status = 0
		api.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			t.Fatalf("status %d", w.status)
		}
	})
}

// TestPublishAllocs bounds the allocations of a publish: a signed trigger
// is verified, read and decoded without url.Values, reflection or a
// fresh body buffer, and keys are compared where they lie; what is left
// is the event's own strings (name, data, channel) and the hub's message,
// and for a batch one array each of events and of their channels.
func TestPublishAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	event := `{"name":"tick","data":"{\"seq\":1,\"payload\":\"0123456789abcdef0123\"}","channel":"bench"}`
	single := publishAllocs(t, "/apps/1/events", event)
	t.Logf("allocations per trigger: %.1f", single)
	if single > 5 {
		t.Errorf("a trigger allocates %.1f times; want at most 5", single)
	}
	batch := publishAllocs(t, "/apps/1/batch_events", `{"batch":[`+strings.Repeat(event+",", 9)+event+`]}`)
	t.Logf("allocations per batch of 10: %.1f", batch)
	if batch > 45 {
		t.Errorf("a batch of 10 allocates %.1f times; want at most 45", batch)
	}
}

// TestOverlongBatchAllocs: a batch over the app's limit is refused once
// counted, by either decoder, for about what its body costs, rather than
// after decoding every event into memory many times its size (an empty
// event is 3 bytes of body and over a hundred decoded).
func TestOverlongBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	f := newFixture(t, func(a *apps.App) { a.MaxBodyBytes = 256 << 10 })
	const events = 80_000
	for name, body := range map[string]string{
		"fast": `{"batch":[` + strings.Repeat(`{},`, events-1) + `{}]}`,
		"slow": `{"batch":[null,` + strings.Repeat(`{},`, events-2) + `{}]}`,
		// Not events at all: encoding/json refuses each, yet makes room
		// for all of them.
		"mistyped": `{"batch":[` + strings.Repeat(`1,`, events-1) + `1]}`,
	} {
		t.Run(name, func(t *testing.T) {
			// The request's own copies of the body (the test's request,
			// its reading) are a few times its size; decoded, the events
			// were over 50.
			refusedWithin(t, f, "/apps/42/batch_events", body, `{"error":"a batch may hold at most 3 events, not 80000"}`, 8)
		})
	}
}

// TestOverlongChannelsAllocs: a trigger naming far more channels than it
// may is refused for about what its body costs; decoded, each one-letter
// name would take about 30 times its three bytes.
func TestOverlongChannelsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	f := newFixture(t, func(a *apps.App) { a.MaxBodyBytes = 256 << 10 })
	const names = 60_000
	body := `{"name":"e","data":"d","channels":[` + strings.Repeat(`"a",`, names-1) + `"a"]}`
	refusedWithin(t, f, "/apps/42/events", body, `{"error":"an event may be triggered on at most 100 channels, not 60000"}`, 8)
}

// refusedWithin posts body, signed, to path, expects a 400 with answer want,
// and fails unless the server allocated at most times the body's size
// while refusing it.
func refusedWithin(t *testing.T, f *fixture, path, body, want string, times uint64) {
	t.Helper()
	q := auth.SignRequest(f.app.Key, f.app.Secret, "POST", path, nil, []byte(body), f.now).Encode()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	status, got := f.raw("POST", path+"?"+q, body)
	runtime.ReadMemStats(&after)
	if status != http.StatusBadRequest || got != want {
		t.Fatalf("answered %d %s, want 400 %s", status, got, want)
	}
	n := after.TotalAlloc - before.TotalAlloc
	t.Logf("refusing a %d-byte body allocated %d bytes", len(body), n)
	if n > times*uint64(len(body)) {
		t.Errorf("refusing a body allocated %.1f times its size, want at most %d", float64(n)/float64(len(body)), times)
	}
}
