package httpapi

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// routeAPI is an API of its own, hub included, for one side of a
// comparison: a publish on one side reaches nothing of the other's.
func routeAPI(t testing.TB, now time.Time) *API {
	t.Helper()
	// A small body limit, so that the fuzzer reaches it; the event limit
	// must fit in it.
	reg, err := apps.NewRegistry([]apps.App{{ID: "1", Key: "k", Secret: "s", MaxBodyBytes: 256, MaxEventBytes: 128}, {ID: "a b", Key: "k2", Secret: "s2"}})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Apps: reg, Hub: hub.New(hub.Config{Broker: broker.NewMemory(0)}), Now: func() time.Time { return now }})
}

// routeRequest reads method and target as a client would send them, with
// body and a query signed for the path net/http makes of target; ok is
// false for a request net/http would not read.
func routeRequest(method, target, body string, now time.Time) (*http.Request, bool) {
	head := func(target string) string {
		return method + " " + target + " HTTP/1.1\r\nHost: herald\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head(target))))
	if err != nil {
		return nil, false
	}
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	q := auth.SignRequest("k", "s", method, r.URL.Path, r.URL.Query(), []byte(body), now)
	r, err = http.ReadRequest(bufio.NewReader(strings.NewReader(head(target + sep + q.Encode()))))
	return r, err == nil
}

// samePublishRoute serves one request by ServeHTTP, which tries
// ServePublish first, and the same request by the route table alone, and
// fails unless the answers are the same.
func samePublishRoute(t *testing.T, method, target, body string) {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	fast, slow := routeAPI(t, now), routeAPI(t, now)
	rf, ok := routeRequest(method, target, body, now)
	if !ok {
		return
	}
	rs, _ := routeRequest(method, target, body, now)
	wf, ws := httptest.NewRecorder(), httptest.NewRecorder()
	fast.ServeHTTP(wf, rf)
	slow.mux.ServeHTTP(ws, rs)
	if wf.Code != ws.Code || wf.Body.String() != ws.Body.String() ||
		wf.Header().Get("Location") != ws.Header().Get("Location") ||
		wf.Header().Get("Connection") != ws.Header().Get("Connection") ||
		wf.Header().Get("Content-Type") != ws.Header().Get("Content-Type") {
		t.Fatalf("%s %q: ServeHTTP %d %v %q, route table %d %v %q", method, target,
			wf.Code, wf.Header(), wf.Body, ws.Code, ws.Header(), ws.Body)
	}
}

var routeSeeds = []struct{ method, target string }{
	{"POST", "/apps/1/events"},
	{"POST", "/apps/1/batch_events"},
	{"POST", "/apps/2/events"},
	{"POST", "/apps/1/events/"},
	{"POST", "/apps/1/events?x=1"},
	{"POST", "//apps/1/events"},
	{"POST", "/apps//events"},
	{"POST", "/apps/./events"},
	{"POST", "/apps/../events"},
	{"POST", "/apps/1/../1/events"},
	{"POST", "/apps/x/../1/events"},
	{"POST", "/apps/1/./events"},
	{"POST", "/apps/%2E/events"},
	{"POST", "/apps/%2e%2e/events"},
	{"POST", "/apps/%31/events"},
	{"POST", "/apps/1%2Fevents"},
	{"POST", "/apps/1/events%2F"},
	{"POST", "/apps/1/%65vents"},
	{"POST", "/apps/a%20b/events"},
	{"POST", "/apps/a b/events"},
	{"POST", "/apps/1/Events"},
	{"POST", "/APPS/1/events"},
	{"POST", "/apps/1/events/x"},
	{"POST", "/apps/1/batch_events/.."},
	{"POST", "http://herald/apps/1/events"},
	{"POST", "http://other/apps/1/events"},
	{"POST", "*"},
	{"post", "/apps/1/events"},
	{"GET", "/apps/1/events"},
	{"HEAD", "/apps/1/events"},
	{"PUT", "/apps/1/events"},
	{"OPTIONS", "/apps/1/events"},
	{"CONNECT", "/apps/1/events"},
}

// TestServePublishRoutesAsTheMux: for every path trick the fast route
// answers exactly as the route table would, refusals and redirects
// included.
func TestServePublishRoutesAsTheMux(t *testing.T) {
	const body = `{"name":"e","data":"d","channel":"c"}`
	for _, s := range routeSeeds {
		t.Run(s.method+" "+s.target, func(t *testing.T) {
			samePublishRoute(t, s.method, s.target, body)
		})
	}
}

// FuzzServePublish: ServePublish takes no request the route table would
// answer otherwise.
func FuzzServePublish(f *testing.F) {
	for _, s := range routeSeeds {
		f.Add(s.method, s.target, `{"name":"e","data":"d","channel":"c"}`)
	}
	f.Fuzz(func(t *testing.T, method, target, body string) {
		samePublishRoute(t, method, target, body)
	})
}
